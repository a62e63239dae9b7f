"""Runs: start prompt versions x dataset x models in the background, watch progress, read results."""

import pandas as pd
import streamlit as st
import yaml

from ui_common import judge_warning, md_text, page_setup
from workbench import datasets, prompts, runs
from workbench.errors import WorkbenchError
from workbench.jobs import queue
from workbench.jobs import rescore as rescore_jobs
from workbench.llm import available_models

page_setup("Runs", "🏃")
st.title("🏃 Runs")

with st.expander("Start a run", expanded=not runs.list_runs(1)):
    refs = [f"{p['name']}@{v.version}" for p in prompts.list_prompts() for v in prompts.versions(p["name"])]
    chosen_prompts = st.multiselect("Prompt versions", refs, key="run_prompts")
    data = [f"{d['name']}@{v.version}" for d in datasets.list_datasets() for v in datasets.versions(d["name"])]
    dataset_ref = st.selectbox("Dataset version", data, key="run_dataset") if data else None
    if not data:
        st.info("No datasets yet: add one on the Datasets page.")
    chosen_models = st.multiselect("Models", available_models(), default=available_models()[:1], key="run_models")
    cols = st.columns(4)
    concurrency = cols[0].number_input("Concurrency", 1, 256, 8, key="run_concurrency")
    repeat = cols[1].number_input("Repeat each row", 1, 20, 1, key="run_repeat")
    budget = cols[2].number_input("Budget (USD, 0 = none)", 0.0, 10000.0, 0.0, 0.5, key="run_budget")
    use_cache = cols[3].checkbox("Use cache", True, key="run_cache")
    cols = st.columns(2)
    scorers_yaml = cols[0].text_area(
        "Scorers (YAML list, optional)",
        "[]",
        height=100,
        key="run_scorers",
        help='e.g. - {type: contains, value: "{{expected}}"}',
    )
    guards_yaml = cols[1].text_area(
        "Guardrails (YAML, optional)",
        "{}",
        height=100,
        key="run_guards",
        help="e.g. {input: [{type: prompt_injection}], output: [{type: pii}], redact_pii: true}",
    )
    name = st.text_input("Description", key="run_name")
    if st.button("Start run", type="primary", key="run_start", disabled=not data):
        try:
            config = {
                "description": name,
                "prompts": chosen_prompts,
                "dataset": dataset_ref,
                "models": chosen_models,
                "concurrency": int(concurrency),
                "repeat": int(repeat),
                "cache": use_cache,
                "scorers": yaml.safe_load(scorers_yaml) or [],
                "guardrails": yaml.safe_load(guards_yaml) or {},
            }
            if budget > 0:
                config["budget_usd"] = float(budget)
            run_id = runs.create_run(runs.plan_from_config(config))
        except (WorkbenchError, yaml.YAMLError) as exc:
            st.error(str(exc))
        else:
            queue.submit_run(run_id)
            st.session_state["run_selected"] = run_id
            st.rerun()

listing = runs.list_runs(100)
if not listing:
    st.stop()
st.dataframe(pd.DataFrame(listing), hide_index=True, width="stretch")
ids = [r["id"] for r in listing]
if st.session_state.get("run_selected") not in ids:
    st.session_state["run_selected"] = ids[0]
run_id = st.selectbox(
    "Run",
    ids,
    key="run_selected",
    format_func=lambda i: next(f"#{r['id']} {r['name']} ({r['status']})" for r in listing if r["id"] == i),
)


