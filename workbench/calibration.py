"""How well a judge agrees with people, and people with each other: pure functions, no I/O.

A judge's mean score is worth reporting only if it moves with what the team's reviewers say on
the team's own rows. Every statistic comes from a well-kept library (scipy for the correlations,
scikit-learn for kappa, the confusion matrix and precision/recall, `krippendorff` for the
inter-reviewer ceiling), each with a percentile bootstrap interval over rows and the number of
rows it rests on. "Cannot be computed" (too few rows, a constant side) is None, never NaN.

The libraries are imported inside the functions: the pages that show a warning import this
module, and their first view must not wait for scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

N_BOOT = 500
MIN_ROWS = 5  # fewer rows than this: figures are shown but no judge is called poor on them
POOR_KAPPA = 0.4  # below "moderate" (Landis & Koch)
POOR_CORRELATION = 0.4


def round_half_up(value: float) -> int:
    """4.5 -> 5 (Python's round gives 4): a judge's 4.5 reads as 5 to a person."""
    return math.floor(value + 0.5)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def spearman(judge: Sequence[float], human: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(judge) < 2 or len(set(judge)) < 2 or len(set(human)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(spearmanr(judge, human).statistic)


def kendall(judge: Sequence[float], human: Sequence[float]) -> float | None:
    from scipy.stats import kendalltau

    if len(judge) < 2 or len(set(judge)) < 2 or len(set(human)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(kendalltau(judge, human).statistic)


def exact(judge: Sequence[float], human: Sequence[float]) -> float | None:
    if not judge:
        return None
    return sum(round_half_up(j) == round_half_up(h) for j, h in zip(judge, human)) / len(judge)


def within_1(judge: Sequence[float], human: Sequence[float]) -> float | None:
    if not judge:
        return None
    return sum(abs(j - h) <= 1 for j, h in zip(judge, human)) / len(judge)


def kappa(
    judge: Sequence[Any], human: Sequence[Any], labels: Sequence[Any] | None = None, weights=None
) -> float | None:
    """Cohen's kappa (weights None, "linear" or "quadratic"); None when it is undefined (one
    category only on both sides: chance agreement is 1)."""
    from sklearn.metrics import cohen_kappa_score

    if len(judge) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(list(human), list(judge), labels=list(labels) if labels else None, weights=weights)
    return _finite(value)


def confusion(judge: Sequence[Any], human: Sequence[Any], labels: Sequence[Any]) -> list[list[int]]:
    """Rows are the human's categories, columns the judge's, both in `labels` order."""
    from sklearn.metrics import confusion_matrix

    if not judge:
        return [[0] * len(labels) for _ in labels]
    return confusion_matrix(list(human), list(judge), labels=list(labels)).tolist()


def precision(judge_pass: Sequence[bool], human_pass: Sequence[bool]) -> float | None:
    """Of the rows the judge passed, the share people passed too (None if the judge passed none)."""
    from sklearn.metrics import precision_score

    if not any(judge_pass):
        return None
    return float(precision_score(list(human_pass), list(judge_pass), zero_division=0))


def recall(judge_pass: Sequence[bool], human_pass: Sequence[bool]) -> float | None:
    """Of the rows people passed, the share the judge passed (None if people passed none)."""
    from sklearn.metrics import recall_score

    if not any(human_pass):
        return None
    return float(recall_score(list(human_pass), list(judge_pass), zero_division=0))


def krippendorff_alpha(
    ratings: Sequence[Sequence[float | None]], level: Literal["nominal", "ordinal", "interval", "ratio"] = "ordinal"
) -> float | None:
    """Agreement among reviewers: `ratings` is one list per reviewer, one entry per item (None where
    that reviewer did not label it). Items with fewer than two labels do not count. None when
    fewer than two items have two labels or every label is the same value."""
    import krippendorff

    data = np.array([[np.nan if v is None else float(v) for v in row] for row in ratings], dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    paired = (~np.isnan(data)).sum(axis=0) >= 2
    if paired.sum() < 2:
        return None
    values = data[:, paired]
    if len(set(values[~np.isnan(values)].tolist())) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(krippendorff.alpha(reliability_data=values, level_of_measurement=level))


# ---------------------------------------------------------------- bootstrap
# The intervals resample rows n_boot times. Calling the libraries once per resample costs ~75 ms of
# CPU per resample for the eight metrics, so the resampled statistics are computed here, vectorised
# over all resamples at once, with the same definitions (tests check them against the libraries at
# the identity resample); the point estimates above stay the libraries' own.

_CHUNK_CELLS = 2_000_000


def resamples(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n) row indices, each row a resample with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (x * y).sum(axis=1) / denominator, np.nan)


def spearman_rows(judge: np.ndarray, human: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return _pearson_rows(rankdata(judge, axis=1), rankdata(human, axis=1))


def kendall_rows(judge: np.ndarray, human: np.ndarray) -> np.ndarray:
    """Kendall's tau-b per row (what scipy's kendalltau computes by default)."""
    rows, n = judge.shape
    out = np.empty(rows)
    chunk = max(1, _CHUNK_CELLS // max(1, n * n))
    for start in range(0, rows, chunk):
        j, h = judge[start : start + chunk], human[start : start + chunk]
        sj = np.sign(j[:, :, None] - j[:, None, :])
        sh = np.sign(h[:, :, None] - h[:, None, :])
        denominator = np.sqrt((sj * sj).sum(axis=(1, 2)) * (sh * sh).sum(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(denominator > 0, (sj * sh).sum(axis=(1, 2)) / denominator, np.nan)
    return out


def _confusions(judge_codes: np.ndarray, human_codes: np.ndarray, k: int) -> np.ndarray:
    """(rows, k, k) confusion matrices (human x judge) from category codes 0..k-1 per row."""
    rows = judge_codes.shape[0]
    flat = (np.arange(rows)[:, None] * k * k + human_codes * k + judge_codes).ravel()
    return np.bincount(flat, minlength=rows * k * k).reshape(rows, k, k).astype(float)


def kappa_rows(judge_codes: np.ndarray, human_codes: np.ndarray, k: int, weights: str | None = None) -> np.ndarray:
    """Cohen's kappa per row, as scikit-learn defines it (weights None, linear or quadratic)."""
    observed = _confusions(judge_codes, human_codes, k)
    total = observed.sum(axis=(1, 2), keepdims=True)
    expected = observed.sum(axis=2, keepdims=True) * observed.sum(axis=1, keepdims=True) / total
    grid = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(float)
    weight = (grid > 0).astype(float) if weights is None else grid if weights == "linear" else grid**2
    disagreement = (weight * expected).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(disagreement > 0, 1 - (weight * observed).sum(axis=(1, 2)) / disagreement, np.nan)


