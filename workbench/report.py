"""Charts, tables and reports for a comparison: the same on the Compare page, in the terminal and in files.

The HTML report is one file that opens offline: plotly.js is inlined once (about 3.5 MB)
and every chart after the first reuses it. Markdown carries the tables and verdicts only.
Everything rendered from user data is escaped.
"""

from __future__ import annotations

import html
import sys

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench import datasets, stats
from workbench.compare.result import Result
from workbench.compare.rows import row_view
from workbench.compare.summary import values_of, verdicts
from workbench.errors import WorkbenchError

PALETTE = ["#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880"]


def difference_chart(summary: dict) -> go.Figure:
    """Dot-and-whisker: each variant's difference from the baseline with its CI, one panel per scorer.

    One panel per scorer because pass rates (percentage points) and scores (their own
    units) do not share an axis. The dashed line at zero is "no difference".
    """
    metrics = [m for m in summary["metrics"] if m["comparisons"]]
    if not metrics:
        return go.Figure().update_layout(title="No scores to compare", height=200)
    fig = make_subplots(
        rows=len(metrics),
        cols=1,
        vertical_spacing=min(0.12, 0.5 / len(metrics)),
        subplot_titles=[
            f"{m['metric']} ({'pp' if m['kind'] == 'pass' else 'score'}, vs {summary['baseline']})" for m in metrics
        ],
    )
    for index, metric in enumerate(metrics, 1):
        scale = 100.0 if metric["kind"] == "pass" else 1.0
        shown = [c for c in metric["comparisons"] if c["diff"] is not None]
        diffs = [c["diff"] * scale for c in shown]
        colours = {"better": "#2ca02c", "worse": "#d62728", "none": "#7f7f7f"}
        fig.add_trace(
            go.Scatter(
                x=diffs,
                y=[c["variant"] for c in shown],
                mode="markers",
                showlegend=False,
                marker=dict(size=11, color=[colours[c["direction"]] for c in shown]),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=[(c["ci_high"] * scale - d) if c["ci_high"] is not None else 0 for c, d in zip(shown, diffs)],
                    arrayminus=[
                        (d - c["ci_low"] * scale) if c["ci_low"] is not None else 0 for c, d in zip(shown, diffs)
                    ],
                ),
                hovertext=[c["verdict"] for c in shown],
                hoverinfo="text",
            ),
            row=index,
            col=1,
        )
        fig.add_vline(x=0, line_dash="dash", line_color="#888", row=index, col=1)
    fig.update_layout(
        height=140 + 130 * len(metrics),
        margin=dict(l=10, r=10, t=50, b=10),
        title="Difference from the baseline with 95% CI (green: better, red: worse)",
    )
    return fig


