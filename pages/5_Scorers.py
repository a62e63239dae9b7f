"""Scorers: write LLM-judge rubrics or assertion configs, try them on a run's rows, save versions."""

import pandas as pd
import streamlit as st
import yaml

from ui_common import judge_calibrations, page_setup
from workbench import review, runs
from workbench.errors import WorkbenchError
from workbench.llm import available_models
from workbench.scoring import SCORERS, store, validate_scorer_config
from workbench.scoring.apply import try_on_run
from workbench.scoring.judge import CRITERIA_TEMPLATE, REFERENCE_TEMPLATE, RUBRICS

page_setup("Scorers", "⚖️")
st.title("⚖️ Scorers")

saved = store.list_scorers()
if saved:
    st.dataframe(pd.DataFrame(saved), hide_index=True, width="stretch")

kind = st.radio("Kind", ["LLM judge rubric", "Assertion (YAML)"], horizontal=True, key="sc_kind")
if kind == "LLM judge rubric":
    start = st.selectbox("Start from", list(RUBRICS), key="sc_rubric")
    base = RUBRICS[start]
    cols = st.columns([2, 1, 1, 1])
    mode = cols[0].radio(
        "Mode",
        ["reference", "criteria"],
        horizontal=True,
        key=f"sc_mode:{start}",
        index=0 if base["mode"] == "reference" else 1,
    )
    low = cols[1].number_input("Scale min", value=1, key="sc_low")
    high = cols[2].number_input("Scale max", value=5, key="sc_high")
    threshold = cols[3].number_input("Pass at ≥", value=4.0, key="sc_pass")
    criteria = st.text_area("Criteria", base["criteria"], height=90, key=f"sc_criteria:{start}")
    model = st.selectbox("Judge model", available_models(), key="sc_model")
    template = st.text_area(
        "Judge prompt ({{input}} {{output}} {{expected}} {{context}} {{criteria}})",
        REFERENCE_TEMPLATE if mode == "reference" else CRITERIA_TEMPLATE,
        height=260,
        key=f"sc_template:{mode}",
    )
    config = {
        "type": "llm_judge",
        "rubric": start,
        "mode": mode,
        "criteria": criteria,
        "model": model,
        "scale": [int(low), int(high)],
        "pass_threshold": float(threshold),
        "template": template,
    }
else:
    st.caption("Types: " + ", ".join(sorted(SCORERS)))
    text = st.text_area("Scorer config", 'type: contains\nvalue: "{{expected}}"', height=140, key="sc_yaml")
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        st.error(f"Not valid YAML: {exc}")
        st.stop()
problems = validate_scorer_config(config) if isinstance(config, dict) else ["a scorer must be a mapping"]
for problem in problems:
    st.warning(problem)

st.subheader("Try it on a run")
finished = [r for r in runs.list_runs(50) if r["done"]]
if finished:
    run_id = st.selectbox(
        "Run",
        [r["id"] for r in finished],
        key="sc_run",
        format_func=lambda i: next(f"#{r['id']} {r['name']}" for r in finished if r["id"] == i),
    )
    rows = st.number_input("Rows", 1, 20, 3, key="sc_rows")
    if st.button("Try", key="sc_try", disabled=bool(problems)):
        with st.spinner("Scoring…"):
            try:
                st.dataframe(pd.DataFrame(try_on_run(config, run_id, int(rows))), hide_index=True, width="stretch")
            except (ValueError, WorkbenchError) as exc:
                st.error(str(exc))
else:
    st.caption("Finish a run first to try scorers on its outputs.")

st.subheader("Save")
cols = st.columns([2, 3, 1])
name = cols[0].text_input("Name", key="sc_name")
note = cols[1].text_input("Version note", key="sc_note")
if cols[2].button("Save version", type="primary", key="sc_save", disabled=bool(problems)):
    try:
        version, created = store.save(name, {k: v for k, v in config.items() if k != "name"}, note=note)
    except WorkbenchError as exc:
        st.error(str(exc))
    else:
        st.success(
            f'Saved {name} v{version.version}; use it in a run as {{scorer: "{name}@{version.version}"}}.'
            if created
            else f"No change since {name} v{version.version}."
        )

st.subheader("Agreement with your reviewers")
calibrated = judge_calibrations(review.stamp())
if not calibrated:
    st.caption("No reviewed row has a judge score yet: label a run's rows on the Review page.")
else:
    st.caption(
        "Each judge scorer against the people who labelled the same rows on the Review page: 95% bootstrap "
        "intervals in brackets, n rows. Reviewers' alpha (Krippendorff) is how well people agree with each "
        "other: the ceiling a judge can reach. kappa is quadratic-weighted on the score; pass_kappa, "
        "precision and recall are on pass/fail (precision: of the rows the judge passed, the share people passed)."
    )
    table = []
    for result in calibrated:
        row = {"queue": result["queue"], "judge": result["scorer"], "rows": result["n_scores"] or result["n_verdicts"]}
        row.update({m["metric"]: review.format_metric(m) for m in result["metrics"]})
        alpha = result["reviewers"]["alpha"]
        row["reviewers' alpha"] = "-" if alpha is None else f"{alpha:.2f}"
        table.append(row)
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", key="sc_calibration")
    for result in calibrated:
        if result["poor"]:
            st.warning(
                f"Judge {result['scorer']!r} agrees poorly with the reviewers of {result['queue']!r} "
                f"({result['poor']}): do not trust its scores alone."
            )
    picked = st.selectbox(
        "Confusion matrix of",
        range(len(calibrated)),
        format_func=lambda i: f"{calibrated[i]['scorer']} · {calibrated[i]['queue']}",
        key="sc_cal_pick",
    )
    matrix = calibrated[picked]["confusion"]
    st.dataframe(
        pd.DataFrame(
            matrix["matrix"],
            index=[f"people {v}" for v in matrix["labels"]],
            columns=[f"judge {v}" for v in matrix["labels"]],
        ),
        key="sc_confusion",
    )

try:
    from workbench import judge_quality

    measured = judge_quality.latest_results()
except ImportError:
    measured = None
st.subheader("How well do the built-in rubrics agree with people?")
if measured:
    st.caption("Measured with bench/judge_agreement.py against human labels in sample_data/judge_labels.jsonl.")
    rows = judge_quality.as_rows(measured)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    this_judge = [
        r
        for r in rows
        if kind == "LLM judge rubric" and r["judge"] == config.get("model") and r["rubric"] == config.get("rubric")
    ]
    if this_judge and (this_judge[0]["unparseable"] > this_judge[0]["n"] / 2 or (this_judge[0]["spearman"] or 0) < 0.5):
        st.warning(
            f"{config['model']} agreed poorly with people on {config['rubric']} "
            f"({this_judge[0]['unparseable']} of {this_judge[0]['n']} replies unreadable, "
            f"Spearman {this_judge[0]['spearman']}): prefer a stronger judge model for this rubric."
        )
else:
    st.caption("Not measured yet: run `python bench/judge_agreement.py` to compare each rubric with human labels.")
