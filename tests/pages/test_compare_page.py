import re

from sqlmodel import select
from streamlit.testing.v1 import AppTest

from storage.db import session
from storage.tables import LlmCall
from workbench import datasets, prompts, runs
from workbench.jobs import runs as run_jobs

PAGE = "../../pages/6_Compare.py"


def two_runs() -> tuple[int, int]:
    """Prompt v1 echoes the question (fails 'contains yes'), v2 adds the hint (passes on rows 8-19)."""
    rows = ["id,question,hint,expected"] + [f"r{i},q{i},{'yes' if i >= 8 else 'no'} {i},yes" for i in range(20)]
    datasets.save_version("quiz", datasets.parse_pasted("\n".join(rows) + "\n"))
    ids = []
    for template in ("plain {{question}}", "careful {{question}} {{hint}}"):
        prompts.save_version("ask", template=template, model="fake/model")
        ids.append(
            runs.create_run(
                runs.plan_from_config(
                    {
                        "prompts": [f"ask@{len(ids) + 1}"],
                        "dataset": "quiz",
                        "models": ["fake/model"],
                        "scorers": [{"type": "contains", "value": "{{expected}}"}],
                    }
                )
            )
        )
        assert run_jobs.run_now(ids[-1]) == "done"
    return ids[0], ids[1]


def prefers_careful(model, messages):
    text = messages[-1]["content"]
    first = text.split("Answer A:\n", 1)[1].split("\n\nAnswer B:", 1)[0]
    return "Winner: A" if "careful" in first else "Winner: B"


def shown_rows(at) -> list[str]:
    return re.findall(r"\*\*(r\d+)\*\*", texts(at))


def texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_pick_two_runs_judge_and_promote_with_confirmation(fake_model, monkeypatch):
    a, b = two_runs()
    prompts.set_label("ask", "production", 1)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.multiselect(key="cmp_runs").set_value([a, b]).run()
    assert not at.exception
    assert at.selectbox(key="cmp_baseline").value == "#1 ask@1"
    assert "\\#2 ask@2 is better than \\#1 ask@1 on contains (+60.0 pp" in texts(at)
    summary = at.dataframe[0].value
    assert list(summary["verdict"]) == ["", "better"] and summary.loc[1, "rows"] == 20
    assert len(at.get("plotly_chart")) == 3

    assert shown_rows(at)[:2] == ["r0", "r1"]
    at.toggle(key="cmp_disagree").set_value(True).run()
    assert shown_rows(at)[:2] == ["r8", "r9"]  # rows where the variants disagree come first

    monkeypatch.setattr(fake_model, "next_reply", prefers_careful)
    at.selectbox(key="cmp_judge_model").set_value("fake/model")
    at.button(key="cmp_judge_run").click().run()
    assert not at.exception
    assert "the pairwise judge fake/model prefers \\#2 ask@2 to \\#1 ask@1" in texts(at)
    with session() as s:
        assert len(s.exec(select(LlmCall).where(LlmCall.source == "judge")).all()) == 40

    assert at.selectbox(key="cmp_winner").value == "#2 ask@2"
    assert at.button(key="cmp_promote").disabled  # not saved, not confirmed
    at.button(key="cmp_save").click().run()
    assert any("Saved as comparison 1" in s.value for s in at.success)
    assert at.button(key="cmp_promote").disabled  # saved, not yet confirmed
    at.checkbox(key="cmp_confirm").check().run()
    at.button(key="cmp_promote").click().run()
    assert not at.exception
    assert any("production: v1 → v2 (evidence: comparison 1)" in s.value for s in at.success)
    assert prompts.labels_of("ask")["production"] == 2
    assert prompts.label_history("ask")[0]["evidence"] == "comparison 1"
    from workbench import compare

    saved = compare.get_saved(1)
    assert saved.run_ids == [a, b] and saved.summary["pairwise"][0]["win_rate"] == 1.0


def test_one_run_needs_a_second_variant(fake_model):
    prompts.save_version("ask", template="{{question}}", model="fake/model")
    datasets.save_version("quiz", datasets.parse_pasted("question\none\ntwo\n"))
    run_id = runs.create_run(runs.plan_from_config({"prompts": ["ask@1"], "dataset": "quiz", "models": ["fake/model"]}))
    run_jobs.run_now(run_id)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.multiselect(key="cmp_runs").set_value([run_id]).run()
    assert not at.exception
    assert any("pick a second run" in i.value for i in at.info)


def test_widget_clicks_reuse_the_statistics(fake_model, monkeypatch):
    """The bootstrap resamples run once per selection and data, not again on every widget click."""
    from workbench import stats

    a, b = two_runs()
    counted = []
    real = stats.compare_variants

    def counting(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats, "compare_variants", counting)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.multiselect(key="cmp_runs").set_value([a, b]).run()
    assert not at.exception
    first = len(counted)
    assert first > 0
    at.selectbox(key="cmp_dist_metric").set_value(at.selectbox(key="cmp_dist_metric").options[0]).run()
    at.run()
    assert not at.exception and len(counted) == first
    at.selectbox(key="cmp_alpha").set_value(0.01).run()  # a new selection is computed
    assert len(counted) > first
