"""Review: people label a run's rows (or pick the better of two answers), one item at a time.

Keys 1-5 give a score, P/F pass or fail, S skips, J/K move to the next/previous item. The judge's
scores stay hidden unless the reviewer asks for them. Widget keys are stable (`rv_*`) for tests.
"""

import pandas as pd
import streamlit as st

from ui_common import page_setup
from workbench import review, runs
from workbench.errors import NotFound, WorkbenchError

page_setup("Review", "🧑‍⚖️")
st.title("🧑‍⚖️ Review")

if "rv_reviewer" not in st.session_state:  # widget state is dropped when the page is left: keep the name
    st.session_state["rv_reviewer"] = st.session_state.get("review_name", "")
reviewer = st.text_input(
    "Your name (kept for this browser session; labels are stored per reviewer)", key="rv_reviewer"
).strip()
st.session_state["review_name"] = reviewer
tab_label, tab_new, tab_files, tab_rejudge = st.tabs(
    ["Label", "New queue", "Golden set and files", "Judge consistency"]
)


def _flash(kind: str, text: str) -> None:
    st.session_state["rv_flash"] = (kind, text)


def _position_key(queue_id: int) -> str:
    return f"rv_pos:{queue_id}"


def _advance(queue, position: int) -> None:
    following = review.next_position(queue, st.session_state.get("rv_reviewer", ""), after=position)
    st.session_state[_position_key(queue.id)] = position if following is None else following
    for key in ("rv_note", "rv_golden"):
        st.session_state[key] = ""
    st.session_state["rv_pass"] = "–"


def _save(queue, item, position: int, **fields) -> None:
    name = st.session_state.get("rv_reviewer", "")
    try:
        if queue.kind == "pairwise":
            review.label_pairwise(queue, item, name, fields["side"])
        elif fields.get("skip"):
            review.label(queue, item.id, name, skip=True)
        else:
            verdict = st.session_state.get("rv_pass", "–")
            if "passed" not in fields:
                fields["passed"] = {"pass": True, "fail": False}.get(verdict)
            review.label(
                queue,
                item.id,
                name,
                note=st.session_state.get("rv_note", ""),
                golden=st.session_state.get("rv_golden", "") or None,
                **fields,
            )
    except WorkbenchError as exc:
        _flash("error", str(exc))
        return
    _flash("success", f"Saved item {position + 1}.")
    _advance(queue, position)


def _move(queue, position: int, step: int, total: int) -> None:
    st.session_state[_position_key(queue.id)] = (position + step) % total


def _text(label: str, value) -> None:
    st.caption(label)
    st.code("" if value is None else str(value), language=None, wrap_lines=True)


