"""The statistics of a comparison, as one JSON-able summary.

Every number with an interval or a p-value comes from `workbench.stats`; this module only
gathers values per metric and variant and names things. The `summary` dict is what a saved
`comparison` row stores, what the CLI prints, what the reports render, and what a promotion
cites as its evidence.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from workbench import costs, stats
from workbench.compare.alignment import load
from workbench.compare.result import ALPHA, Metric, Result


def values_of(result: Result, metric: Metric) -> dict[str, dict[str, list]]:
    """{variant: {row_key: [values of its repeats]}}, the shape stats.compare_variants takes."""
    return {
        v.label: {
            row["row_key"]: row["values"][metric.name][v.label]
            for row in result.rows
            if v.label in row["values"][metric.name]
        }
        for v in result.variants
    }


def _variant_interval(metric: Metric, by_row: dict, seed: int) -> dict:
    """A variant's own mean (or pass rate) over its rows with a 95% CI: Wilson for clean pass/fail rows."""
    means = stats.row_means(by_row)
    if metric.kind == "pass" and means and all(m in (0.0, 1.0) for m in means.values()):
        passed = sum(means.values())
        low, high = stats.wilson_ci(passed, len(means))
        return {"mean": passed / len(means), "low": low, "high": high, "n": len(means)}
    ci = stats.mean_ci(list(means.values()), seed=seed)
    return {"mean": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n}


def _direction(entry: dict, alpha: float) -> str:
    p = entry["p_adjusted"] if entry["p_adjusted"] is not None else entry["p_value"]
    if p is None or entry["diff"] in (None, 0) or p >= alpha:
        return "none"
    return "better" if entry["diff"] > 0 else "worse"


def _metric_summary(result: Result, metric: Metric, alpha: float, seed: int) -> dict:
    values = values_of(result, metric)
    compared = stats.compare_variants(values, result.baseline, kind=metric.kind, seed=seed)
    comparisons = []
    for paired in compared:
        entry = asdict(paired)
        entry["verdict"] = stats.verdict(metric.name, paired, alpha)
        entry["warnings"] = stats.warnings_for(paired, alpha, scale=metric.scale)
        entry["direction"] = _direction(entry, alpha)
        comparisons.append(entry)
    summary: dict[str, Any] = {
        "metric": metric.name,
        "scorer": metric.scorer,
        "kind": metric.kind,
        "scale": metric.scale,
        "variants": {label: _variant_interval(metric, by_row, seed) for label, by_row in values.items()},
        "comparisons": comparisons,
        "multiple_comparisons": stats.multiple_comparisons_note(compared, alpha),
    }
    if metric.kind == "pass" and max((len(v) for by_row in values.values() for v in by_row.values()), default=1) > 1:
        summary["flaky_rows"] = {
            label: sum(s["flaky"] for s in stats.row_spread(by_row).values()) for label, by_row in values.items()
        }
    return summary


def cost_latency(result: Result) -> list[dict]:
    """Per variant: errors, latency (calls that reached the model) and cost per call and per 1 000 rows.

    A cache hit cost nothing and took no time, which says nothing about the variant, so
    its latency is left out and its cost is what its tokens would cost. Cost per 1 000
    rows is the mean cost of one call times 1 000: what serving 1 000 requests would cost.
    """
    out = []
    for v in result.variants:
        mine = [i for i in result.items if i["variant"] == v.label]
        finished = [i for i in mine if i["status"] != "pending"]
        errors = sum(1 for i in finished if i["status"] != "done")
        latency = stats.summary_stats([i["latency_ms"] for i in finished if i["status"] == "done" and not i["cached"]])
        cost = stats.summary_stats([_call_cost(i) for i in finished if i["call_model"] is not None])
        tokens = stats.summary_stats(
            [(i["input_tokens"] or 0) + (i["output_tokens"] or 0) for i in finished if i["status"] == "done"]
        )
        out.append(
            {
                "variant": v.label,
                "items": len(mine),
                "finished": len(finished),
                "errors": errors,
                "error_rate": errors / len(finished) if finished else None,
                "cached": sum(1 for i in finished if i["cached"]),
                "latency_mean_ms": latency["mean"],
                "latency_p50_ms": latency["p50"],
                "latency_p95_ms": latency["p95"],
                "cost_mean_usd": cost["mean"],
                "cost_per_1k_rows_usd": None if cost["mean"] is None else cost["mean"] * 1000,
                "cost_total_usd": None if cost["mean"] is None else cost["mean"] * cost["n"],
                "unpriced": cost["missing"],
                "tokens_mean": tokens["mean"],
            }
        )
    return out


def _call_cost(item: dict) -> float | None:
    if item["cached"]:
        return costs.call_cost(item["call_model"], item["input_tokens"], item["output_tokens"])
    return item["cost_usd"]


def summarize(result: Result, alpha: float = ALPHA, seed: int = 0) -> dict:
    """The whole comparison as plain JSON-able values: what is saved, printed and reported."""
    repeats = max((len(outs) for row in result.rows for outs in row["outputs"].values()), default=1)
    return {
        "run_ids": result.run_ids,
        "baseline": result.baseline,
        "alpha": alpha,
        "seed": seed,
        "variants": [asdict(v) for v in result.variants],
        "rows": len(result.rows),
        "repeats": repeats,
        "notes": list(result.notes),
        "metrics": [_metric_summary(result, m, alpha, seed) for m in result.metrics],
        "costs": cost_latency(result),
        "pairwise": [],
    }


def compare(run_ids, baseline=None, alpha: float = ALPHA, seed: int = 0) -> Result:
    """Load the runs' variants, pair their rows, and compute every statistic the summary shows."""
    result = load(run_ids, baseline)
    result.summary = summarize(result, alpha, seed)
    return result


def verdicts(summary: dict) -> list[str]:
    """Every plain-words verdict, metric by metric, then the pairwise judge's."""
    lines = [c["verdict"] for m in summary["metrics"] for c in m["comparisons"]]
    return lines + [p["verdict"] for p in summary.get("pairwise", [])]


def directions(summary: dict) -> dict[str, list[tuple[str, str]]]:
    """{variant: [(metric, better|worse|none) against the baseline]}."""
    out: dict[str, list] = {}
    for metric in summary["metrics"]:
        for c in metric["comparisons"]:
            out.setdefault(c["variant"], []).append((metric["metric"], c["direction"]))
    return out


def leader(summary: dict) -> str | None:
    """A suggestion, not a decision: the variant better than the baseline on the most scorers and worse on
    none; the baseline when every other variant is worse on some scorer and better on none; else None."""
    tally = {label: [d for _, d in found] for label, found in directions(summary).items()}
    good = [(d.count("better"), label) for label, d in tally.items() if "better" in d and "worse" not in d]
    if good:
        return max(good)[1]
    if tally and all("worse" in d and "better" not in d for d in tally.values()):
        return summary["baseline"]
    return None
