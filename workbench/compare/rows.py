"""Rows side by side: outputs with word diffs against the baseline, scores, flaky rows."""

from __future__ import annotations

import difflib
import html
import re

from workbench import stats
from workbench.compare.result import Metric, Result

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


def first_present(values: list):
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
    outputs = [(first_present(row["outputs"].get(label, [])) or "").split() for label in labels]
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
        base_output = first_present(row["outputs"].get(result.baseline, []))
        shown = {}
        for label in labels:
            outputs = row["outputs"].get(label, [])
            output = first_present(outputs)
            entry = {
                "output": output,
                "outputs": outputs,
                "error": first_present(row["errors"].get(label, [])),
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