def distribution_chart(result: Result, metric: str) -> go.Figure:
    """Per-row scores of each variant (row means over repeats), overlaid histograms."""
    chosen = next(m for m in result.metrics if m.name == metric)
    values = values_of(result, chosen)
    fig = go.Figure()
    for index, (label, by_row) in enumerate(values.items()):
        fig.add_trace(
            go.Histogram(
                x=list(stats.row_means(by_row).values()),
                name=label,
                opacity=0.6,
                marker_color=PALETTE[index % len(PALETTE)],
                xbins=dict(start=-0.05, end=1.05, size=0.1) if chosen.scale == 1.0 else None,
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        title=f"{metric}: per-row {'pass rate' if chosen.kind == 'pass' else 'score'} by variant",
        xaxis_title=metric,
        yaxis_title="rows",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def latency_chart(result: Result) -> go.Figure:
    """Latency boxes per variant, from calls that reached the model (cache hits excluded)."""
    fig = go.Figure()
    for index, variant in enumerate(result.variants):
        latencies = [
            i["latency_ms"]
            for i in result.items
            if i["variant"] == variant.label
            and i["status"] == "done"
            and not i["cached"]
            and i["latency_ms"] is not None
        ]
        fig.add_trace(
            go.Box(y=latencies, name=variant.label, boxpoints="outliers", marker_color=PALETTE[index % len(PALETTE)])
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        showlegend=False,
        title="Latency per call (ms)",
        yaxis_title="ms",
    )
    return fig


def figures(result: Result) -> list[go.Figure]:
    return (
        [difference_chart(result.summary)]
        + [distribution_chart(result, m.name) for m in result.metrics]
        + [latency_chart(result)]
    )


# ---------------------------------------------------------------- tables


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}%"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def _signed(x: float | None, pass_kind: bool) -> str:
    if x is None:
        return "–"
    value = x * 100 if pass_kind else x
    text = f"{value:+.1f}" if pass_kind else f"{value:+.3g}"
    return text.replace("-", "−")


def _p(entry: dict) -> str:
    if entry["p_value"] is None:
        return "–"
    shown = "<0.001" if entry["p_value"] < 0.001 else f"{entry['p_value']:.3f}"
    if entry["p_adjusted"] is not None:
        shown += f" (Holm {entry['p_adjusted']:.3f})"
    return shown


def summary_table(summary: dict) -> list[dict]:
    """One display row per metric and variant: mean with CI, difference from the baseline with CI, p, W/T/L."""
    out = []
    for metric in summary["metrics"]:
        is_pass = metric["kind"] == "pass"
        fmt = _pct if is_pass else _num
        by_variant = {c["variant"]: c for c in metric["comparisons"]}
        for label, own in metric["variants"].items():
            ci = f" [{fmt(own['low'])}, {fmt(own['high'])}]" if own["low"] is not None else ""
            c = by_variant.get(label)
            record = {
                "metric": metric["metric"],
                "variant": label,
                "rows": own["n"],
                "mean / pass rate": fmt(own["mean"]) + ci,
            }
            if c is None:
                record.update(
                    {"difference vs baseline": "baseline", "p": "", "test": "", "win/tie/loss": "", "verdict": ""}
                )
            else:
                unit = " pp" if is_pass else ""
                ci = (
                    f" [{_signed(c['ci_low'], is_pass)}, {_signed(c['ci_high'], is_pass)}]"
                    if c["ci_low"] is not None
                    else ""
                )
                record.update(
                    {
                        "difference vs baseline": _signed(c["diff"], is_pass) + unit + ci,
                        "p": _p(c),
                        "test": c["test"],
                        "win/tie/loss": f"{c['wins']}/{c['ties']}/{c['losses']}",
                        "verdict": c["direction"],
                    }
                )
            out.append(record)
    return out


def cost_table(summary: dict) -> list[dict]:
    """Cost and latency side by side, formatted for reading."""

    def money(x):
        return "–" if x is None else f"${x:,.4f}" if x < 1 else f"${x:,.2f}"

    def ms(x):
        return "–" if x is None else f"{x:,.0f} ms"

    return [
        {
            "variant": c["variant"],
            "items": c["items"],
            "errors": c["errors"],
            "cached": c["cached"],
            "latency mean": ms(c["latency_mean_ms"]),
            "latency p95": ms(c["latency_p95_ms"]),
            "cost per call": money(c["cost_mean_usd"]),
            "cost per 1 000 rows": money(c["cost_per_1k_rows_usd"]),
            "unpriced calls": c["unpriced"],
        }
        for c in summary["costs"]
    ]


def rows_csv(result: Result) -> bytes:
    """Every aligned row: input, expected, and per variant its output and per-row scores (means over repeats)."""
    view = row_view(result, diffs=False)["rows"]
    columns = ["row_key", "input", "expected"]
    records = []
    for row in view:
        record = {"row_key": row["row_key"], "input": row["input"], "expected": row["expected"]}
        for label, entry in row["variants"].items():
            record[f"{label} output"] = entry["output"] if entry["output"] is not None else entry["error"]
            for name, score in entry["scores"].items():
                record[f"{label} {name}"] = score
        records.append(record)
    for record in records:
        columns += [k for k in record if k not in columns]
    return datasets.to_csv_bytes(columns, records)


def write(result: Result, path: str) -> None:
    """The rows (.csv) or a report (.html, .md) to a file, chosen by its extension."""
    if path.endswith(".csv"):
        data = rows_csv(result)
    elif path.endswith((".html", ".htm")):
        data = html_report(result).encode("utf-8")
    elif path.endswith(".md"):
        data = markdown_report(result.summary).encode("utf-8")
    else:
        raise WorkbenchError("--report must end in .html, .md or .csv")
    with open(path, "wb") as handle:
        handle.write(data)


def _print_table(records: list[dict], out) -> None:
    if not records:
        return
    columns = list(records[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in records)) for c in columns}
    print("  " + "  ".join(c.ljust(widths[c]) for c in columns), file=out)
    for record in records:
        print("  " + "  ".join(str(record.get(c, "")).ljust(widths[c]) for c in columns), file=out)


