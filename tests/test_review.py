"""Review queues, labels, pairwise review, calibration, golden sets, import/export and the CLI."""

import csv
import io

import pytest
from sqlmodel import select

from storage.db import session
from storage.tables import ReviewLabel, RunItem, Score
from workbench import datasets, review, runs
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.jobs import runs as run_jobs

JUDGES = [
    {"type": "llm_judge", "name": "judge_a", "rubric": "correctness", "model": "fake/model"},
    {"type": "llm_judge", "name": "judge_b", "rubric": "correctness", "model": "fake/model"},
]


def make_run(prompts=None, scorers=None, rows: int = 10) -> int:
    lines = ["id,question,expected"] + [f"r{i},question {i},answer {i}" for i in range(rows)]
    datasets.save_version("quiz", datasets.parse_pasted("\n".join(lines) + "\n"))
    run_id = runs.create_run(
        runs.plan_from_config(
            {
                "prompts": prompts or [{"name": "ask", "template": "{{question}}", "model": "fake/model"}],
                "dataset": "quiz",
                "models": ["fake/model"],
                "scorers": scorers if scorers is not None else [{"type": "contains", "value": "{{expected}}"}, *JUDGES],
            }
        )
    )
    assert run_jobs.run_now(run_id) == "done"
    return run_id


def set_judge_scores(run_id: int, name: str, values: dict[str, float]) -> None:
    """Give the run's rows judge scores (the fake judge's echoes are unparseable) by row key."""
    with session() as s:
        items = s.exec(select(RunItem).where(RunItem.run_id == run_id)).all()
        for item in items:
            from storage.tables import DatasetRow

            key = s.get(DatasetRow, item.dataset_row_id).data["id"]
            score = s.exec(select(Score).where(Score.run_item_id == item.id, Score.scorer_name == name)).one()
            score.value, score.passed, score.error = values[key], values[key] >= 4, None
            s.add(score)


def row_id(item) -> str:
    return item.data["row"]["id"]


def test_queue_all_sample_filter_and_disagreement(fake_model):
    run_id = make_run()
    everything = review.create_queue("all", run_id)
    assert len(review.items(everything)) == 10
    sample = review.create_queue("sample", run_id, how="sample", n=4, seed=3)
    again = review.select_rows(runs.results(run_id, limit=None), "sample", n=4, seed=3)
    assert [i.row_key for i in review.items(sample)] == [r["row_key"] for r in again]
    # contains fails everywhere: the fake model echoes the question, not the answer
    failing = review.create_queue("failing", run_id, how="filter", failing="contains")
    assert len(review.items(failing)) == 10
    with pytest.raises(WorkbenchError, match="empty"):
        review.create_queue("none", run_id, how="filter", search="no such text")
    with pytest.raises(WorkbenchError, match="exists already"):
        review.create_queue("all", run_id)

    set_judge_scores(run_id, "judge_a", {f"r{i}": 3 for i in range(10)})
    set_judge_scores(run_id, "judge_b", {f"r{i}": 3 + (1 if i == 7 else 0) - (2 if i == 2 else 0) for i in range(10)})
    worst = review.create_queue("worst", run_id, how="disagreement", n=3)
    assert [row_id(i) for i in review.items(worst)][:2] == ["r2", "r7"]  # 2 points apart, then 1


def test_blind_by_default_and_scores_on_request(fake_model):
    run_id = make_run()
    set_judge_scores(run_id, "judge_a", {f"r{i}": 4 for i in range(10)})
    queue = review.create_queue("q", run_id)
    item = review.items(queue)[0]
    seen = review.view(queue, item)
    assert "scores" not in seen and seen["output"].startswith("ECHO") and seen["expected"] == "answer 0"
    assert review.view(queue, item, show_scores=True)["scores"]["judge_a"]["value"] == 4


