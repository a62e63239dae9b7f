"""A/B comparison of prompt versions and models on the same dataset rows.

A *variant* is (run, prompt version, model): one run may hold several (a run over two
prompt versions, or three models), or the user picks several runs. Rows pair up by
`dataset_row.row_key`, which is stable across dataset versions, so runs over different
versions of one dataset still pair; the comparison then says so, because a row's text
may have changed in between.

This module only gathers values and names things. Every number with an interval or a
p-value comes from `workbench.stats`, and everything a user sees ends up in one
JSON-able `summary` dict: it is what a saved `comparison` row stores, what the CLI
prints, what the reports render, and what a promotion cites as its evidence.
"""

from __future__ import annotations

import asyncio
import difflib
import html
import json
import re
import sys
from dataclasses import asdict, dataclass, field

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import select

from storage.db import engine as db_engine
from storage.db import session
from storage.tables import (
    Comparison,
    Dataset,
    DatasetRow,
    DatasetVersion,
    LlmCall,
    Prompt,
    PromptVersion,
    Run,
    RunItem,
    Score,
)
from workbench import costs, prompts, stats
from workbench.errors import NotFound, WorkbenchError

ALPHA = 0.05
PROMOTE_LABEL = "production"
NOT_INPUT = ("expected", "id", "row_key")  # dataset columns that are not the question put to the model


@dataclass(frozen=True)
class Variant:
    run_id: int
    prompt_version_id: int
    model: str
    prompt: str
    version: int
    prompt_model: str  # the model the prompt version itself names (a run may have used another)
    dataset: str  # "name@version" of the run's dataset
    dataset_version_id: int | None
    items: int
    label: str = ""


@dataclass(frozen=True)
class Metric:
    """One thing compared: a scorer's pass rate (kind "pass") or its score (kind "score").

    A judge gives both a 1-5 score and a pass/fail against its threshold; the two are
    compared separately because they answer different questions. `scale` is the width
    of the score range when known (1.0 for 0-1 scores and pass rates), used to flag
    intervals too wide to act on.
    """

    name: str
    scorer: str
    kind: str
    scale: float | None


@dataclass
class Result:
    run_ids: list[int]
    variants: list[Variant]
    baseline: str
    metrics: list[Metric]
    rows: list[dict]  # aligned by row_key: input, expected, outputs[label], values[metric][label]
    items: list[dict]  # one per run item, for cost and latency
    notes: list[str]
    summary: dict = field(default_factory=dict)

    def variant(self, label: str) -> Variant:
        for v in self.variants:
            if v.label == label:
                return v
        raise WorkbenchError(f"No variant {label!r}; variants: {', '.join(v.label for v in self.variants)}.")


# ---------------------------------------------------------------- variants and rows