def print_summary(summary: dict, out=None) -> None:
    """The per-scorer table, verdicts, warnings and costs, for a terminal."""
    out = out or sys.stdout
    print(
        f"variants (baseline: {summary['baseline']}), {summary['rows']} rows"
        + (f", {summary['repeats']} repeats" if summary["repeats"] > 1 else ""),
        file=out,
    )
    for v in summary["variants"]:
        print(
            f"  {v['label']}: run {v['run_id']}, {v['prompt']}@{v['version']}, {v['model']}, {v['dataset']}", file=out
        )
    for note in summary["notes"]:
        print(f"note: {note}", file=out)
    print("", file=out)
    table = summary_table(summary)
    if table:
        _print_table([{k: v for k, v in r.items() if k != "test"} for r in table], out)
    print("\nverdicts:", file=out)
    for line in verdicts(summary) or ["no scores to compare"]:
        print(f"  - {line}", file=out)
    if _warnings(summary):
        print("\nwarnings:", file=out)
        for line in _warnings(summary):
            print(f"  - {line}", file=out)
    print("\ncost and latency:", file=out)
    _print_table(cost_table(summary), out)


# ---------------------------------------------------------------- Markdown


def _md_cell(value) -> str:
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def _md_table(records: list[dict]) -> str:
    if not records:
        return "_none_\n"
    columns = list(records[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(r.get(c)) for c in columns) + " |" for r in records]
    return "\n".join(lines) + "\n"


def _warnings(summary: dict) -> list[str]:
    lines = [
        f"{m['metric']}, {c['variant']}: {w}"
        for m in summary["metrics"]
        for c in m["comparisons"]
        for w in c["warnings"]
    ]
    return lines + list(
        dict.fromkeys(m["multiple_comparisons"] for m in summary["metrics"] if m["multiple_comparisons"])
    )


def _pairwise_records(summary: dict) -> list[dict]:
    return [
        {
            "A": p["a"],
            "B": p["b"],
            "judge": p["judge"],
            "B win rate": "–"
            if p["win_rate"] is None
            else f"{p['win_rate']:.0%} [{p['ci_low']:.0%}, {p['ci_high']:.0%}]",
            "B / A / tie / missing": f"{p['counts']['B']} / {p['counts']['A']} / {p['counts']['tie']} / "
            f"{p['counts']['missing']}",
        }
        for p in summary.get("pairwise", [])
    ]


