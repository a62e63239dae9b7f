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
from collections.abc import Callable, Sequence
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


def bootstrap(
    statistic: Callable[[list[int]], float | None], n: int, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float | None, float | None]:
    """Percentile 95% interval of `statistic(indices)` over resamples of the n rows (resamples where
    it is undefined are left out; fewer than half defined: no interval)."""
    if n < 2 or n_boot < 1:  # n_boot 0: the point estimate only (thresholds, warnings)
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        value = statistic(rng.integers(0, n, size=n).tolist())
        if value is not None:
            values.append(value)
    if len(values) < n_boot / 2:
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _with_interval(name: str, function, n: int, n_boot: int, seed: int) -> dict:
    value = function(list(range(n)))
    low, high = bootstrap(function, n, n_boot, seed) if value is not None else (None, None)
    return {"metric": name, "value": value, "low": low, "high": high, "n": n}


def agreement(pairs: Sequence[dict], scale: tuple[int, int] = (1, 5), n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Judge against human on the rows both scored.

    `pairs` holds one dict per row: `judge` and `human` scores (or None) and `judge_pass` and
    `human_pass` verdicts (or None). The human side is already one value per row (the reviewers'
    mean, see workbench.review). Returns {"metrics": [{metric, value, low, high, n}], "confusion":
    {"labels", "matrix"}, "n_scores", "n_verdicts"}.
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

    def pick(values, idx):
        return [values[i] for i in idx]

    metrics = []
    n = len(scored)
    if n:
        metrics += [
            _with_interval("spearman", lambda i: spearman(pick(judge, i), pick(human, i)), n, n_boot, seed),
            _with_interval("kendall", lambda i: kendall(pick(judge, i), pick(human, i)), n, n_boot, seed),
            _with_interval("exact", lambda i: exact(pick(judge, i), pick(human, i)), n, n_boot, seed),
            _with_interval("within_1", lambda i: within_1(pick(judge, i), pick(human, i)), n, n_boot, seed),
            _with_interval(
                "kappa",
                lambda i: kappa(pick(judge_cat, i), pick(human_cat, i), labels, "quadratic"),
                n,
                n_boot,
                seed,
            ),
        ]
    m = len(verdicts)
    if m:
        jp = [j for j, _ in verdicts]
        hp = [h for _, h in verdicts]
        metrics += [
            _with_interval("pass_kappa", lambda i: kappa(pick(jp, i), pick(hp, i), [False, True]), m, n_boot, seed),
            _with_interval("precision", lambda i: precision(pick(jp, i), pick(hp, i)), m, n_boot, seed),
            _with_interval("recall", lambda i: recall(pick(jp, i), pick(hp, i)), m, n_boot, seed),
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