def _run_ids(run_ids) -> list[int]:
    ids = list(dict.fromkeys(int(r) for r in run_ids))
    if not ids:
        raise WorkbenchError("Pick at least one run to compare.")
    with session() as s:
        found = set(s.exec(select(Run.id).where(Run.id.in_(ids))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No run with id {', '.join(map(str, missing))}.")
    return ids


def _labels(found: list[Variant]) -> list[str]:
    """Short names that still tell the variants apart: only the parts that differ are kept."""
    parts = [(f"#{v.run_id}", f"{v.prompt}@{v.version}", v.model) for v in found]
    varying = [i for i in range(3) if len({p[i] for p in parts}) > 1] or [0, 1, 2]
    return [" ".join(p[i] for i in varying) for p in parts]


def variants(run_ids) -> list[Variant]:
    """The (run, prompt version, model) combinations in these runs, in the order the runs were given."""
    ids = _run_ids(run_ids)
    columns = (
        RunItem.run_id,
        RunItem.prompt_version_id,
        RunItem.model,
        Prompt.name,
        PromptVersion.version,
        PromptVersion.model,
        Run.dataset_version_id,
        Dataset.name,
        DatasetVersion.version,
    )
    query = (
        sa_select(*columns, func.count(RunItem.id))
        .join(PromptVersion, PromptVersion.id == RunItem.prompt_version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .join(Run, Run.id == RunItem.run_id)
        .join(DatasetVersion, DatasetVersion.id == Run.dataset_version_id, isouter=True)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id, isouter=True)
        .where(RunItem.run_id.in_(ids))
        .group_by(*columns)
    )
    with db_engine().connect() as conn:
        rows = conn.execute(query).all()
    found = sorted(
        (
            Variant(
                run_id=r[0],
                prompt_version_id=r[1],
                model=r[2],
                prompt=r[3],
                version=r[4],
                prompt_model=r[5],
                dataset=f"{r[7]}@{r[8]}" if r[7] else "?",
                dataset_version_id=r[6],
                items=r[9],
            )
            for r in rows
        ),
        key=lambda v: (ids.index(v.run_id), v.prompt, v.version, v.model),
    )
    return [Variant(**{**asdict(v), "label": label}) for v, label in zip(found, _labels(found))]


def pick_variant(found: list[Variant], ref) -> Variant:
    """A variant by label, by 1-based position, or by run id when that run holds one variant."""
    text = str(ref).strip()
    for v in found:
        if v.label == text:
            return v
    if text.lstrip("#").isdigit():
        number = int(text.lstrip("#"))
        in_run = [v for v in found if v.run_id == number]
        if len(in_run) == 1:
            return in_run[0]
        if len(in_run) > 1:
            raise WorkbenchError(
                f"Run {number} holds {len(in_run)} variants; name one: " + ", ".join(repr(v.label) for v in in_run)
            )
        if not text.startswith("#") and 1 <= number <= len(found):
            return found[number - 1]
    matches = [v for v in found if text.lower() in v.label.lower()]
    if len(matches) == 1:
        return matches[0]
    raise WorkbenchError(f"No single variant matches {text!r}; variants: " + ", ".join(repr(v.label) for v in found))


def _input_text(data: dict) -> str:
    """What was asked: the row minus its answer key, one value bare or several as `column: value` lines."""
    shown = {k: v for k, v in (data or {}).items() if k not in NOT_INPUT}
    if len(shown) == 1:
        return str(next(iter(shown.values())))
    return "\n".join(f"{k}: {v}" for k, v in shown.items())


def _load_items(ids: list[int], label_of: dict) -> list[dict]:
    query = (
        sa_select(
            RunItem.id,
            RunItem.run_id,
            RunItem.prompt_version_id,
            RunItem.model,
            RunItem.repeat,
            RunItem.status,
            RunItem.error,
            DatasetRow.row_key,
            DatasetRow.data,
            DatasetRow.dataset_version_id,
            LlmCall.model,
            LlmCall.output,
            LlmCall.latency_ms,
            LlmCall.cost_usd,
            LlmCall.cached,
            LlmCall.input_tokens,
            LlmCall.output_tokens,
            LlmCall.error,
        )
        .join(DatasetRow, DatasetRow.id == RunItem.dataset_row_id)
        .join(LlmCall, LlmCall.id == RunItem.call_id, isouter=True)
        .where(RunItem.run_id.in_(ids))
        .order_by(RunItem.run_id, DatasetRow.position, RunItem.repeat, RunItem.id)
    )
    with db_engine().connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "item_id": r[0],
            "variant": label_of[(r[1], r[2], r[3])],
            "repeat": r[4],
            "status": r[5],
            "row_key": r[7],
            "data": r[8] or {},
            "dataset_version_id": r[9],
            "call_model": r[10],
            "output": r[11],
            "latency_ms": r[12],
            "cost_usd": r[13],
            "cached": r[14],
            "input_tokens": r[15],
            "output_tokens": r[16],
            "error": r[6] or r[17],
        }
        for r in rows
    ]


def _load_scores(ids: list[int]) -> dict[int, dict]:
    """{item id: {scorer: (value, passed, error)}}; a re-scored item keeps its latest score."""
    query = (
        sa_select(Score.run_item_id, Score.scorer_name, Score.value, Score.passed, Score.error)
        .join(RunItem, RunItem.id == Score.run_item_id)
        .where(RunItem.run_id.in_(ids))
        .order_by(Score.id)
    )
    out: dict[int, dict] = {}
    with db_engine().connect() as conn:
        for item_id, name, value, passed, error in conn.execute(query):
            out.setdefault(item_id, {})[name] = (value, passed, error)
    return out