def markdown_report(summary: dict, title: str = "Comparison") -> str:
    """Tables and verdicts as Markdown (for a pull request or a wiki page)."""
    parts = [
        f"# {title}\n",
        f"Baseline: **{summary['baseline']}** · {summary['rows']} rows"
        + (f" · {summary['repeats']} repeats (statistics on row means)" if summary["repeats"] > 1 else "")
        + f" · alpha {summary['alpha']:g}\n",
        "## Variants\n",
        _md_table(
            [
                {
                    "variant": v["label"],
                    "run": v["run_id"],
                    "prompt": f"{v['prompt']}@{v['version']}",
                    "model": v["model"],
                    "dataset": v["dataset"],
                    "items": v["items"],
                }
                for v in summary["variants"]
            ]
        ),
    ]
    if summary["notes"]:
        parts += ["## Notes\n"] + [f"- {n}" for n in summary["notes"]] + [""]
    table = summary_table(summary)
    parts += ["## Summary\n", _md_table(table) if table else "No scores to compare.\n", "## Verdicts\n"]
    parts += [f"- {v}" for v in verdicts(summary)] or ["- no scores to compare"]
    if _warnings(summary):
        parts += ["", "## Warnings\n"] + [f"- {w}" for w in _warnings(summary)]
    if summary.get("pairwise"):
        parts += ["", "## Pairwise judge\n", _md_table(_pairwise_records(summary))]
    parts += ["", "## Cost and latency\n", _md_table(cost_table(summary))]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- HTML

_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
li{margin:0.2rem 0}.note{color:#8a5a00}"""


def _html_table(records: list[dict]) -> str:
    if not records:
        return "<p><em>none</em></p>"
    columns = list(records[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str('' if r.get(c) is None else r.get(c)))}</td>" for c in columns)
        + "</tr>"
        for r in records
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_list(lines: list[str], css: str = "") -> str:
    return f"<ul class='{css}'>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def html_report(result: Result, title: str = "Comparison", rows: int = 50) -> str:
    """A self-contained page: tables, verdicts, charts (plotly.js inlined once) and the first rows side by side."""
    summary = result.summary
    charts = [fig.to_html(full_html=False, include_plotlyjs=(index == 0)) for index, fig in enumerate(figures(result))]
    view = row_view(result, limit=rows)
    labels = list(view["rows"][0]["variants"]) if view["rows"] else []
    side = "".join(
        "<tr><td>"
        + html.escape(r["row_key"])
        + "</td><td style='white-space:pre-wrap'>"
        + html.escape(r["input"])
        + "</td><td>"
        + html.escape(str(r["expected"] or ""))
        + "</td>"
        + "".join(
            f"<td>{r['variants'][label]['html']}<br><small>"
            + html.escape(", ".join(f"{k} {v:.2f}" for k, v in r["variants"][label]["scores"].items() if v is not None))
            + "</small></td>"
            for label in labels
        )
        + "</tr>"
        for r in view["rows"]
    )
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Baseline: <b>{html.escape(summary['baseline'])}</b> · {summary['rows']} rows"
        + (f" · {summary['repeats']} repeats (statistics on row means)" if summary["repeats"] > 1 else "")
        + f" · alpha {summary['alpha']:g}</p>",
        "<h2>Variants</h2>",
        _html_table(
            [
                {
                    "variant": v["label"],
                    "run": v["run_id"],
                    "prompt": f"{v['prompt']}@{v['version']}",
                    "model": v["model"],
                    "dataset": v["dataset"],
                    "items": v["items"],
                }
                for v in summary["variants"]
            ]
        ),
        _html_list(summary["notes"], "note") if summary["notes"] else "",
        "<h2>Summary</h2>",
        _html_table(summary_table(summary)),
        "<h2>Verdicts</h2>",
        _html_list(verdicts(summary) or ["no scores to compare"]),
        ("<h2>Warnings</h2>" + _html_list(_warnings(summary), "note")) if _warnings(summary) else "",
        ("<h2>Pairwise judge</h2>" + _html_table(_pairwise_records(summary))) if summary.get("pairwise") else "",
        "<h2>Cost and latency</h2>",
        _html_table(cost_table(summary)),
        "<h2>Charts</h2>",
        *charts,
        f"<h2>Rows (first {len(view['rows'])} of {view['total']})</h2>",
        f"<table><thead><tr><th>row</th><th>input</th><th>expected</th>{head}</tr></thead><tbody>{side}</tbody>"
        "</table>",
    ]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