def test_several_reviewers_relabels_kept_and_progress(fake_model):
    queue = review.create_queue("q", make_run(), rubric={"scale": [1, 5], "pass_fail": True})
    first, second = review.items(queue)[:2]
    review.label(queue, first.id, "alice", score=4, passed=True)
    review.label(queue, first.id, "bob", score=2, passed=False)
    review.label(queue, first.id, "alice", score=5, passed=True, note="on second thought")
    review.label(queue, second.id, "bob", skip=True)
    assert len(review.history(queue)) == 4 and len(review.labels(queue)) == 3
    assert review.human_values(queue)[first.id] == {"score": 3.5, "passed": False, "n": 2}  # 1 of 2: no majority
    progress = {p["reviewer"]: p for p in review.progress(queue)}
    assert progress["alice"]["labelled"] == 1 and progress["alice"]["left"] == 9
    assert progress["bob"]["skipped"] == 1 and progress["bob"]["left"] == 8
    assert review.next_position(queue, "bob") == 2
    with pytest.raises(WorkbenchError, match="outside the scale"):
        review.label(queue, first.id, "alice", score=7)
    with pytest.raises(WorkbenchError, match="name"):
        review.label(queue, first.id, " ", score=3)


def test_pairwise_order_is_random_and_the_choice_maps_to_the_variant(fake_model):
    run_id = make_run(
        prompts=[
            {"name": "plain", "template": "{{question}}", "model": "fake/model"},
            {"name": "shout", "template": "LOUD {{question}}", "model": "fake/model"},
        ],
        scorers=[],
    )
    a, b = review.variants(run_id)
    queue = review.create_pairwise_queue("pairs", (run_id, a), (run_id, b), seed=1)
    items = review.items(queue)
    assert {i.swapped for i in items} == {True, False}
    for item in items:
        shown = review.view(queue, item)
        made = review.label_pairwise(queue, item, "alice", "left")
        chosen = item.data[made.choice.lower()]["output"]
        assert chosen == shown["left"]  # the stored variant is the answer that was on the left
        assert ("LOUD" in shown["left"]) == item.swapped
    summary = review.pairwise_summary(queue)
    swapped = sum(i.swapped for i in items)
    assert summary["rate"].counts["B"] == swapped and summary["rate"].counts["A"] == len(items) - swapped


def labelled_queue(run_id: int, judge: dict[str, float]) -> review.ReviewQueue:
    set_judge_scores(run_id, "judge_a", judge)
    queue = review.create_queue("q", run_id)
    humans = {f"r{i}": 1 + i % 5 for i in range(10)}
    for item in review.items(queue):
        review.label(queue, item.id, "alice", score=humans[row_id(item)], passed=humans[row_id(item)] >= 4)
        review.label(queue, item.id, "bob", score=humans[row_id(item)], passed=humans[row_id(item)] >= 4)
    return queue


def test_calibration_of_a_good_and_a_poor_judge_and_the_kappa_threshold(fake_model):
    run_id = make_run()
    queue = labelled_queue(run_id, {f"r{i}": 1 + i % 5 for i in range(10)})
    result = review.calibrate(queue, "judge_a", n_boot=100)
    by = {m["metric"]: m for m in result["metrics"]}
    assert by["kappa"]["value"] == pytest.approx(1.0) and by["kappa"]["n"] == 10
    assert by["precision"]["value"] == 1.0 and result["reviewers"]["alpha"] == pytest.approx(1.0)
    assert result["poor"] is None and review.poor_judges(["judge_a"]) == {}
    assert runs.check_thresholds({"agreement": review.agreements({"judge_a.kappa": 0.6})}, {"judge_a.kappa": 0.6}) == []
    assert (
        "no reviewed rows"
        in runs.check_thresholds({"agreement": review.agreements({"judge_b.kappa": 0.6})}, {"judge_b.kappa": 0.6})[0]
    )

    set_judge_scores(run_id, "judge_a", {f"r{i}": 5 - i % 5 for i in range(10)})  # live scores are read
    assert "kappa" in review.poor_judges(["judge_a"])["judge_a"]
    assert runs.check_thresholds({"agreement": review.agreements({"judge_a.kappa": 0.6})}, {"judge_a.kappa": 0.6})[
        0
    ].startswith("judge_a.kappa -")