def _judge_scale(configs: list[dict], scorer: str) -> float | None:
    from workbench.scoring import scorer_name
    from workbench.scoring.judge import judge_config

    for config in configs:
        if isinstance(config, dict) and config.get("type") == "llm_judge" and scorer_name(config) == scorer:
            low, high = judge_config(config)["scale"]
            return high - low
    return None


def _metrics(scores: dict[int, dict], configs: list[dict]) -> list[Metric]:
    """Which scorers give a pass/fail, a score, or both (a score that is just the pass as 0/1 is not repeated)."""
    seen: dict[str, dict] = {}
    for by_name in scores.values():
        for name, (value, passed, error) in by_name.items():
            flags = seen.setdefault(name, {"pass": False, "score": False, "values": []})
            if error is not None:
                continue
            if passed is not None:
                flags["pass"] = True
            if value is not None:
                flags["values"].append(float(value))
                if passed is None or float(value) != float(bool(passed)):
                    flags["score"] = True
    metrics = []
    for name in sorted(seen):
        flags = seen[name]
        both = flags["pass"] and flags["score"]
        if flags["pass"]:
            metrics.append(Metric(f"{name} pass rate" if both else name, name, "pass", 1.0))
        if flags["score"] or not flags["pass"]:
            values = flags["values"]
            unit = bool(values) and min(values) >= 0 and max(values) <= 1
            metrics.append(
                Metric(f"{name} score" if both else name, name, "score", 1.0 if unit else _judge_scale(configs, name))
            )
    return metrics


def _value(metric: Metric, score) -> float | None:
    if score is None:
        return None
    value, passed, error = score
    if error is not None:
        return None
    if metric.kind == "pass":
        return None if passed is None else float(bool(passed))
    return None if value is None else float(value)


def _align(items: list[dict], scores: dict, metrics: list[Metric], baseline: str) -> tuple[list[dict], int]:
    """Rows keyed by row_key with every variant's outputs and metric values (a list per row: its repeats).

    Input and expected come from the baseline's dataset row when it has one. Returns the
    rows and how many row keys carry different content in different dataset versions.
    """
    rows: dict[str, dict] = {}
    contents: dict[str, set] = {}
    for item in items:
        row = rows.setdefault(
            item["row_key"],
            {
                "row_key": item["row_key"],
                "data": item["data"],
                "outputs": {},
                "errors": {},
                "values": {m.name: {} for m in metrics},
                "from_baseline": False,
            },
        )
        if item["variant"] == baseline and not row["from_baseline"]:
            row["data"], row["from_baseline"] = item["data"], True
        contents.setdefault(item["row_key"], set()).add(json.dumps(item["data"], sort_keys=True, default=str))
        row["outputs"].setdefault(item["variant"], []).append(item["output"])
        row["errors"].setdefault(item["variant"], []).append(item["error"] if item["status"] != "done" else None)
        for metric in metrics:
            score = scores.get(item["item_id"], {}).get(metric.scorer)
            row["values"][metric.name].setdefault(item["variant"], []).append(_value(metric, score))
    out = []
    for row in rows.values():
        data = row.pop("data")
        row.pop("from_baseline")
        out.append(
            {
                "row_key": row["row_key"],
                "input": _input_text(data),
                "expected": data.get("expected"),
                "data": data,
                **row,
            }
        )
    return out, sum(len(c) > 1 for c in contents.values())


def load(run_ids, baseline=None) -> Result:
    """Variants, aligned rows and per-item measurements for these runs (statistics: `compare`)."""
    ids = _run_ids(run_ids)
    found = variants(ids)
    if len(found) < 2:
        raise WorkbenchError(
            "A comparison needs at least two variants: pick two runs, or one run with several "
            "prompt versions or models."
        )
    base = pick_variant(found, baseline) if baseline not in (None, "") else found[0]
    label_of = {(v.run_id, v.prompt_version_id, v.model): v.label for v in found}
    with session() as s:
        configs = [
            c
            for config in s.exec(select(Run.config).where(Run.id.in_(ids))).all()
            for c in (config.get("scorers") or [])
        ]
    items = _load_items(ids, label_of)
    scores = _load_scores(ids)
    metrics = _metrics(scores, configs)
    rows, changed = _align(items, scores, metrics, base.label)
    notes = _notes(found, items, rows, changed, metrics)
    return Result(
        run_ids=ids, variants=found, baseline=base.label, metrics=metrics, rows=rows, items=items, notes=notes
    )