with tab_label:
    queues = review.list_queues()
    if not queues:
        st.info("No review queue yet: make one from a run under 'New queue'.")
    else:
        queue_id = st.selectbox(
            "Queue",
            [q["id"] for q in queues],
            key="rv_queue",
            format_func=lambda i: next(f"{q['name']} ({q['kind']})" for q in queues if q["id"] == i),
        )
        entry = next(q for q in queues if q["id"] == queue_id)
        st.caption(f"{entry['labelled']} of {entry['items']} items have a label from someone.")
        queue = review.get_queue(queue_id)
        items = review.items(queue)
        progress = review.progress(queue)
        if progress:
            st.dataframe(pd.DataFrame(progress), hide_index=True, key="rv_progress")
        if queue.rubric.get("instructions"):
            st.caption(queue.rubric["instructions"])
        flash = st.session_state.pop("rv_flash", None)
        if flash:
            (st.error if flash[0] == "error" else st.success)(flash[1])
        if not reviewer:
            st.info("Type your name above to start labelling.")
        elif not items:
            st.info("This queue is empty.")
        else:
            key = _position_key(queue.id)
            if key not in st.session_state:
                st.session_state[key] = review.next_position(queue, reviewer) or 0
            position = min(int(st.session_state[key]), len(items) - 1)
            item = items[position]
            mine = [lbl for lbl in review.labels(queue, reviewer) if lbl.item_id == item.id]
            st.markdown(f"**Item {position + 1} of {len(items)}** · row `{item.row_key}`")
            if mine:
                given = mine[-1]
                st.caption(
                    "You skipped this item."
                    if given.skipped
                    else f"Your label: score {given.score}, passed {given.passed}, choice {given.choice} "
                    "(labelling again keeps the old label in the history)."
                )
            show = st.checkbox("Show the judge's scores", value=False, key="rv_show_scores")
            seen = review.view(queue, item, show_scores=show)
            _text("Input", seen["input"])
            if seen.get("expected"):
                _text("Reference", seen["expected"])
            if seen.get("context"):
                _text("Retrieved context", seen["context"])
            if queue.kind == "pairwise":
                left, right = st.columns(2)
                with left:
                    _text("Answer on the left", seen["left"])
                with right:
                    _text("Answer on the right", seen["right"])
                cols = st.columns(3)
                for col, side, label, shortcut in (
                    (cols[0], "left", "Left is better (A)", "a"),
                    (cols[1], "tie", "Tie (T)", "t"),
                    (cols[2], "right", "Right is better (B)", "b"),
                ):
                    col.button(
                        label,
                        key=f"rv_{side}",
                        shortcut=shortcut,
                        on_click=_save,
                        args=(queue, item, position),
                        kwargs={"side": side},
                    )
            else:
                _text(f"Output ({seen.get('variant') or ''})", seen["output"])
                if show:
                    st.dataframe(
                        pd.DataFrame([{"scorer": k, **v} for k, v in (seen.get("scores") or {}).items()]),
                        hide_index=True,
                        key="rv_scores",
                    )
                rubric = queue.rubric
                if rubric.get("pass_fail"):
                    st.radio("Pass or fail", ["–", "pass", "fail"], horizontal=True, key="rv_pass")
                st.text_input("Note", key="rv_note")
                if rubric.get("golden"):
                    st.text_area("Corrected answer (optional)", key="rv_golden", height=80)
                if rubric.get("scale"):
                    low, high = rubric["scale"]
                    st.caption(f"Score ({low} worst – {high} best); a score button saves the label")
                    cols = st.columns(high - low + 1)
                    for col, value in zip(cols, range(low, high + 1)):
                        col.button(
                            str(value),
                            key=f"rv_score_{value}",
                            shortcut=str(value) if 0 <= value <= 9 else None,
                            on_click=_save,
                            args=(queue, item, position),
                            kwargs={"score": value},
                        )
                else:
                    cols = st.columns(2)
                    cols[0].button(
                        "Pass (P)", key="rv_save_pass", shortcut="p", on_click=_save, args=(queue, item, position),
                        kwargs={"passed": True},
                    )  # fmt: skip
                    cols[1].button(
                        "Fail (F)", key="rv_save_fail", shortcut="f", on_click=_save, args=(queue, item, position),
                        kwargs={"passed": False},
                    )  # fmt: skip
            nav = st.columns(3)
            nav[0].button(
                "← Previous (K)", key="rv_prev", shortcut="k", on_click=_move, args=(queue, position, -1, len(items))
            )
            nav[1].button(
                "Skip (S)", key="rv_skip", shortcut="s", on_click=_save, args=(queue, item, position),
                kwargs={"skip": True},
            )  # fmt: skip
            nav[2].button(
                "Next → (J)", key="rv_next", shortcut="j", on_click=_move, args=(queue, position, 1, len(items))
            )
        if queue.kind == "pairwise":
            summary = review.pairwise_summary(queue)
            rate = summary["rate"]
            if rate.win_rate is not None:
                st.metric(
                    f"People prefer {summary['b']} over {summary['a']}",
                    f"{rate.win_rate:.0%}",
                    help=f"ties count half; 95% interval {rate.ci_low:.0%}–{rate.ci_high:.0%}, n={rate.counts['n']}",
                )
        else:
            agreement = review.reviewer_agreement(queue)
            if agreement["alpha"] is not None:
                st.caption(
                    f"Reviewers agree with each other at Krippendorff's alpha {agreement['alpha']:.2f} "
                    f"({agreement['reviewers']} reviewers, {agreement['items']} items labelled twice or more): "
                    "the ceiling a judge can reach. See the Scorers page for each judge's agreement."
                )

with tab_new:
    finished = [r for r in runs.list_runs(50) if r["done"]]
    if not finished:
        st.info("Finish a run first: a queue is made from a run's rows.")
    else:
        run_ids = [r["id"] for r in finished]

        def run_label(run_id: int) -> str:
            return next(f"#{r['id']} {r['name']}" for r in finished if r["id"] == run_id)

        kind = st.radio("Kind", ["rows", "pairwise"], horizontal=True, key="rv_new_kind")
        name = st.text_input("Queue name", key="rv_new_name")
        run_id = st.selectbox("Run", run_ids, key="rv_new_run", format_func=run_label)
        if kind == "rows":
            how = st.radio(
                "Rows",
                list(review.HOW),
                horizontal=True,
                key="rv_new_how",
                format_func=lambda h: {
                    "all": "all",
                    "filter": "a filter",
                    "sample": "a random sample",
                    "disagreement": "where judgements disagree most",
                }[h],
            )
            cols = st.columns(2)
            n = cols[0].number_input("How many (0 = all)", 0, 10000, 20 if how != "all" else 0, key="rv_new_n")
            seed = cols[1].number_input("Seed", 0, 10**6, 0, key="rv_new_seed")
            status = search = failing = None
            if how == "filter":
                cols = st.columns(3)
                status = cols[0].selectbox("Status", ["", "done", "error", "blocked"], key="rv_new_status") or None
                search = cols[1].text_input("Output contains", key="rv_new_search") or None
                failing = cols[2].text_input("Failed by scorer", key="rv_new_failing") or None
            cols = st.columns(4)
            use_scale = cols[0].checkbox("Score", True, key="rv_new_use_scale")
            low = cols[1].number_input("Scale min", value=1, key="rv_new_low")
            high = cols[2].number_input("Scale max", value=5, key="rv_new_high")
            pass_fail = cols[3].checkbox("Pass/fail", True, key="rv_new_pf")
            golden = st.checkbox("Ask for a corrected answer", True, key="rv_new_golden")
            instructions = st.text_area("Instructions for reviewers", key="rv_new_instructions", height=70)
            if st.button("Create queue", type="primary", key="rv_new_create"):
                rubric = {
                    "scale": [int(low), int(high)] if use_scale else None,
                    "pass_fail": pass_fail,
                    "golden": golden,
                    "instructions": instructions,
                }
                try:
                    made = review.create_queue(
                        name, run_id, how, int(n) or None, int(seed), rubric, status, search, failing
                    )
                except WorkbenchError as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Created {made.name} with {len(review.items(made))} items.")
        else:
            variants = review.variants(run_id)
            other_run = st.selectbox("Run of variant B", run_ids, key="rv_new_run_b", format_func=run_label)
            other = review.variants(other_run)
            cols = st.columns(2)
            a = cols[0].selectbox("Variant A", variants, key="rv_new_a")
            b = cols[1].selectbox("Variant B", other, index=min(1, len(other) - 1), key="rv_new_b")
            cols = st.columns(2)
            n = cols[0].number_input("How many rows (0 = all)", 0, 10000, 0, key="rv_new_pair_n")
            seed = cols[1].number_input("Seed", 0, 10**6, 0, key="rv_new_pair_seed")
            if st.button("Create pairwise queue", type="primary", key="rv_new_pair_create"):
                try:
                    made = review.create_pairwise_queue(name, (run_id, a), (other_run, b), int(n) or None, int(seed))
                except WorkbenchError as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Created {made.name} with {len(review.items(made))} pairs.")

