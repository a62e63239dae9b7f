from streamlit.testing.v1 import AppTest

from workbench import datasets, prompts, runs
from workbench.jobs import runs as run_jobs
from workbench.jobs import worker

PAGE = "../../pages/4_Runs.py"


def test_start_run_in_background_and_see_results(fake_model):
    prompts.save_version("ask", template="Q: {{ question }}", model="fake/model")
    datasets.save_version("quiz", datasets.parse_pasted("id,question\na,one\nb,two\nc,three\n"))
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    at.multiselect(key="run_prompts").set_value(["ask@1"])
    at.multiselect(key="run_models").set_value(["fake/model"])
    at.text_input(key="run_name").input("first run")
    at.button(key="run_start").click().run()
    assert not at.exception
    run_id = runs.list_runs()[0]["id"]
    assert runs.get_run(run_id).status == "queued"  # the page only queues it: a worker executes it
    assert worker.drain() == 1
    assert runs.get_run(run_id).status == "done"
    at.run()
    table = at.dataframe[1].value
    assert sorted(table["output"]) == ["ECHO: Q: one", "ECHO: Q: three", "ECHO: Q: two"]
    assert any("done: 3/3" in p.proto.text for p in at.get("progress"))


def test_missing_column_is_refused_with_a_message(fake_model):
    prompts.save_version("ask", template="{{ question }} {{ context }}", model="fake/model")
    datasets.save_version("quiz", datasets.parse_pasted("question\none\n"))
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.multiselect(key="run_prompts").set_value(["ask@1"])
    at.multiselect(key="run_models").set_value(["fake/model"])
    at.button(key="run_start").click().run()
    assert any("lacks column(s) context" in e.value for e in at.error)
    assert runs.list_runs() == []


def test_interrupted_run_offers_resume(fake_model):
    prompts.save_version("ask", template="{{ question }}", model="fake/model")
    datasets.save_version("quiz", datasets.parse_pasted("question\none\ntwo\n"))
    run_id = runs.create_run(runs.plan_from_config({"prompts": ["ask@1"], "dataset": "quiz", "models": ["fake/model"]}))
    from datetime import timedelta

    from storage.tables import utcnow

    runs.mark(run_id, status="running", heartbeat_at=utcnow() - timedelta(minutes=5))  # no lease: its worker died
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert any("interrupted" in p.proto.text for p in at.get("progress"))
    at.button(key=f"resume:{run_id}").click().run()
    assert worker.drain() == 1
    assert runs.get_run(run_id).status == "done" and runs.progress(run_id)["done"] == 2


def test_scores_shown_and_rescore_from_the_page(fake_model):
    prompts.save_version("ask", template="{{ question }}", model="fake/model")
    datasets.save_version("quiz", datasets.parse_pasted("question,expected\none,one\ntwo,2\n"))
    run_id = runs.create_run(
        runs.plan_from_config(
            {
                "prompts": ["ask@1"],
                "dataset": "quiz",
                "models": ["fake/model"],
                "concurrency": 1,
                "scorers": [{"type": "contains", "value": "{{expected}}"}],
            }
        )
    )
    run_jobs.run_now(run_id)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    scores = at.dataframe[1].value
    assert scores.loc[0, "scorer"] == "contains" and scores.loc[0, "pass_rate"] == 0.5
    sent = len(fake_model.history)
    at.text_area(key=f"rescore:{run_id}").input("- {type: regex, pattern: 'ECHO'}").run()
    at.button(key=f"rescore_btn:{run_id}").click().run()
    assert not at.exception
    assert any("queued or running" in i.value for i in at.info)  # the page only queues it
    assert worker.drain() == 1
    assert {s["scorer"] for s in runs.summary(run_id)["scorers"]} == {"contains", "regex"}
    assert len(fake_model.history) == sent
