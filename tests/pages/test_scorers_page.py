from streamlit.testing.v1 import AppTest

from workbench import datasets, prompts, runs
from workbench.jobs import runs as run_jobs
from workbench.scoring import store

PAGE = "../../pages/5_Scorers.py"


def test_write_try_and_save_a_judge_rubric(fake_model):
    prompts.save_version("ask", template="{{ question }}", model="fake/model")
    datasets.save_version("quiz", datasets.parse_pasted("question,expected\nCapital of France?,Paris\n"))
    run_id = runs.create_run(runs.plan_from_config({"prompts": ["ask@1"], "dataset": "quiz", "models": ["fake/model"]}))
    run_jobs.run_now(run_id)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    at.selectbox(key="sc_model").set_value("fake/model")
    at.text_area(key="sc_criteria:correctness").input("Must name the capital.").run()
    fake_model.queue('{"score": 2, "reason": "no capital named"}')
    at.button(key="sc_try").click().run()
    tried = at.dataframe[0].value
    assert tried.loc[0, "score"] == 2 and tried.loc[0, "reason"] == "no capital named"
    assert "Must name the capital." in fake_model.history[-1]["messages"][0]["content"]
    at.text_input(key="sc_name").input("capital-judge")
    at.button(key="sc_save").click().run()
    assert any("Saved capital-judge v1" in s.value for s in at.success)
    assert store.resolve("capital-judge").config["criteria"] == "Must name the capital."


def test_assertion_yaml_is_validated():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.radio(key="sc_kind").set_value("Assertion (YAML)").run()
    at.text_area(key="sc_yaml").input("type: regex\npattern: '('").run()
    assert any("regular expression" in w.value for w in at.warning)
    assert at.button(key="sc_save").disabled


def test_measured_agreement_is_shown_with_a_warning_for_a_poor_judge():
    from workbench import judge_quality

    items = [{"id": "x", "human": 5, "judge": None, "error": "unparseable"}]
    judge_quality.save_results(
        {
            "correctness": {
                "n": 8,
                "n_scored": 1,
                "spearman": None,
                "exact": 0.0,
                "within_1": 0.0,
                "mean_abs_error": 4.0,
                "model": "local/smollm2",
                "items": items,
            }
        }
    )
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    table = at.dataframe[-1].value
    assert table.loc[0, "rubric"] == "correctness" and table.loc[0, "unparseable"] == 7
    assert any("agreed poorly" in w.value for w in at.warning)


def test_agreement_with_reviewers_from_the_sample_queue():
    from workbench import sample

    sample.load_sample_review()
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "judge" in d.value.columns and "kappa" in d.value.columns)
    assert set(table["judge"]) == {"sample_strict_judge", "sample_lenient_judge"}
    assert (table["rows"] == 16).all() and table.loc[0, "kappa"].count("[") == 1  # value [low, high]
    assert any("sample_lenient_judge" in w.value and "agrees poorly" in w.value for w in at.warning)
    assert not any("sample_strict_judge" in w.value for w in at.warning)
