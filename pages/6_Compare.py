"""Compare: prompt versions and models side by side on the same rows, with paired statistics."""

import re

import pandas as pd
import streamlit as st

from ui_common import human_pairwise, judge_warning, page_setup
from workbench import compare, report, runs
from workbench.errors import WorkbenchError
from workbench.llm import available_models

page_setup("Compare", "⚖️")
st.title("⚖️ Compare")
ICONS = {"better": "✅", "worse": "🔻", "none": "➖"}


def md(text) -> str:
    """User data (labels, row keys) shown as text inside Markdown."""
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", str(text))


@st.cache_data(show_spinner=False, max_entries=16)
def compared(run_ids: tuple, baseline: str, alpha: float, stamp: tuple) -> compare.Result:
    """The comparison and its statistics (thousands of bootstrap resamples), computed again only when
    the runs, the baseline, alpha or the data (`stamp`: newest call, score and run) change, not on every
    widget click. Each rerun gets its own copy, so the page may add to it."""
    return compare.compare(list(run_ids), baseline, alpha=alpha)


listing = runs.list_runs(200)
if not listing:
    st.info("No runs yet: start one on the Runs page, then compare its prompt versions or models here.")
    st.stop()
names = {
    r["id"]: f"#{r['id']} {r['name']} ({r['status']}, {r['done']}/{r['total']})".replace("  ", " ") for r in listing
}
run_ids = st.multiselect(
    "Runs",
    list(names),
    format_func=names.get,
    key="cmp_runs",
    help="Two or more runs over the same dataset, or one run with several prompt versions "
    "or models. Rows pair up by row key.",
)
if not run_ids:
    st.caption("Pick runs to compare.")
    st.stop()
run_ids = sorted(run_ids)  # the oldest run first: the usual baseline
try:
    labels = [v.label for v in compare.variants(run_ids)]
except WorkbenchError as exc:
    st.error(str(exc))
    st.stop()
if len(labels) < 2:
    st.info("This run holds one prompt version and one model: pick a second run to compare it with.")
    st.stop()
cols = st.columns([4, 1])
baseline = cols[0].selectbox("Baseline (A)", labels, key="cmp_baseline")
alpha = cols[1].selectbox("Significance level", [0.05, 0.01, 0.10], key="cmp_alpha")
try:
    with st.spinner("Pairing rows and computing intervals…"):
        result = compared(tuple(run_ids), baseline, alpha, compare.data_stamp())
except WorkbenchError as exc:
    st.error(str(exc))
    st.stop()
summary = result.summary
selection = (tuple(run_ids), baseline, alpha)
judged = st.session_state.setdefault("cmp_pairwise", {}).setdefault(selection[:2], [])
summary["pairwise"] = judged
for note in summary["notes"]:
    st.warning(note)

tab_summary, tab_rows, tab_judge, tab_promote, tab_export = st.tabs(
    ["Summary", "Rows side by side", "Pairwise judge", "Save & promote", "Export"]
)