def _notes(found: list[Variant], items: list[dict], rows: list[dict], changed: int, metrics: list[Metric]) -> list[str]:
    """Reasons to read the numbers with care, found before any statistics are computed."""
    notes = []
    names = {v.dataset.rpartition("@")[0] for v in found}
    versions = sorted({v.dataset for v in found})
    if len(names) > 1:
        notes.append(
            f"The runs used different datasets ({', '.join(versions)}): only rows with the same row key "
            f"pair up, and those may not be the same question."
        )
    elif len(versions) > 1:
        notes.append(
            f"The runs used different dataset versions ({', '.join(versions)}); rows are aligned by row "
            f"key anyway."
            + (f" {changed} row{'s' if changed != 1 else ''} changed content between versions." if changed else "")
        )
    partial = sum(1 for row in rows if len(row["outputs"]) < len(found))
    if partial:
        notes.append(
            f"{partial} of {len(rows)} rows are missing from some variants; they count as dropped in "
            f"the paired statistics."
        )
    for v in found:
        pending = sum(1 for i in items if i["variant"] == v.label and i["status"] == "pending")
        if pending:
            notes.append(f"{v.label}: {pending} of {v.items} items are not finished yet; comparing what is done.")
    repeats = {v.label: max((len(r["outputs"].get(v.label, [])) for r in rows), default=0) for v in found}
    if len(set(repeats.values())) > 1:
        notes.append(
            "The variants ran different numbers of repeats ("
            + ", ".join(f"{k}: {n}" for k, n in repeats.items())
            + "); statistics use per-row means."
        )
    if not metrics:
        notes.append(
            "No scores were recorded for these runs: add scorers on the Runs page (re-score) to compare "
            "quality; cost and latency are still compared."
        )
    return notes