@st.fragment(run_every=1.0)
def live_progress(run_id: int):
    run = runs.get_run(run_id)
    status = runs.effective_status(run)
    p = runs.progress(run_id)
    finished = p["done"] + p["failed"]
    st.progress(finished / max(1, p["total"]), text=f"{status}: {finished}/{p['total']}")
    cols = st.columns(6)
    cols[0].metric("Done", p["done"])
    cols[1].metric("Failed", p["failed"])
    cols[2].metric("Remaining", p["remaining"])
    cols[3].metric("Calls/s", f"{p['calls_per_s']:.1f}" if p["calls_per_s"] else "–")
    cols[4].metric("Spend", f"${p['cost_usd']:.4f}")
    cols[5].metric("Cached", p["cached"])
    if run.error:
        st.error(md_text(run.error))
    if status == "queued":
        st.info("Waiting for a worker: `workbench serve` starts one; or run `workbench worker`.")
    if status in ("running", "pending", "queued") and st.button("Cancel run", key=f"cancel:{run_id}"):
        runs.request_cancel(run_id)
    if status in ("interrupted", "cancelled", "budget_exceeded", "failed") and p["remaining"]:
        if st.button("Resume", key=f"resume:{run_id}"):
            try:
                queue.submit_run(run_id)
            except WorkbenchError as exc:
                st.error(str(exc))
    live = ("running", "pending", "queued", "cancelling")
    if status not in live and st.session_state.get(f"was_live:{run_id}"):
        st.session_state[f"was_live:{run_id}"] = False
        st.rerun()  # refresh the listing and the results table once when the run ends
    st.session_state[f"was_live:{run_id}"] = status in live


live_progress(run_id)

scores = runs.summary(run_id)["scorers"]
if scores:
    st.subheader("Scores")
    judge_warning([s["scorer"] for s in scores])
    st.dataframe(pd.DataFrame(scores), hide_index=True, width="stretch")
with st.expander("Re-score this run (no model calls for the outputs)"):
    rescore_yaml = st.text_area(
        "Scorers (YAML list)", '- {type: contains, value: "{{expected}}"}', height=80, key=f"rescore:{run_id}"
    )
    if st.button("Re-score", key=f"rescore_btn:{run_id}"):
        try:
            queue.submit_rescore(run_id, yaml.safe_load(rescore_yaml) or [])
        except (ValueError, yaml.YAMLError) as exc:
            st.error(md_text(str(exc)))
        else:
            st.success("Queued: a worker scores the stored outputs; the scores appear here when it is done.")
    waiting = rescore_jobs.pending(run_id)
    if waiting:
        st.info(f"{waiting} re-score(s) queued or running.")


@st.fragment(run_every=2.0 if runs.effective_status(runs.get_run(run_id)) in ("running", "pending", "queued") else None)
def results_table(run_id: int):
    """Refreshes on its own while the run is going, so rows fill in as they finish."""
    st.subheader("Results")
    cols = st.columns([1, 2, 1])
    status_filter = cols[0].selectbox("Status", ["all", "done", "error", "blocked", "pending"], key="res_status")
    search = cols[1].text_input("Output contains", key="res_search")
    total = runs.progress(run_id)["total"]
    page_size = 100
    page = cols[2].number_input("Page", 1, max(1, -(-total // page_size)), 1, key="res_page")
    rows = runs.results(
        run_id,
        limit=page_size,
        offset=(page - 1) * page_size,
        status=None if status_filter == "all" else status_filter,
        search=search or None,
    )
    frame = pd.DataFrame(rows)
    if frame.empty:
        st.caption("No results match.")
        return
    selection = st.dataframe(
        frame, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="res_table"
    )
    picked = selection.selection.rows if selection else []
    if picked:
        row = rows[picked[0]]
        st.markdown(f"**Input** {md_text(row['row_key'])}")
        st.code(row["input"], language="json")
        st.markdown("**Output**")
        st.text(row["output"] or row["error"] or "")


results_table(run_id)
cols = st.columns(2)
cols[0].download_button("Export CSV", runs.export(run_id, "csv"), f"run-{run_id}.csv", "text/csv", key="res_csv")
cols[1].download_button("Export JSONL", runs.export(run_id, "jsonl"), f"run-{run_id}.jsonl", key="res_jsonl")