def precision_rows(judge: np.ndarray, human: np.ndarray) -> np.ndarray:
    passed = judge.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(passed > 0, (judge & human).sum(axis=1) / passed, np.nan)


def recall_rows(judge: np.ndarray, human: np.ndarray) -> np.ndarray:
    return precision_rows(human, judge)


def interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """95% percentile interval of the defined resampled values (none when fewer than half are)."""
    finite = values[np.isfinite(values)]
    if values.size == 0 or finite.size < values.size / 2:
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def _entry(name: str, value: float | None, boot, n: int, idx: np.ndarray | None) -> dict:
    low, high = interval(boot(idx)) if value is not None and idx is not None and n >= 2 else (None, None)
    return {"metric": name, "value": value, "low": low, "high": high, "n": n}


def agreement(pairs: Sequence[dict], scale: tuple[int, int] = (1, 5), n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Judge against human on the rows both scored.

    `pairs` holds one dict per row: `judge` and `human` scores (or None) and `judge_pass` and
    `human_pass` verdicts (or None). The human side is already one value per row (the reviewers'
    mean, see workbench.review). Returns {"metrics": [{metric, value, low, high, n}], "confusion":
    {"labels", "matrix"}, "n_scores", "n_verdicts"}; n_boot 0 gives point estimates only.
    """
    scored = [
        (float(p["judge"]), float(p["human"]))
        for p in pairs
        if p.get("judge") is not None and p.get("human") is not None
    ]
    verdicts = [
        (bool(p["judge_pass"]), bool(p["human_pass"]))
        for p in pairs
        if p.get("judge_pass") is not None and p.get("human_pass") is not None
    ]
    labels = list(range(int(scale[0]), int(scale[1]) + 1))
    judge = [j for j, _ in scored]
    human = [h for _, h in scored]
    judge_cat = [min(max(round_half_up(j), labels[0]), labels[-1]) for j in judge]
    human_cat = [min(max(round_half_up(h), labels[0]), labels[-1]) for h in human]
    metrics = []
    n = len(scored)
    if n:
        idx = resamples(n, n_boot, seed) if n_boot > 0 else None
        j, h = np.array(judge), np.array(human)
        jc, hc = np.array(judge_cat) - labels[0], np.array(human_cat) - labels[0]
        k = len(labels)
        metrics += [
            _entry("spearman", spearman(judge, human), lambda i: spearman_rows(j[i], h[i]), n, idx),
            _entry("kendall", kendall(judge, human), lambda i: kendall_rows(j[i], h[i]), n, idx),
            _entry("exact", exact(judge, human), lambda i: (jc[i] == hc[i]).mean(axis=1), n, idx),
            _entry("within_1", within_1(judge, human), lambda i: (np.abs(j[i] - h[i]) <= 1).mean(axis=1), n, idx),
            _entry(
                "kappa",
                kappa(judge_cat, human_cat, labels, "quadratic"),
                lambda i: kappa_rows(jc[i], hc[i], k, "quadratic"),
                n,
                idx,
            ),
        ]
    m = len(verdicts)
    if m:
        idx = resamples(m, n_boot, seed) if n_boot > 0 else None
        jp, hp = [a for a, _ in verdicts], [b for _, b in verdicts]
        jv, hv = np.array(jp, dtype=bool), np.array(hp, dtype=bool)
        metrics += [
            _entry(
                "pass_kappa",
                kappa(jp, hp, [False, True]),
                lambda i: kappa_rows(jv[i].astype(int), hv[i].astype(int), 2),
                m,
                idx,
            ),
            _entry("precision", precision(jp, hp), lambda i: precision_rows(jv[i], hv[i]), m, idx),
            _entry("recall", recall(jp, hp), lambda i: recall_rows(jv[i], hv[i]), m, idx),
        ]
    return {
        "metrics": metrics,
        "confusion": {"labels": labels, "matrix": confusion(judge_cat, human_cat, labels)},
        "n_scores": n,
        "n_verdicts": m,
    }


def value_of(result: dict, metric: str) -> float | None:
    return next((m["value"] for m in result.get("metrics", []) if m["metric"] == metric), None)


def poor(result: dict) -> str | None:
    """Why a judge should not be trusted on this data, or None: kappa (on scores, else on pass/fail)
    or Spearman below the bars, on at least MIN_ROWS rows."""
    if result.get("n_scores", 0) >= MIN_ROWS:
        k = value_of(result, "kappa")
        rho = value_of(result, "spearman")
        if k is not None and k < POOR_KAPPA:
            return f"weighted kappa {k:.2f} with people on {result['n_scores']} rows"
        if rho is not None and rho < POOR_CORRELATION:
            return f"Spearman {rho:.2f} with people on {result['n_scores']} rows"
    elif result.get("n_verdicts", 0) >= MIN_ROWS:
        k = value_of(result, "pass_kappa")
        if k is not None and k < POOR_KAPPA:
            return f"kappa {k:.2f} on pass/fail with people on {result['n_verdicts']} rows"
    return None