def test_golden_answers_become_a_dataset_version(fake_model):
    queue = review.create_queue("q", make_run())
    first, second, third = review.items(queue)[:3]
    review.label(queue, first.id, "alice", score=2, golden="the right answer 0")
    review.label(queue, first.id, "bob", score=3, golden="a better answer 0")
    review.label(queue, second.id, "alice", score=5)
    review.label(queue, third.id, "alice", score=1, passed=False, golden="answer two")
    version, created = review.golden_dataset(queue, "quiz-golden")
    assert created and version.row_count == 2
    rows = [data for _, data in datasets.rows(version.id)]
    assert rows[0]["expected"] == "a better answer 0" and rows[0]["human_score"] == 2.5
    assert rows[0]["question"] == "question 0" and rows[1]["human_pass"] is False


def test_export_import_round_trip_and_bad_files_are_refused_whole(fake_model, tmp_path):
    queue = review.create_queue("q", make_run())
    items = review.items(queue)
    review.label(queue, items[0].id, "alice", score=4, passed=True, note="fine", golden="gold")
    exported = review.export_csv(queue)
    lines = list(csv.DictReader(io.StringIO(exported.decode())))
    assert len(lines) == 10 and lines[0]["reviewer"] == "alice" and lines[1]["reviewer"] == ""
    assert review.import_csv(queue, exported) == {"imported": 0, "unchanged": 1}

    lines[1].update(reviewer="bob", score="2", passed="fail")
    lines[2].update(reviewer="bob", score="3")
    good = io.StringIO()
    writer = csv.DictWriter(good, fieldnames=review.EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(lines)
    assert review.import_csv(queue, good.getvalue().encode()) == {"imported": 2, "unchanged": 1}
    assert {(lbl.reviewer, lbl.score) for lbl in review.labels(queue)} == {("alice", 4), ("bob", 2), ("bob", 3)}

    before = len(review.history(queue))
    bad = (
        "item_id,reviewer,score,passed\n"
        f"{items[3].id},carol,4,pass\n"
        "999999,carol,3,\n"
        f"{items[4].id},carol,9,\n"
        f"{items[3].id},carol,2,\n"
    )
    with pytest.raises(WorkbenchError) as refused:
        review.import_csv(queue, bad.encode())
    message = str(refused.value)
    assert "line 3: item 999999 is not in queue" in message
    assert "line 4: score 9 is outside the scale" in message
    assert "line 5: item" in message and "again (first on line 2)" in message
    with session() as s:
        assert len(s.exec(select(ReviewLabel)).all()) == before  # nothing half-imported

    path = tmp_path / "labels.csv"
    assert main(["review", "export", "q", "--output", str(path)]) == 0
    assert main(["review", "import", "q", str(path)]) == 0
    path.write_text(bad)
    assert main(["review", "import", "q", str(path)]) == 1


def test_judge_calibrate_cli_prints_the_table(fake_model, capsys):
    queue = labelled_queue(make_run(), {f"r{i}": 1 + i % 5 for i in range(10)})
    assert main(["judge", "calibrate", "judge_a", "--queue", queue.name]) == 0
    out = capsys.readouterr().out
    assert "kappa" in out and "spearman" in out and "Krippendorff alpha 1.00" in out
    assert main(["judge", "calibrate", "judge_a", "--queue", "nope"]) == 2


def test_rejudge_bypasses_the_cache_and_counts_flips(fake_model):
    run_id = make_run(rows=2)
    fake_model.queue("Score: 5\nReason: ok", "Score: 2\nReason: no", "Score: 4\nReason: ok", "Score: 4\nReason: ok")
    seen = []
    result = review.rejudge(run_id, "judge_a", times=2, on_progress=lambda done, total: seen.append((done, total)))
    assert [r["scores"] for r in result["rows"]] == [[5.0, 2.0], [4.0, 4.0]]
    assert result["flip_share"] == 0.5 and result["mean_spread"] == 1.5 and seen[-1] == (4, 4)
    stopped = review.rejudge(run_id, "judge_a", times=2, should_stop=lambda: True)
    assert stopped["cancelled"] and stopped["rows"][0]["scores"] == []


def test_sample_queue_loads_once_with_two_reviewers_and_real_figures():
    from workbench import sample

    assert sample.load_sample_review() == [review.SAMPLE_QUEUE]
    assert sample.load_sample_review() == []
    queue = review.get_queue(review.SAMPLE_QUEUE)
    assert {p["reviewer"] for p in review.progress(queue)} == {"alice", "bob"}
    assert review.judged_scorers(queue) == ["sample_lenient_judge", "sample_strict_judge"]
    poor = review.poor_judges(review.judged_scorers(queue))
    assert list(poor) == ["sample_lenient_judge"]
    assert review.reviewer_agreement(queue)["alpha"] > 0.8
    version, _ = review.golden_dataset(queue, "support-golden")
    assert version.row_count == 4


def test_eval_config_with_a_kappa_threshold_passes_or_fails_by_the_reviews(fake_model, tmp_path, capsys):
    run_id = make_run()
    labelled_queue(run_id, {f"r{i}": 1 + i % 5 for i in range(10)})
    config = tmp_path / "ci.yaml"
    config.write_text(
        "prompts: [{name: ask, template: '{{question}}', model: fake/model}]\n"
        "dataset: quiz\nmodels: [fake/model]\nthresholds: {judge_a.kappa: 0.6}\n"
    )
    assert main(["eval", str(config), "--quiet"]) == 0
    set_judge_scores(run_id, "judge_a", {f"r{i}": 5 - i % 5 for i in range(10)})
    assert main(["eval", str(config), "--quiet"]) == 1
    assert "THRESHOLD FAILED: judge_a.kappa" in capsys.readouterr().out


def test_rubric_versions_are_kept_on_labels(fake_model):
    queue = review.create_queue("q", make_run(rows=2))
    item = review.items(queue)[0]
    review.label(queue, item.id, "alice", score=3)
    assert review.update_rubric(queue, {"scale": [1, 3], "pass_fail": False}) == 2
    queue = review.get_queue("q")
    review.label(queue, item.id, "alice", score=2)
    assert [(lbl.rubric_version, lbl.score) for lbl in review.history(queue)] == [(1, 3.0), (2, 2.0)]
    with pytest.raises(WorkbenchError, match="outside the scale 1-3"):
        review.label(queue, item.id, "alice", score=5)
    with pytest.raises(WorkbenchError, match="needs a score scale"):
        review.update_rubric(queue, {"scale": None, "pass_fail": False})


def test_people_pairwise_verdicts_reach_the_compare_page_helper(fake_model):
    run_id = make_run(
        prompts=[
            {"name": "plain", "template": "{{question}}", "model": "fake/model"},
            {"name": "shout", "template": "LOUD {{question}}", "model": "fake/model"},
        ],
        scorers=[],
    )
    a, b = review.variants(run_id)
    queue = review.create_pairwise_queue("pairs", (run_id, a), (run_id, b), n=4, seed=2)
    for item in review.items(queue):
        review.label_pairwise(queue, item, "alice", "right" if item.swapped else "left")  # always A
    (entry,) = review.pairwise_for_runs([run_id])
    assert entry["a"] == a and entry["rate"].win_rate == 0.0 and entry["rate"].counts["A"] == 4
    assert review.pairwise_for_runs([run_id + 1]) == []