# ---------------------------------------------------------------- statistics


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
    summary = {
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


def _directions(summary: dict) -> dict[str, list[tuple[str, str]]]:
    """{variant: [(metric, better|worse|none) against the baseline]}."""
    out: dict[str, list] = {}
    for metric in summary["metrics"]:
        for c in metric["comparisons"]:
            out.setdefault(c["variant"], []).append((metric["metric"], c["direction"]))
    return out


def leader(summary: dict) -> str | None:
    """A suggestion, not a decision: the variant better than the baseline on the most scorers and worse on
    none; the baseline when every other variant is worse on some scorer and better on none; else None."""
    tally = {label: [d for _, d in found] for label, found in _directions(summary).items()}
    good = [(d.count("better"), label) for label, d in tally.items() if "better" in d and "worse" not in d]
    if good:
        return max(good)[1]
    if tally and all("worse" in d and "better" not in d for d in tally.values()):
        return summary["baseline"]
    return None


def sample_size_advice(entry: dict, min_diff: float, alpha: float = ALPHA, power: float = 0.8) -> dict:
    """How many paired rows would detect `min_diff` (a proportion for pass rates) with this spread.

    Uses the observed sd of per-row differences (stats.required_sample_size). When the
    variants never differed on a row there is no spread to go on; for pass rates the
    conservative independent-outcomes formula is used instead.
    """
    if not min_diff:
        raise WorkbenchError("Choose a non-zero difference to detect.")
    sd, n, unit = entry.get("sd_diff"), entry.get("n", 0), " pp" if entry.get("kind") == "pass" else ""
    shown = f"{min_diff * 100:g}{unit}" if unit else f"{min_diff:g}"
    if sd is None:
        return {"rows": None, "message": "Needs at least 2 paired rows to estimate how much rows vary."}
    if sd == 0:
        if entry.get("kind") == "pass" and entry.get("mean_a") is not None:
            p_a = min(max(entry["mean_a"], 0.0), 1.0)
            diff = min_diff if 0 <= p_a + min_diff <= 1 else -min_diff
            if not 0 <= p_a + diff <= 1:
                return {"rows": None, "message": f"A pass rate of {p_a:.0%} cannot move by {shown}."}
            rows = stats.required_sample_size_proportions(p_a, diff, alpha, power)
            return {
                "rows": rows,
                "message": f"The variants never differed on a row, so there is no observed "
                f"spread; assuming independent outcomes (conservative), about {rows} "
                f"rows would detect {shown} with {power:.0%} power. This comparison "
                f"has {n}.",
            }
        return {"rows": None, "message": "The variants never differed on a row: there is no spread to plan from."}
    rows = stats.required_sample_size(sd, min_diff, alpha, power)
    return {
        "rows": rows,
        "message": f"About {rows} paired rows would detect a difference of {shown} with "
        f"{power:.0%} power at alpha {alpha:g} (observed sd of row differences "
        f"{sd:.3g}). This comparison has {n}.",
    }


# ---------------------------------------------------------------- rows side by side

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
DEL_STYLE = "background:#ffd7d5;text-decoration:line-through;"
INS_STYLE = "background:#ccffd8;text-decoration:none;"


def word_diff_html(base: str | None, other: str | None) -> str:
    """`other` as escaped HTML with words removed from `base` struck through and added words marked.

    Word level (punctuation and whitespace are their own tokens) because model outputs
    rarely share lines but often share most words. Every piece of text is escaped, so an
    output holding HTML shows as text.
    """
    a, b = _TOKEN.findall(base or ""), _TOKEN.findall(other or "")
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(html.escape("".join(b[j1:j2])))
            continue
        if i2 > i1:
            out.append(f'<del style="{DEL_STYLE}">{html.escape("".join(a[i1:i2]))}</del>')
        if j2 > j1:
            out.append(f'<ins style="{INS_STYLE}">{html.escape("".join(b[j1:j2]))}</ins>')
    return f'<div style="white-space:pre-wrap">{"".join(out)}</div>'


def _first(values: list):
    return next((v for v in values if v is not None), None)


def _mean(values: list) -> float | None:
    clean = [v for v in values if v is not None]
    return sum(clean) / len(clean) if clean else None


def _disagreement(row: dict, metrics: list[Metric], labels: list[str]) -> tuple[float, float]:
    """(score spread across variants, output dissimilarity): what 'disagree most' sorts by."""
    spread = 0.0
    for metric in metrics:
        means = [m for m in (_mean(row["values"][metric.name].get(label, [])) for label in labels) if m is not None]
        if len(means) > 1:
            spread += (max(means) - min(means)) / (metric.scale or 1.0)
    outputs = [(_first(row["outputs"].get(label, [])) or "").split() for label in labels]
    text = max((1 - difflib.SequenceMatcher(a=outputs[0], b=o).ratio() for o in outputs[1:]), default=0.0)
    return spread, text


def row_view(
    result: Result,
    order: str = "row",
    lost: str | None = None,
    metric: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    diffs: bool = True,
) -> dict:
    """Rows side by side: input, expected, each variant's output (word diff against the baseline) and scores.

    order="disagreement" puts rows where the variants' scores (then outputs) differ most
    first. lost=<variant> keeps rows where that variant scored below the baseline on
    `metric` (or on any metric). With repeats, each score is the row mean and `spread`
    holds the per-row pass fraction and whether the row is flaky.
    """
    labels = [result.baseline] + [v.label for v in result.variants if v.label != result.baseline]
    metrics = [m for m in result.metrics if metric in (None, m.name)]
    rows = result.rows
    if lost is not None:
        result.variant(lost)

        def lost_here(row):
            for m in metrics:
                base = _mean(row["values"][m.name].get(result.baseline, []))
                mine = _mean(row["values"][m.name].get(lost, []))
                if base is not None and mine is not None and mine < base:
                    return True
            return False

        rows = [row for row in rows if lost_here(row)]
    if order == "disagreement":
        rows = sorted(rows, key=lambda row: _disagreement(row, result.metrics, labels), reverse=True)
    total = len(rows)
    rows = rows[offset : None if limit is None else offset + limit]
    out = []
    for row in rows:
        base_output = _first(row["outputs"].get(result.baseline, []))
        shown = {}
        for label in labels:
            outputs = row["outputs"].get(label, [])
            output = _first(outputs)
            entry = {
                "output": output,
                "outputs": outputs,
                "error": _first(row["errors"].get(label, [])),
                "scores": {m.name: _mean(row["values"][m.name].get(label, [])) for m in result.metrics},
                "spread": {},
            }
            if len(outputs) > 1:
                entry["spread"] = {
                    m.name: stats.row_spread({0: row["values"][m.name].get(label, [])})[0]
                    for m in result.metrics
                    if m.kind == "pass"
                }
            if diffs:
                entry["html"] = (
                    f'<div style="white-space:pre-wrap">{html.escape(output or "")}</div>'
                    if label == result.baseline
                    else word_diff_html(base_output, output)
                )
            shown[label] = entry
        out.append(
            {
                "row_key": row["row_key"],
                "input": row["input"],
                "expected": row["expected"],
                "variants": shown,
                "flaky": any(s.get("flaky") for e in shown.values() for s in e["spread"].values()),
            }
        )
    return {"total": total, "rows": out}


def flaky_rows(result: Result) -> list[dict]:
    """With repeats: rows where some variant sometimes passes and sometimes fails, with each pass fraction."""
    out = []
    for row in row_view(result, diffs=False)["rows"]:
        if not row["flaky"]:
            continue
        record = {"row_key": row["row_key"], "input": row["input"]}
        for label, entry in row["variants"].items():
            for name, spread in entry["spread"].items():
                record[f"{label} · {name}"] = (
                    f"{spread['pass_fraction']:.0%} of {spread['n']}" + (" (flaky)" if spread["flaky"] else "")
                    if spread["n"]
                    else "errors only"
                )
        out.append(record)
    return out


# ---------------------------------------------------------------- pairwise judge

PAIRWISE_TEMPLATE = """You are comparing two answers to the same input. Decide which answer is better for this \
input: more correct, more helpful, and closer to the reference answer when one is given.

Input:
{input}

Reference answer (may be empty):
{expected}

Answer A:
{first}

Answer B:
{second}

Judge only the content, not the order the answers are shown in or their length. Reply with exactly one line: \
"Winner: A", "Winner: B" or "Winner: tie"."""


def pairwise_messages(input_text: str, expected, first: str, second: str) -> list[dict]:
    content = PAIRWISE_TEMPLATE.format(
        input=input_text, expected="" if expected is None else expected, first=first, second=second
    )
    return [{"role": "user", "content": content}]


def _judge_spec(judge):
    from workbench.llm import ModelSpec

    spec = ModelSpec.parse(judge)
    spec.params = {"temperature": 0, "max_tokens": 256, **spec.params}
    return spec


async def apairwise_judge(
    result: Result, a: str, b: str, judge, concurrency: int = 4, limit: int | None = None, use_cache: bool = True
) -> dict:
    """Ask `judge` which of A's and B's outputs is better on each row, in both orders.

    Position bias is the pairwise judge's best-known flaw, so every row is asked twice,
    (A, B) and (B, A), and only a verdict that follows the content both times counts;
    anything else is a tie (stats.pairwise_outcome). A failed call or an unparseable
    reply is recorded as missing for that row, never a crash. Calls go through the
    ledger (source `judge`) and its cache; at most `concurrency` are in flight.
    """
    from workbench import calls
    from workbench.scoring.judge import pairwise_request, read_pairwise
    from workbench.scoring.judge_parse import JudgeParseError

    if a == b:
        raise WorkbenchError("Pick two different variants for the pairwise judge.")
    for label in (a, b):
        result.variant(label)  # an unknown label fails here, before any call
    spec = _judge_spec(judge)
    pairs = [(row, _first(row["outputs"].get(a, [])), _first(row["outputs"].get(b, []))) for row in result.rows]
    pairs = [(row, out_a, out_b) for row, out_a, out_b in pairs if out_a is not None and out_b is not None]
    skipped = len(result.rows) - len(pairs)
    pairs = pairs[:limit] if limit else pairs
    semaphore = asyncio.Semaphore(max(1, int(concurrency)))

    async def ask(row, first, second):
        asked_spec, messages = pairwise_request(spec, pairwise_messages(row["input"], row["expected"], first, second))
        async with semaphore:
            reply, call_id = await calls.acomplete(asked_spec, messages, source="judge", use_cache=use_cache)
        if not reply.ok:
            return None, f"judge call failed: {reply.error_type}: {reply.error}", reply, call_id
        try:
            return read_pairwise(reply), None, reply, call_id
        except JudgeParseError as exc:
            return None, f"unparseable judge reply: {exc}", reply, call_id

    asked = await asyncio.gather(
        *[ask(row, x, y) for row, out_a, out_b in pairs for x, y in ((out_a, out_b), (out_b, out_a))]
    )
    rows, outcomes, spent = [], [], 0.0
    for index, (row, _, _) in enumerate(pairs):
        (ab, error_ab, reply_ab, id_ab), (ba, error_ba, reply_ba, id_ba) = asked[2 * index : 2 * index + 2]
        outcome = stats.pairwise_outcome(ab, ba)
        outcomes.append(outcome)
        spent += (reply_ab.cost_usd or 0.0) + (reply_ba.cost_usd or 0.0)
        rows.append(
            {
                "row_key": row["row_key"],
                "a_first": ab,
                "b_first": ba,
                "outcome": outcome,
                "error": error_ab or error_ba,
                "call_ids": [id_ab, id_ba],
            }
        )
    rate = stats.pairwise_win_rate(outcomes)
    return {
        "a": a,
        "b": b,
        "judge": spec.label,
        "rows": rows,
        "win_rate": rate.win_rate,
        "ci_low": rate.ci_low,
        "ci_high": rate.ci_high,
        "counts": rate.counts,
        "skipped": skipped,
        "cost_usd": spent,
        "verdict": pairwise_verdict(a, b, spec.label, rate),
    }


def pairwise_judge(
    result: Result, a: str, b: str, judge, concurrency: int = 4, limit: int | None = None, use_cache: bool = True
) -> dict:
    """Synchronous `apairwise_judge` for pages and scripts, where no event loop is running."""
    return asyncio.run(apairwise_judge(result, a, b, judge, concurrency, limit, use_cache))


def pairwise_verdict(a: str, b: str, judge: str, rate: stats.WinRate) -> str:
    c = rate.counts
    tally = f"{c['B']} {b}, {c['A']} {a}, {c['tie']} ties" + (
        f", {c['missing']} without a verdict" if c["missing"] else ""
    )
    if rate.win_rate is None:
        return f"the pairwise judge {judge} gave no usable verdicts for {b} against {a} ({tally})"
    detail = f"{b} win rate {rate.win_rate:.0%}, 95% CI {rate.ci_low:.0%} to {rate.ci_high:.0%}; {tally}"
    if rate.ci_low > 0.5:
        return f"the pairwise judge {judge} prefers {b} to {a} ({detail})"
    if rate.ci_high < 0.5:
        return f"the pairwise judge {judge} prefers {a} to {b} ({detail})"
    return f"the pairwise judge {judge} shows no clear preference between {b} and {a} ({detail})"


# ---------------------------------------------------------------- saving and promoting


def save(result: Result, name: str = "", pairwise: list[dict] | None = None) -> int:
    """Store runs, baseline and summary (with any pairwise results) as a `comparison`; returns its id."""
    summary = {
        **result.summary,
        "pairwise": list(pairwise if pairwise is not None else result.summary.get("pairwise", [])),
    }
    name = name.strip() or " vs ".join(v.label for v in result.variants)
    with session() as s:
        row = Comparison(name=name, run_ids=result.run_ids, baseline=result.baseline, summary=summary)
        s.add(row)
        s.flush()
        return row.id


def get_saved(comparison_id: int) -> Comparison:
    with session() as s:
        row = s.get(Comparison, int(comparison_id))
        if row is None:
            raise NotFound(f"No comparison with id {comparison_id}.")
        return row


def list_saved(limit: int = 50) -> list[dict]:
    with session() as s:
        rows = s.exec(select(Comparison).order_by(Comparison.id.desc()).limit(limit)).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "runs": ", ".join(map(str, r.run_ids)),
            "baseline": r.baseline,
            "created": r.created_at,
        }
        for r in rows
    ]