with tab_summary:
    st.subheader("Verdicts")
    judge_warning([m.get("scorer", m["metric"]) for m in summary["metrics"]])
    for people in human_pairwise(run_ids):
        st.markdown(f"🧑‍⚖️ {md(people)}")
    for metric in summary["metrics"]:
        for c in metric["comparisons"]:
            st.markdown(f"{ICONS[c['direction']]} {md(c['verdict'])}")
            for warning in c["warnings"]:
                st.caption(f"⚠️ {md(warning)}")
        if metric["multiple_comparisons"]:
            st.info(metric["multiple_comparisons"])
    for p in judged:
        st.markdown(f"⚖️ {md(p['verdict'])}")
    if not summary["metrics"]:
        st.info("These runs have no scores: re-score them on the Runs page, or use the pairwise judge.")
    table = report.summary_table(summary)
    if table:
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", key="cmp_summary")
        st.plotly_chart(report.difference_chart(summary), key="cmp_diff_chart")
    left, right = st.columns(2)
    if result.metrics:
        shown = left.selectbox("Distribution of", [m.name for m in result.metrics], key="cmp_dist_metric")
        left.plotly_chart(report.distribution_chart(result, shown), key="cmp_dist_chart")
    right.plotly_chart(report.latency_chart(result), key="cmp_latency_chart")
    st.subheader("Cost and latency")
    st.dataframe(pd.DataFrame(report.cost_table(summary)), hide_index=True, width="stretch", key="cmp_costs")
    st.caption(
        "Latency counts calls that reached the model (cache hits excluded); a cached call is priced by its "
        "tokens. Cost per 1 000 rows = mean cost of one call × 1 000."
    )
    if summary["repeats"] > 1:
        st.subheader("Flaky rows")
        st.caption(
            f"Each row ran {summary['repeats']} times; statistics use per-row means. Rows where a variant "
            "sometimes passes and sometimes fails:"
        )
        flaky = compare.flaky_rows(result)
        if flaky:
            st.dataframe(pd.DataFrame(flaky), hide_index=True, key="cmp_flaky")
        else:
            st.caption("none")
    entries = {f"{m['metric']}: {c['variant']}": c for m in summary["metrics"] for c in m["comparisons"]}
    if entries:
        with st.expander("How many rows would I need?"):
            cols = st.columns(2)
            picked = entries[cols[0].selectbox("Comparison", list(entries), key="cmp_plan_for")]
            is_pass = picked["kind"] == "pass"
            wanted = cols[1].number_input(
                "Smallest difference worth detecting" + (" (pp)" if is_pass else ""),
                min_value=0.01,
                value=5.0 if is_pass else 0.1,
                key="cmp_plan_diff",
            )
            advice = compare.sample_size_advice(picked, wanted / 100 if is_pass else wanted, alpha)
            st.markdown(md(advice["message"]))

