from streamlit.testing.v1 import AppTest

from tests.test_review import JUDGES, make_run, set_judge_scores
from workbench import review

PAGE = "../../pages/9_Review.py"


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def judge_shown(at: AppTest) -> bool:
    return any("scorer" in d.value.columns and "judge_a" in set(d.value["scorer"]) for d in at.dataframe)


def test_label_items_blind_with_a_name_and_progress(fake_model):
    run_id = make_run(rows=5)
    set_judge_scores(run_id, "judge_a", {f"r{i}": 2 for i in range(5)})
    review.create_queue("five", run_id, rubric={"scale": [1, 5], "pass_fail": True, "golden": True})
    at = open_page()
    assert any("Type your name" in i.value for i in at.info)
    at.text_input(key="rv_reviewer").input("alice").run()
    assert "Item 1 of 5" in " ".join(m.value for m in at.markdown)
    assert not judge_shown(at)  # blind by default
    at.radio(key="rv_pass").set_value("fail")
    at.text_input(key="rv_note").input("misses the fact")
    at.text_area(key="rv_golden").input("answer 0")
    at.button(key="rv_score_2").click().run()
    assert not at.exception
    assert "Item 2 of 5" in " ".join(m.value for m in at.markdown)
    assert at.text_input(key="rv_note").value == ""  # the next item starts clean
    queue = review.get_queue("five")
    (given,) = review.labels(queue, "alice")
    assert (given.score, given.passed, given.note, given.golden) == (2.0, False, "misses the fact", "answer 0")
    at.button(key="rv_skip").click().run()
    at.button(key="rv_score_5").click().run()
    progress = {p["reviewer"]: p for p in review.progress(queue)}["alice"]
    assert (progress["labelled"], progress["skipped"], progress["left"]) == (2, 1, 2)
    at.checkbox(key="rv_show_scores").check().run()
    assert judge_shown(at)
    at.button(key="rv_prev").click().run()
    assert "Item 3 of 5" in " ".join(m.value for m in at.markdown)


def test_pairwise_labels_and_new_queue_from_the_page(fake_model):
    make_run(
        prompts=[
            {"name": "plain", "template": "{{question}}", "model": "fake/model"},
            {"name": "shout", "template": "LOUD {{question}}", "model": "fake/model"},
        ],
        scorers=JUDGES[:1],
    )
    at = open_page()
    at.text_input(key="rv_new_name").input("sampled")
    at.radio(key="rv_new_how").set_value("sample").run()
    at.number_input(key="rv_new_n").set_value(3)
    at.button(key="rv_new_create").click().run()
    assert any("Created sampled with 3 items" in s.value for s in at.success)
    at.radio(key="rv_new_kind").set_value("pairwise").run()
    at.text_input(key="rv_new_name").input("pairs")
    at.button(key="rv_new_pair_create").click().run()
    assert any("Created pairs with 10 pairs" in s.value for s in at.success)

    at.text_input(key="rv_reviewer").input("bob").run()
    at.selectbox(key="rv_queue").set_value(review.get_queue("pairs").id).run()
    at.button(key="rv_left").click().run()
    assert not at.exception
    (given,) = review.labels(review.get_queue("pairs"), "bob")
    assert given.choice in ("A", "B")
    assert any("People prefer" in m.label for m in at.metric)


def test_golden_set_from_the_page(fake_model):
    run_id = make_run(rows=3)
    queue = review.create_queue("q", run_id)
    review.label(queue, review.items(queue)[0].id, "alice", score=1, golden="right")
    at = open_page()
    at.text_input(key="rv_golden_name").input("gold")
    at.button(key="rv_golden_make").click().run()
    assert any("gold v1: 1 rows" in s.value for s in at.success)


def test_a_poorly_agreeing_judge_is_flagged_on_the_runs_page(fake_model):
    run_id = make_run()
    set_judge_scores(run_id, "judge_a", {f"r{i}": 5 - i % 5 for i in range(10)})
    queue = review.create_queue("q", run_id)
    for item in review.items(queue):
        review.label(queue, item.id, "alice", score=1 + int(item.data["row"]["id"][1:]) % 5)
    at = AppTest.from_file("../../pages/4_Runs.py", default_timeout=60).run()
    assert not at.exception
    assert any("Judge 'judge_a' agrees poorly" in w.value for w in at.warning)
    assert not any("judge_b" in w.value for w in at.warning)