def promotion_notes(summary: dict, label: str) -> list[str]:
    """What a user should know before pointing production at this variant's prompt version."""
    variant = next((v for v in summary["variants"] if v["label"] == label), None)
    if variant is None:
        raise WorkbenchError(f"No variant {label!r} in this comparison.")
    notes = []
    found = _directions(summary)
    if label == summary["baseline"]:
        beaten = sorted({f"{other} on {name}" for other, pairs in found.items() for name, d in pairs if d == "better"})
        if beaten:
            notes.append(f"Other variants are detectably better than the baseline {label}: {', '.join(beaten)}.")
        elif not any(d == "worse" for pairs in found.values() for _, d in pairs):
            notes.append(f"No scorer shows the baseline {label} detectably better than the other variants.")
    else:
        worse = [name for name, d in found.get(label, []) if d == "worse"]
        if worse:
            notes.append(f"{label} is detectably worse than the baseline on {', '.join(worse)}.")
        elif not any(d == "better" for _, d in found.get(label, [])):
            notes.append(f"No scorer shows {label} detectably better than the baseline.")
    if variant["model"] != variant["prompt_model"]:
        notes.append(
            f"This variant ran {variant['prompt']}@{variant['version']} with {variant['model']}, but that "
            f"version names {variant['prompt_model']}: promoting it does not change the model."
        )
    current = prompts.labels_of(variant["prompt"]).get(PROMOTE_LABEL)
    if current == variant["version"]:
        notes.append(f"{variant['prompt']}@{variant['version']} is already {PROMOTE_LABEL}.")
    return notes