with tab_rows:
    cols = st.columns([2, 2, 2, 1])
    disagree = cols[0].toggle(
        "Most disagreement first",
        key="cmp_disagree",
        help="Rows where the variants' scores differ most, then their outputs.",
    )
    others = [label for label in labels if label != baseline]
    lost = cols[1].selectbox(
        "Only rows where this variant lost",
        [None, *others],
        key="cmp_lost",
        format_func=lambda v: "all rows" if v is None else v,
    )
    on = cols[2].selectbox(
        "…on",
        [None, *[m.name for m in result.metrics]],
        key="cmp_lost_on",
        format_func=lambda v: "any scorer" if v is None else v,
        disabled=lost is None,
    )
    size = 10
    count = compare.row_view(result, lost=lost, metric=on, diffs=False)["total"]
    page = cols[3].number_input("Page", 1, max(1, -(-count // size)), 1, key="cmp_row_page")
    view = compare.row_view(result, "disagreement" if disagree else "row", lost, on, (page - 1) * size, size)
    st.caption(
        f"{view['total']} rows. Words removed from the baseline's output are struck through, added words are green."
    )
    for row in view["rows"]:
        cells = st.columns([2] + [3] * len(row["variants"]))
        cells[0].markdown(f"**{md(row['row_key'])}**" + (" · flaky" if row["flaky"] else ""))
        cells[0].text(row["input"])
        cells[0].caption(f"expected: {md(row['expected'] if row['expected'] is not None else '–')}")
        for cell, (label, entry) in zip(cells[1:], row["variants"].items()):
            cell.caption(md(label) + (" (baseline)" if label == baseline else ""))
            if entry["output"] is None:
                cell.error(entry["error"] or "no output")
            else:
                cell.html(entry["html"])
            scores = [
                f"{name} {value:.2f}"
                for name, value in entry["scores"].items()
                if value is not None and name not in entry["spread"]
            ]
            scores += [
                f"{name} passed {s['pass_fraction']:.0%} of {s['n']}" + (" (flaky)" if s["flaky"] else "")
                for name, s in entry["spread"].items()
                if s["n"]
            ]
            if len(entry["outputs"]) > 1:
                scores.append(f"showing the first of {len(entry['outputs'])} outputs")
            cell.caption(md(" · ".join(scores)))
        st.divider()

with tab_judge:
    st.caption(
        "Asks a judge model which output is better for each row, in both orders (A, B) and (B, A); a verdict "
        "that follows the position rather than the content counts as a tie. Calls are cached and recorded."
    )
    cols = st.columns(5)
    a = cols[0].selectbox("A", labels, index=labels.index(baseline), key="cmp_judge_a")
    b_options = [label for label in labels if label != a]
    b = cols[1].selectbox("B", b_options, key="cmp_judge_b")
    judge = cols[2].selectbox("Judge model", available_models(), key="cmp_judge_model")
    limit = cols[3].number_input("Rows (0 = all)", 0, len(result.rows), min(50, len(result.rows)), key="cmp_judge_rows")
    concurrency = cols[4].number_input("Concurrency", 1, 64, 4, key="cmp_judge_conc")
    if st.button("Run pairwise judge", key="cmp_judge_run"):
        with st.spinner(f"Judging up to {2 * (limit or len(result.rows))} pairs…"):
            judged.append(compare.pairwise_judge(result, a, b, judge, int(concurrency), int(limit) or None))
        st.rerun()  # so the verdicts and the summary above include it
    for p in reversed(judged):
        st.markdown(f"**{md(p['b'])} vs {md(p['a'])}** · judge {md(p['judge'])}")
        cols = st.columns(4)
        cols[0].metric(
            f"{p['b']} win rate",
            "–" if p["win_rate"] is None else f"{p['win_rate']:.0%}",
            help="Ties count as half a win; 95% Wilson interval below.",
        )
        cols[1].metric("95% CI", "–" if p["ci_low"] is None else f"{p['ci_low']:.0%} – {p['ci_high']:.0%}")
        cols[2].metric("B / A / tie", f"{p['counts']['B']} / {p['counts']['A']} / {p['counts']['tie']}")
        cols[3].metric("No verdict", p["counts"]["missing"])
        st.markdown(md(p["verdict"]))
        with st.expander("Per row"):
            st.dataframe(pd.DataFrame(p["rows"]).drop(columns=["call_ids"]), hide_index=True)

with tab_promote:
    saved = st.session_state.get("cmp_saved")
    saved_id = saved["id"] if saved and saved["selection"] == selection else None
    name = st.text_input("Name", key="cmp_name", placeholder=" vs ".join(labels))
    if st.button("Save comparison", key="cmp_save"):
        saved_id = compare.save(result, name)
        st.session_state["cmp_saved"] = {"id": saved_id, "selection": selection}
    if saved_id:
        st.success(f"Saved as comparison {saved_id} (runs, baseline, summary and pairwise results).")
    suggested = compare.leader(summary)
    winner = st.selectbox(
        "Winner",
        labels,
        index=labels.index(suggested) if suggested else 0,
        key="cmp_winner",
        help="The suggestion is the variant better on the most scorers and worse on none.",
    )
    chosen = result.variant(winner)
    for note in compare.promotion_notes(summary, winner):
        st.warning(note)
    confirm = st.checkbox(
        f"I confirm: point {chosen.prompt} `production` at version {chosen.version}", key="cmp_confirm"
    )
    if not saved_id:
        st.caption("Save the comparison first: the promotion cites it as its evidence.")
    if st.button("Promote to production", key="cmp_promote", type="primary", disabled=not (saved_id and confirm)):
        try:
            moved = compare.promote(saved_id, winner)
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            st.success(
                f"{moved['prompt']} production: v{moved['previous'] or '–'} → v{moved['version']} "
                f"(evidence: comparison {saved_id})."
            )
    past = compare.list_saved(20)
    if past:
        st.caption("Saved comparisons")
        st.dataframe(pd.DataFrame(past), hide_index=True, key="cmp_past")

with tab_export:
    cols = st.columns(3)
    stem = "comparison-" + "-".join(map(str, run_ids))
    cols[0].download_button("Rows (CSV)", report.rows_csv(result), f"{stem}.csv", "text/csv", key="cmp_csv")
    cols[1].download_button(
        "Report (Markdown)", report.markdown_report(summary), f"{stem}.md", "text/markdown", key="cmp_md"
    )
    cols[2].download_button(
        "Report (HTML, opens offline)", lambda: report.html_report(result), f"{stem}.html", "text/html", key="cmp_html"
    )