with tab_files:
    queues = [q for q in review.list_queues()]
    if queues:
        chosen = st.selectbox("Queue", [q["name"] for q in queues], key="rv_files_queue")
        try:
            queue = review.get_queue(chosen)
        except NotFound as exc:
            st.error(str(exc))
            st.stop()
        st.download_button(
            "Export items and labels (CSV)",
            review.export_csv(queue),
            file_name=f"{queue.name}.csv",
            key="rv_export",
        )
        upload = st.file_uploader(
            "Import labels (CSV: item_id, reviewer, score, passed, note, golden)", key="rv_import"
        )
        if upload is not None and st.button("Import", key="rv_import_go"):
            try:
                result = review.import_csv(queue, upload.getvalue())
            except WorkbenchError as exc:
                st.error(str(exc))
            else:
                st.success(f"Imported {result['imported']} label(s); {result['unchanged']} unchanged.")
        if queue.kind == "rows":
            dataset_name = st.text_input("Dataset name for the corrected rows", key="rv_golden_name")
            if st.button("Make a dataset version from the corrected answers", key="rv_golden_make"):
                try:
                    version, created = review.golden_dataset(queue, dataset_name)
                except WorkbenchError as exc:
                    st.error(str(exc))
                else:
                    st.success(
                        f"{dataset_name} v{version.version}: {version.row_count} rows with the corrected answers in "
                        "`expected` and `human_score`/`human_pass` columns."
                        if created
                        else f"No change since {dataset_name} v{version.version}."
                    )
    else:
        st.info("No review queue yet.")

with tab_rejudge:
    st.caption(
        "Ask a run's judge again several times per row, with the cache bypassed: how much its score moves and "
        "how often its verdict flips. Every call is recorded (and costs what a judge call costs)."
    )
    judged = [r for r in runs.list_runs(50) if r["done"]]
    if judged:
        rj_run = st.selectbox("Run", [r["id"] for r in judged], key="rv_rj_run")
        scorers = review.judge_scorers(rj_run)
        if not scorers:
            st.info("This run has no LLM-judge scorer.")
        else:
            cols = st.columns(3)
            rj_scorer = cols[0].selectbox("Judge", scorers, key="rv_rj_scorer")
            times = cols[1].number_input("Times per row", 2, 20, 3, key="rv_rj_times")
            limit = cols[2].number_input("Rows (0 = all)", 0, 10000, 10, key="rv_rj_limit")
            if st.button("Re-judge", key="rv_rj_go"):
                bar = st.progress(0.0, text="Re-judging…")
                try:
                    result = review.rejudge(
                        rj_run,
                        rj_scorer,
                        int(times),
                        int(limit) or None,
                        on_progress=lambda done, total: bar.progress(done / total, text=f"{done}/{total} judge calls"),
                    )
                except WorkbenchError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["rv_rj_result"] = result
            result = st.session_state.get("rv_rj_result")
            if result:
                flip = result["flip_share"]
                spread = result["mean_spread"]
                st.metric("Rows whose verdict flips", "–" if flip is None else f"{flip:.0%}")
                st.metric("Mean spread of the score", "–" if spread is None else f"{spread:.2f}")
                st.dataframe(pd.DataFrame(result["rows"]), hide_index=True, key="rv_rj_rows")
    else:
        st.info("Finish a run first.")