def promote(comparison_id: int, label: str, author: str | None = None) -> dict:
    """Point the winning variant's prompt at `production`, citing the saved comparison as evidence."""
    saved = get_saved(comparison_id)
    variant = next((v for v in saved.summary.get("variants", []) if v["label"] == label), None)
    if variant is None:
        raise WorkbenchError(f"Comparison {comparison_id} has no variant {label!r}.")
    previous = prompts.labels_of(variant["prompt"]).get(PROMOTE_LABEL)
    prompts.set_label(
        variant["prompt"], PROMOTE_LABEL, variant["version"], evidence=f"comparison {comparison_id}", author=author
    )
    return {
        "prompt": variant["prompt"],
        "version": variant["version"],
        "previous": previous,
        "label": PROMOTE_LABEL,
        "comparison_id": comparison_id,
    }


# ---------------------------------------------------------------- command line


def add_cli(subparsers) -> None:
    """Register `workbench compare RUN_A RUN_B [RUN_C ...] [--baseline ...] [--json]`."""
    parser = subparsers.add_parser("compare", help="compare runs' prompt versions and models with paired statistics")
    parser.add_argument(
        "runs",
        nargs="+",
        type=int,
        metavar="RUN",
        help="run ids (one run with several prompt versions or models is enough)",
    )
    parser.add_argument(
        "--baseline",
        help="baseline variant: its label, its position (1, 2, ...) or a run id "
        "holding one variant (default: the first)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="significance level (default 0.05)")
    parser.add_argument("--save", metavar="NAME", help="store the comparison under this name")
    parser.add_argument("--report", metavar="FILE", help="also write a report: .html, .md or .csv (rows)")
    parser.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from workbench import report

    try:
        result = compare(args.runs, args.baseline, alpha=args.alpha)
        if args.report:
            report.write(result, args.report)
        saved = save(result, args.save) if args.save else None
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**result.summary, "comparison_id": saved}, indent=2, default=str))
    else:
        report.print_summary(result.summary)
        if saved:
            print(f"\nsaved as comparison {saved}")
    if args.report:
        print(f"wrote {args.report}", file=sys.stderr)
    return 0
