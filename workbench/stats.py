"""Statistics for A/B comparison of prompt versions and models on the same dataset rows.

Everything is a pure function over plain Python values, so the UI, the CLI and tests
can share it. Design decisions, and why:

- Comparisons are *paired*: both variants ran on the same rows, and rows differ far
  more in difficulty than variants do. Pairing removes that row-to-row noise, which is
  what lets a 50-row dataset detect anything at all.
- With `repeat: N` a row has several values per variant. The unit of analysis is the
  row, so statistics use the per-row mean; treating repeats as extra rows would count
  the same question N times and make intervals falsely narrow. `row_spread` keeps the
  per-row spread visible so a flaky row (passes 1 of 3) is not hidden by the mean.
- Missing values (None or NaN: the call errored) are dropped, never counted as 0 or
  fail, and how many rows were dropped is reported.
- "Cannot be computed" (no rows, one row) is None, not NaN and not an exception, so
  the UI can show a warning instead of a stack trace.
- Randomness (bootstrap, random sign flips) comes from `numpy.random.default_rng(seed)`:
  the same data and seed always give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

import numpy as np


def _scipy_stats():
    """scipy.stats, imported on first use: its import takes ~0.7 s, which every importer of the
    compare module paid (the CLI's parser, the pages) before testing anything."""
    from scipy import stats

    return stats


EXACT_PERMUTATION_MAX_N = 16  # 2**16 sign patterns: exact enumeration is still instant
MCNEMAR_EXACT_BELOW = 25  # discordant pairs; the chi-square approximation is poor below this
_CHUNK_CELLS = 2_000_000  # bound memory of (resamples x rows) matrices


# ---------------------------------------------------------------- cleaning and rows


def _to_float(value: Any) -> float:
    """A value as float, with None and NaN (an errored row) both mapped to NaN."""
    if value is None:
        return math.nan
    return float(value)


def _clean(values: Iterable[Any]) -> np.ndarray:
    """The finite values only: None and NaN are missing data, not zeros."""
    arr = np.array([_to_float(v) for v in values], dtype=float)
    return arr[~np.isnan(arr)]


def _as_list(value: Any) -> list:
    """A row's values: a single value is a run without repeats."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]


RowKey = TypeVar("RowKey", bound=Hashable)  # whatever keys the caller uses for rows; results keep them


def row_means(values_by_row: Mapping[RowKey, Any]) -> dict[RowKey, float]:
    """Mean of each row's repeats, ignoring None/NaN.

    A row whose every repeat errored is left out (it has no value), so a later pairing
    step counts it as dropped rather than as a zero.
    """
    means: dict[RowKey, float] = {}
    for key, values in values_by_row.items():
        clean = _clean(_as_list(values))
        if clean.size:
            means[key] = float(clean.mean())
    return means


def row_spread(values_by_row: Mapping[RowKey, Any], threshold: float = 0.5) -> dict[RowKey, dict]:
    """Per-row spread of repeats, so flaky rows are visible behind the mean.

    Returns {row: {"n", "errors", "mean", "min", "max", "pass_fraction", "flaky"}}.
    A value passes when it is >= threshold, which for 0/1 pass/fail data means "passed".
    `flaky` is True when the row sometimes passes and sometimes fails. A row with only
    errors has n=0 and None statistics.
    """
    out: dict[RowKey, dict] = {}
    for key, values in values_by_row.items():
        raw = _as_list(values)
        clean = _clean(raw)
        n = int(clean.size)
        if n:
            passed = float((clean >= threshold).mean())
            out[key] = {
                "n": n,
                "errors": len(raw) - n,
                "mean": float(clean.mean()),
                "min": float(clean.min()),
                "max": float(clean.max()),
                "pass_fraction": passed,
                "flaky": 0.0 < passed < 1.0,
            }
        else:
            out[key] = {
                "n": 0,
                "errors": len(raw),
                "mean": None,
                "min": None,
                "max": None,
                "pass_fraction": None,
                "flaky": False,
            }
    return out


def _sorted_keys(keys: Iterable[Hashable]) -> list:
    """Row order must not depend on dict order, or the same data could resample differently."""
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=repr)


# ---------------------------------------------------------------- intervals


class MeanCI(NamedTuple):
    mean: float | None
    low: float | None
    high: float | None
    n: int


def _bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of n_boot resamples-with-replacement of x, in chunks to bound memory."""
    n = x.size
    chunk = max(1, _CHUNK_CELLS // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def _percentile_interval(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)


def mean_ci(values: Iterable[Any], confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> MeanCI:
    """Bootstrap percentile confidence interval of a mean, ignoring None/NaN.

    Percentile bootstrap because scores are bounded and often skewed (most rows pass),
    where a normal-theory interval can run past the scale. With fewer than two values
    there is no interval: low/high are None.
    """
    x = _clean(values)
    if x.size == 0:
        return MeanCI(None, None, None, 0)
    if x.size == 1:
        return MeanCI(float(x[0]), None, None, 1)
    boot = _bootstrap_means(x, n_boot, np.random.default_rng(seed))
    low, high = _percentile_interval(boot, confidence)
    return MeanCI(float(x.mean()), low, high, int(x.size))


def wilson_ci(successes: float, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion.

    Preferred over the textbook p +/- z*se because it stays inside [0, 1] and does not
    collapse to zero width at 0/n or n/n, which is common for small pass/fail sets.
    Fractional successes are allowed (pairwise ties count half). n=0 gives (None, None).
    """
    if n <= 0:
        return None, None
    z = _scipy_stats().norm.ppf(1 - (1 - confidence) / 2)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


# ---------------------------------------------------------------- paired tests


@dataclass(frozen=True)
class PairedDifference:
    """One variant (B) against a baseline (A) on the rows both have a value for.

    diff is B - A. wins/ties/losses count rows where B is higher/equal/lower. `test`
    names how p_value was computed; `p_adjusted` is set (Holm) when several variants
    were compared against one baseline, and is then the p-value a verdict should use.
    """

    n: int
    dropped: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    wins: int
    ties: int
    losses: int
    sd_diff: float | None = None
    confidence: float = 0.95
    test: str = "paired permutation"
    statistic: float | None = None
    p_adjusted: float | None = None
    variant: Any = "B"
    baseline: Any = "A"
    kind: str = "score"


def _aligned(a: Sequence[Any] | np.ndarray, b: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs where both sides have a value, and how many pairs were dropped."""
    a_arr = np.array([_to_float(v) for v in a], dtype=float)
    b_arr = np.array([_to_float(v) for v in b], dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired values must align row by row: {a_arr.size} vs {b_arr.size}")
    keep = ~(np.isnan(a_arr) | np.isnan(b_arr))
    return a_arr[keep], b_arr[keep], int((~keep).sum())


def sign_flip_p_value(
    d: np.ndarray, n_perm: int = 10000, seed: int | np.random.SeedSequence = 0
) -> tuple[float | None, bool]:
    """Two-sided paired permutation test of mean(d) == 0 by flipping signs of differences.

    Under "A and B are interchangeable" each row's difference is as likely to be +d as
    -d. Exact enumeration of all 2**n flips when n <= EXACT_PERMUTATION_MAX_N, otherwise
    n_perm random flips with the (count + 1) / (n_perm + 1) correction so p is never 0.
    Returns (p_value, exact). For 0/1 data this is exactly the exact McNemar test.
    """
    d = np.asarray(d, dtype=float)
    n = d.size
    if n == 0:
        return None, True
    observed = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()  # equal sums must compare equal despite float rounding
    if n <= EXACT_PERMUTATION_MAX_N:
        patterns = np.arange(2**n)[:, None] >> np.arange(n) & 1
        sums = (1 - 2 * patterns) @ d
        return float(np.mean(np.abs(sums) >= observed - tol)), True
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    extreme = 0
    for start in range(0, n_perm, chunk):
        size = min(chunk, n_perm - start)
        signs = 1 - 2 * rng.integers(0, 2, size=(size, n), dtype=np.int8)
        extreme += int((np.abs(signs @ d) >= observed - tol).sum())
    return (extreme + 1) / (n_perm + 1), False


def paired_difference(
    a: Sequence[Any], b: Sequence[Any], n_boot: int = 5000, seed: int = 0, confidence: float = 0.95, n_perm: int = 10000
) -> PairedDifference:
    """Compare B with A on aligned per-row values (a[i] and b[i] are the same row).

    Rows where either side is None/NaN are dropped and counted. The CI is a paired
    bootstrap over rows (resampling row differences keeps the pairing); the p-value is
    the sign-flip permutation test, which assumes nothing about the score distribution.
    Fewer than two rows give no CI; zero rows give None everywhere.
    """
    a_kept, b_kept, dropped = _aligned(a, b)
    n = int(a_kept.size)
    if n == 0:
        return PairedDifference(
            n=0,
            dropped=dropped,
            mean_a=None,
            mean_b=None,
            diff=None,
            ci_low=None,
            ci_high=None,
            p_value=None,
            wins=0,
            ties=0,
            losses=0,
            confidence=confidence,
        )
    d = b_kept - a_kept
    tie_tol = 1e-12 * max(1.0, float(np.abs(a_kept).max()), float(np.abs(b_kept).max()))
    wins, losses = int((d > tie_tol).sum()), int((d < -tie_tol).sum())
    boot_seed, perm_seed = np.random.SeedSequence(seed).spawn(2)  # independent streams
    ci_low = ci_high = None
    if n >= 2:
        boot = _bootstrap_means(d, n_boot, np.random.default_rng(boot_seed))
        ci_low, ci_high = _percentile_interval(boot, confidence)
    p_value, exact = sign_flip_p_value(d, n_perm=n_perm, seed=perm_seed)
    return PairedDifference(
        n=n,
        dropped=dropped,
        mean_a=float(a_kept.mean()),
        mean_b=float(b_kept.mean()),
        diff=float(d.mean()),
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        wins=wins,
        ties=n - wins - losses,
        losses=losses,
        sd_diff=float(d.std(ddof=1)) if n >= 2 else None,
        confidence=confidence,
        test="paired permutation (exact)" if exact else f"paired permutation ({n_perm} random sign flips)",
    )


def _binomial_two_sided(k: int, n: int) -> float:
    """Two-sided p of k successes in n fair coin flips (symmetric, so twice the smaller tail)."""
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * _scipy_stats().binom.cdf(min(k, n - k), n, 0.5)))


class McNemarResult(NamedTuple):
    statistic: float
    p_value: float
    b_only: int
    a_only: int
    n: int
    exact: bool


def mcnemar(
    a_pass: Sequence[Any] | np.ndarray, b_pass: Sequence[Any] | np.ndarray, exact: bool | None = None
) -> McNemarResult:
    """McNemar's test for paired pass/fail: only rows where A and B disagree carry information.

    b_only = rows B passes and A fails; a_only = the reverse. Exact binomial test when
    there are fewer than MCNEMAR_EXACT_BELOW discordant rows (statistic = the smaller
    count), else chi-square with continuity correction (statistic = chi-square).
    Pass means a truthy value (> 0.5 for numbers); None/NaN rows are dropped.
    """
    a_kept, b_kept, _ = _aligned(a_pass, b_pass)
    a_ok, b_ok = a_kept > 0.5, b_kept > 0.5
    b_only, a_only = int((b_ok & ~a_ok).sum()), int((a_ok & ~b_ok).sum())
    discordant = b_only + a_only
    if exact is None:
        exact = discordant < MCNEMAR_EXACT_BELOW
    if discordant == 0:
        return McNemarResult(0.0, 1.0, b_only, a_only, int(a_kept.size), exact)
    if exact:
        return McNemarResult(
            float(min(b_only, a_only)), _binomial_two_sided(b_only, discordant), b_only, a_only, int(a_kept.size), True
        )
    chi2 = max(0, abs(b_only - a_only) - 1) ** 2 / discordant
    return McNemarResult(float(chi2), float(_scipy_stats().chi2.sf(chi2, 1)), b_only, a_only, int(a_kept.size), False)


class SignTestResult(NamedTuple):
    p_value: float | None
    wins: int
    losses: int
    ties: int
    n: int


def sign_test(a: Sequence[Any], b: Sequence[Any]) -> SignTestResult:
    """Two-sided sign test: does B beat A on more rows than a coin flip would?

    Uses only the direction of each row's difference, so it is robust to a few rows
    with huge differences, at the cost of power. Ties are dropped (standard practice);
    n is wins + losses. No untied rows gives p_value None.
    """
    a_kept, b_kept, _ = _aligned(a, b)
    wins, losses = int((b_kept > a_kept).sum()), int((b_kept < a_kept).sum())
    n = wins + losses
    p = _binomial_two_sided(wins, n) if n else None
    return SignTestResult(p, wins, losses, int(a_kept.size) - n, n)


# ---------------------------------------------------------------- several variants


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (None stays None and is not counted as a test).

    Holm rather than Bonferroni: it controls the same family-wise error rate and is
    never less powerful.
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_variants(
    values: Mapping[Any, Mapping[Any, Any]],
    baseline: Any,
    kind: str = "score",
    seed: int = 0,
    n_boot: int = 5000,
    confidence: float = 0.95,
) -> list[PairedDifference]:
    """Each variant against the baseline on one scorer, paired by row key.

    values[variant][row] is a value or a list of repeat values (None = errored). Rows are
    reduced to their mean first. A row missing a value for either variant is dropped
    and counted in `dropped`.

    kind="score": paired sign-flip permutation test on per-row means.
    kind="pass": values are 0/1. When every row is a clean 0 or 1 for both variants
    (no repeats, or repeats that agree) the test is McNemar. When repeats make a row's
    pass rate fractional (a flaky row), the test is the permutation test on per-row
    pass rates instead of McNemar on a majority vote: majority voting would make "passes
    2 of 3" identical to "passes 3 of 3" and throw away what the repeats measured. The
    two tests agree on clean 0/1 data (exact sign flips on -1/0/+1 are exact McNemar).

    Every comparison uses the same seed, so a variant's interval does not change when
    another variant is added. With more than one comparison `p_adjusted` holds
    Holm-adjusted p-values; see `multiple_comparisons_note`.
    """
    if kind not in ("score", "pass"):
        raise ValueError(f"kind must be 'score' or 'pass', not {kind!r}")
    if baseline not in values:
        raise KeyError(f"baseline {baseline!r} is not among the variants {list(values)}")
    base_means = row_means(values[baseline])
    results = []
    for variant, by_row in values.items():
        if variant == baseline:
            continue
        means = row_means(by_row)
        keys = _sorted_keys(set(values[baseline]) | set(by_row))
        a = [base_means.get(k) for k in keys]
        b = [means.get(k) for k in keys]
        result = paired_difference(a, b, n_boot=n_boot, seed=seed, confidence=confidence)
        result = replace(result, variant=variant, baseline=baseline, kind=kind)
        if kind == "pass" and result.n:
            a_kept, b_kept, _ = _aligned(a, b)
            if np.isin(a_kept, (0.0, 1.0)).all() and np.isin(b_kept, (0.0, 1.0)).all():
                mc = mcnemar(a_kept, b_kept)
                name = "McNemar exact" if mc.exact else "McNemar chi-square (continuity-corrected)"
                result = replace(result, p_value=mc.p_value, statistic=mc.statistic, test=name)
            else:
                result = replace(result, test=result.test + " on per-row pass rates")
        results.append(result)
    if sum(r.p_value is not None for r in results) > 1:
        adjusted = holm_adjust([r.p_value for r in results])
        results = [replace(r, p_adjusted=p) for r, p in zip(results, adjusted)]
    return results


def multiple_comparisons_note(results: Sequence[PairedDifference], alpha: float = 0.05) -> str | None:
    """Why the p-values shown are adjusted, when several variants face one baseline; else None."""
    tested = [r for r in results if r.p_value is not None]
    if len(tested) < 2:
        return None
    baseline = tested[0].baseline
    return (
        f"{len(tested)} variants were each compared with {baseline}, so {len(tested)} tests ran. "
        f"p-values are Holm-adjusted to keep the chance of any false 'better' or 'worse' "
        f"verdict under {alpha:.0%}; confidence intervals are per comparison and not adjusted."
    )


# ---------------------------------------------------------------- words


def _decimals(*xs: float | None) -> int:
    """Enough decimals for two significant figures of the largest magnitude, at least 2."""
    biggest = max((abs(x) for x in xs if x is not None), default=0.0)
    if biggest == 0 or biggest >= 0.1:
        return 2 if biggest < 10 else (1 if biggest < 100 else 0)
    return -math.floor(math.log10(biggest)) + 1


def _signed(x: float, decimals: int) -> str:
    """+0.42 / −0.03 with a real minus sign, as it reads in a sentence."""
    if round(x, decimals) == 0:
        x = 0.0
    return f"{x:+.{decimals}f}".replace("-", "\u2212")


def _format_p(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


def verdict(scorer_name: str, result: PairedDifference, alpha: float = 0.05) -> str:
    """One plain sentence: is the variant better, worse, or not detectably different?

    The call rests on the p-value (Holm-adjusted when present) against alpha; the
    difference and its CI are printed so the size of the effect is always in view.
    Pass/fail differences are shown in percentage points.
    """
    b, a = result.variant, result.baseline
    if result.n == 0 or result.diff is None:
        return f"cannot compare {b} with {a} on {scorer_name}: no rows where both have a value"
    scale, unit = (100.0, " pp") if result.kind == "pass" else (1.0, "")
    diff = result.diff * scale
    low = None if result.ci_low is None else result.ci_low * scale
    high = None if result.ci_high is None else result.ci_high * scale
    dec = _decimals(diff, low, high)
    parts = [f"{_signed(diff, dec)}{unit}"]
    level = f"{result.confidence * 100:g}% CI"
    parts.append(
        f"{level} {_signed(low, dec)} to {_signed(high, dec)}{unit}"
        if low is not None and high is not None
        else f"no {level} from {result.n} row"
    )
    p = result.p_adjusted if result.p_adjusted is not None else result.p_value
    if p is not None:
        parts.append(("Holm-adjusted " if result.p_adjusted is not None else "") + _format_p(p))
    detail = ", ".join(parts)
    if p is not None and p < alpha and result.diff != 0:
        direction = "better" if result.diff > 0 else "worse"
        return f"{b} is {direction} than {a} on {scorer_name} ({detail})"
    return f"no detectable difference between {b} and {a} on {scorer_name} ({detail})"


def warnings_for(
    result: PairedDifference,
    alpha: float = 0.05,
    min_n: int = 10,
    scale: float | None = None,
    wide_fraction: float = 0.5,
) -> list[str]:
    """Reasons not to trust a verdict yet, as plain sentences (empty list: none).

    scale is the width of the score range (1.0 for 0-1 scores, 9 for a 1-10 rubric); it
    defaults to 1.0 for pass/fail and is otherwise only checked when given, because a
    raw score's range is not known here.
    """
    out = []
    if result.n == 0:
        out.append("no rows where both variants have a value: nothing to compare")
        return out
    if result.n < min_n:
        out.append(
            f"only {result.n} paired row{'s' if result.n != 1 else ''}: too few for a reliable "
            f"comparison (aim for at least {min_n}; required_sample_size estimates how many)"
        )
    if result.ci_low is None:
        out.append("no confidence interval: it needs at least 2 paired rows")
    if result.dropped:
        out.append(
            f"{result.dropped} row{'s' if result.dropped != 1 else ''} dropped because one "
            f"variant had no value (errors or missing rows)"
        )
    if scale is None and result.kind == "pass":
        scale = 1.0
    low, high = result.ci_low, result.ci_high
    if scale and low is not None and high is not None and high - low > wide_fraction * scale:
        out.append(
            f"the {result.confidence * 100:g}% CI spans {high - low:.2g}, more "
            f"than {wide_fraction:.0%} of the scale: add rows before acting on this"
        )
    p = result.p_adjusted if result.p_adjusted is not None else result.p_value
    if p is not None and low is not None and high is not None:
        ci_excludes_zero = low > 0 or high < 0
        if (p < alpha) != ci_excludes_zero:
            out.append("borderline: the test and the confidence interval disagree about whether there is a difference")
    return out


# ---------------------------------------------------------------- planning


def required_sample_size(
    sd_of_differences: float, min_detectable_diff: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Rows needed for a two-sided paired test to detect min_detectable_diff.

    Normal approximation n = ((z_{1-alpha/2} + z_{power}) * sd / diff)**2, rounded up:
    sd=1, diff=0.5 gives 31.4 -> 32. A paired t-test needs a couple more rows (about 34
    there); this is a planning estimate, not a guarantee. At least 2 (for an interval).
    """
    if min_detectable_diff == 0:
        raise ValueError("min_detectable_diff must be non-zero")
    if sd_of_differences < 0:
        raise ValueError("sd_of_differences must be >= 0")
    z = _scipy_stats().norm.ppf(1 - alpha / 2) + _scipy_stats().norm.ppf(power)
    n = (z * sd_of_differences / abs(min_detectable_diff)) ** 2
    return max(2, math.ceil(n - 1e-9))


def required_sample_size_proportions(
    p_a: float, diff: float, alpha: float = 0.05, power: float = 0.8, p_discordant: float | None = None
) -> int:
    """Rows needed to detect a pass-rate change from p_a to p_a + diff.

    Without p_discordant it assumes the two variants' outcomes on a row are independent,
    giving sd of differences sqrt(pa*qa + pb*qb) (0.5 -> 0.6: 385 rows). Real variants
    usually agree on easy and hard rows, so this is conservative. With p_discordant (the
    expected share of rows where A and B disagree) it uses the McNemar formula
    n = (z_a*sqrt(psi) + z_b*sqrt(psi - diff**2))**2 / diff**2 (Connor 1987).
    """
    p_b = p_a + diff
    if not (0 <= p_a <= 1 and 0 <= p_b <= 1):
        raise ValueError("p_a and p_a + diff must both be proportions in [0, 1]")
    if p_discordant is None:
        return required_sample_size(math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b)), diff, alpha, power)
    if diff == 0:
        raise ValueError("diff must be non-zero")
    if not abs(diff) <= p_discordant <= 1:
        raise ValueError("p_discordant must be between |diff| and 1")
    z_a, z_b = _scipy_stats().norm.ppf(1 - alpha / 2), _scipy_stats().norm.ppf(power)
    n = (z_a * math.sqrt(p_discordant) + z_b * math.sqrt(p_discordant - diff * diff)) ** 2 / diff**2
    return max(2, math.ceil(n - 1e-9))


# ---------------------------------------------------------------- pairwise judge

_FIRST, _SECOND, _TIE = "first", "second", "tie"
_POSITIONS = {"first": _FIRST, "a": _FIRST, "second": _SECOND, "b": _SECOND, "tie": _TIE}


def _position(verdict_: str) -> str:
    try:
        return _POSITIONS[str(verdict_).strip().lower()]
    except KeyError:
        raise ValueError(f"judge verdict must be first/second/tie (or A/B/tie by position), not {verdict_!r}") from None


def pairwise_outcome(verdict_ab: str | None, verdict_ba: str | None) -> str | None:
    """Which content won, from a judge asked in both orders: "A", "B" or "tie".

    Convention: verdicts are in *shown-position* terms, "first" | "second" | "tie";
    "A"/"B" are accepted as aliases for first/second because judge prompts usually
    label the two shown answers A and B in display order. verdict_ab is the answer when
    A's output was shown first, verdict_ba when B's output was shown first.

    A winner is declared only when both orders pick the same content. Anything else is
    a tie: the judge preferring the same position both times (position bias), or a win
    in one order and a tie in the other. If either call failed (None) there is no
    outcome (None), which pairwise_win_rate skips rather than counting as a tie.
    """
    if verdict_ab is None or verdict_ba is None:
        return None
    content_ab = {_FIRST: "A", _SECOND: "B", _TIE: "tie"}[_position(verdict_ab)]
    content_ba = {_FIRST: "B", _SECOND: "A", _TIE: "tie"}[_position(verdict_ba)]
    return content_ab if content_ab == content_ba and content_ab != "tie" else "tie"


class WinRate(NamedTuple):
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    counts: dict


def pairwise_win_rate(outcomes: Iterable[str | None], confidence: float = 0.95) -> WinRate:
    """B's win rate over A from pairwise_outcome results, ties counted as half a win.

    Half because a tie is "no preference": 50% then means "no better than A" whether
    the judge called ties or split its wins. The CI is Wilson on (B wins + ties/2) of n,
    slightly conservative when there are ties (a tie has less variance than a coin
    flip). counts = {"A", "B", "tie", "n", "missing"}; None outcomes are missing.
    """
    counts = {"A": 0, "B": 0, "tie": 0, "n": 0, "missing": 0}
    for outcome in outcomes:
        if outcome is None:
            counts["missing"] += 1
        elif outcome in ("A", "B", "tie"):
            counts[outcome] += 1
        else:
            raise ValueError(f"outcome must be 'A', 'B', 'tie' or None, not {outcome!r}")
    n = counts["A"] + counts["B"] + counts["tie"]
    counts["n"] = n
    if n == 0:
        return WinRate(None, None, None, counts)
    score = counts["B"] + 0.5 * counts["tie"]
    low, high = wilson_ci(score, n, confidence)
    return WinRate(score / n, low, high, counts)


# ---------------------------------------------------------------- latency and cost


def summary_stats(values: Iterable[Any]) -> dict:
    """Mean, median and 95th percentile of latency or cost, ignoring None/NaN.

    Percentiles interpolate linearly between order statistics (numpy's default), so
    p95 of 1..10 is 9.55, not 10. `missing` counts None/NaN values (unpriced calls).
    """
    raw = list(values)
    x = _clean(raw)
    if x.size == 0:
        return {"mean": None, "p50": None, "p95": None, "n": 0, "missing": len(raw)}
    p50, p95 = np.percentile(x, [50, 95])
    return {
        "mean": float(x.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "n": int(x.size),
        "missing": len(raw) - int(x.size),
    }
