"""A/B comparison end to end: runs through the engine, statistics against known answers, judge, promotion, exports."""

import argparse
import csv
import io
import json

import pytest
from sqlalchemy import delete
from sqlmodel import select

from storage.db import session
from storage.tables import Comparison, DatasetRow, LlmCall, RunItem, Score
from workbench import calls, compare, datasets, prompts, report, runs, stats
from workbench.errors import WorkbenchError
from workbench.jobs import runs as run_jobs

CONTAINS = [{"type": "contains", "value": "{{expected}}"}]


def save_dataset(rows: list[dict], name: str = "quiz") -> None:
    columns = list(rows[0])
    text = "\n".join([",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]) + "\n"
    datasets.save_version(name, datasets.parse_pasted(text))


def run(template: str, dataset: str = "quiz", prompt: str = "ask", repeat: int = 1, scorers=CONTAINS) -> int:
    run_id = runs.create_run(
        runs.plan_from_config(
            {
                "prompts": [{"name": prompt, "template": template, "model": "fake/model"}],
                "dataset": dataset,
                "models": ["fake/model"],
                "scorers": scorers,
                "repeat": repeat,
                "concurrency": 4,
            }
        )
    )
    assert run_jobs.run_now(run_id) == "done"
    return run_id


def discordant_dataset(a_only: int, b_only: int, both: int, neither: int) -> None:
    """Prompt A shows `question`, prompt B shows `hint`; a row passes when the shown text holds 'yes'."""
    rows = []
    for kind, count in (("a", a_only), ("b", b_only), ("both", both), ("neither", neither)):
        for i in range(count):
            rows.append(
                {
                    "id": f"{kind}{i}",
                    "question": f"q {'yes' if kind in ('a', 'both') else 'no'} {kind}{i}",
                    "hint": f"h {'yes' if kind in ('b', 'both') else 'no'} {kind}{i}",
                    "expected": "yes",
                }
            )
    save_dataset(rows)


def test_identical_variants_show_no_detectable_difference(fake_model):
    discordant_dataset(a_only=0, b_only=0, both=20, neither=10)
    first, second = run("{{question}}"), run("{{question}}")
    result = compare.compare([first, second])
    assert [v.label for v in result.variants] == ["#1", "#2"] and result.baseline == "#1"
    (metric,) = result.summary["metrics"]
    (c,) = metric["comparisons"]
    assert (c["n"], c["diff"], c["wins"], c["ties"], c["losses"]) == (30, 0.0, 0, 30, 0)
    assert c["ci_low"] <= 0 <= c["ci_high"] and c["p_value"] == 1.0 and c["direction"] == "none"
    assert c["verdict"].startswith("no detectable difference between #2 and #1 on contains")
    assert metric["variants"]["#1"]["mean"] == pytest.approx(20 / 30)


def test_balanced_disagreement_is_not_a_difference(fake_model):
    discordant_dataset(a_only=2, b_only=2, both=16, neither=10)
    result = compare.compare([run("{{question}}"), run("{{hint}}", prompt="hinted")])
    (c,) = result.summary["metrics"][0]["comparisons"]
    assert c["test"] == "McNemar exact" and c["p_value"] == 1.0  # 2 vs 2 discordant rows
    assert c["ci_low"] < 0 < c["ci_high"] and (c["wins"], c["losses"]) == (2, 2)
    assert "no detectable difference" in c["verdict"]
    advice = compare.sample_size_advice(c, 0.1)  # 10 pp with the observed spread of row differences
    assert advice["rows"] == stats.required_sample_size(c["sd_diff"], 0.1)
    assert "This comparison has 30" in advice["message"]
    assert c["sd_diff"] == pytest.approx((4 / 29) ** 0.5)  # four rows of ±1, 26 of 0


def test_large_shift_is_detected_with_the_exact_mcnemar_p(fake_model):
    discordant_dataset(a_only=0, b_only=12, both=8, neither=10)
    a, b = run("{{question}}"), run("{{hint}}", prompt="hinted")
    result = compare.compare([a, b])
    (c,) = result.summary["metrics"][0]["comparisons"]
    assert c["diff"] == pytest.approx(12 / 30) and c["p_value"] == pytest.approx(2 * 0.5**12)
    assert c["ci_low"] > 0 and c["direction"] == "better"
    assert c["verdict"].startswith(f"#{b} hinted@1 is better than #{a} ask@1 on contains (+40")
    assert compare.leader(result.summary) == f"#{b} hinted@1"
    # the same numbers with the roles swapped: B is now the baseline and A is worse
    swapped = compare.compare([a, b], baseline=f"#{b} hinted@1")
    (c,) = swapped.summary["metrics"][0]["comparisons"]
    assert c["diff"] == pytest.approx(-12 / 30) and c["direction"] == "worse"
    assert compare.leader(swapped.summary) == swapped.baseline  # every other variant is worse
    assert compare.promotion_notes(swapped.summary, swapped.baseline) == []


def test_score_metric_uses_the_exact_permutation_test(fake_model):
    save_dataset([{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(12)])
    a, b = run("{{question}}", scorers=[]), run("A: {{question}}", scorers=[])
    with session() as s:
        items = s.exec(select(RunItem)).all()
        for item in items:  # B scores exactly one point more than A on every row
            row = int(s.get(DatasetRow, item.dataset_row_id).row_key[1:])
            s.add(Score(run_item_id=item.id, scorer_name="quality", value=row % 5 + (item.run_id == b), passed=None))
    result = compare.compare([a, b])
    (metric,) = result.summary["metrics"]
    assert metric["kind"] == "score" and metric["scale"] is None
    (c,) = metric["comparisons"]
    assert (c["diff"], c["ci_low"], c["ci_high"]) == (1.0, 1.0, 1.0)
    assert c["test"] == "paired permutation (exact)" and c["p_value"] == pytest.approx(2 / 2**12)
    advice = compare.sample_size_advice(c, 0.5)
    assert advice["rows"] is None and "never differed" in advice["message"]


def test_a_judge_is_compared_on_its_pass_rate_and_on_its_score(fake_model):
    save_dataset([{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(8)])
    judge = [{"type": "llm_judge", "name": "judge", "criteria": "Is it good?", "model": "fake/model"}]
    a, b = run("{{question}}", scorers=judge), run("Q {{question}}", scorers=judge)
    with session() as s:
        s.exec(delete(Score))
        for item in s.exec(select(RunItem)).all():  # A scores 3 (fail), B scores 4 (pass at the 4.0 threshold)
            value = 3.0 + (item.run_id == b)
            s.add(Score(run_item_id=item.id, scorer_name="judge", value=value, passed=value >= 4))
    result = compare.compare([a, b])
    metrics = {m["metric"]: m for m in result.summary["metrics"]}
    assert sorted(metrics) == ["judge pass rate", "judge score"]
    assert (metrics["judge pass rate"]["kind"], metrics["judge score"]["kind"]) == ("pass", "score")
    assert metrics["judge score"]["scale"] == 4.0  # the judge's 1-5 scale, from the run's scorer config
    assert metrics["judge pass rate"]["comparisons"][0]["diff"] == 1.0
    assert metrics["judge score"]["comparisons"][0]["direction"] == "better"


def test_runs_without_scores_still_compare_cost_and_latency(fake_model, capsys):
    save_dataset([{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(4)])
    a, b = run("{{question}}", scorers=[]), run("Q {{question}}", scorers=[])
    result = compare.compare([a, b])
    assert result.summary["metrics"] == [] and compare.verdicts(result.summary) == []
    assert any("No scores were recorded" in note for note in result.notes)
    assert [c["items"] for c in result.summary["costs"]] == [4, 4]
    assert "Latency per call" in report.html_report(result)
    assert "No scores to compare." in report.markdown_report(result.summary)
    report.print_summary(result.summary)
    assert "no scores to compare" in capsys.readouterr().out


def test_rows_align_by_row_key_across_dataset_versions(fake_model):
    save_dataset([{"id": k, "question": f"{k}?", "expected": "x"} for k in "abcd"])
    first = run("{{question}}")
    save_dataset(
        [
            {"id": k, "question": q, "expected": "x"}
            for k, q in (("a", "a?"), ("b", "b?"), ("c", "c changed?"), ("e", "e?"))
        ]
    )
    second = run("{{question}}")
    result = compare.compare([first, second])
    by_key = {row["row_key"]: row for row in result.rows}
    assert sorted(by_key) == ["a", "b", "c", "d", "e"]
    assert by_key["c"]["input"] == "c?" and by_key["c"]["outputs"] == {"#1": ["ECHO: c?"], "#2": ["ECHO: c changed?"]}
    notes = " ".join(result.notes)
    assert "different dataset versions (quiz@1, quiz@2)" in notes and "1 row changed content" in notes
    assert "2 of 5 rows are missing from some variants" in notes
    (c,) = result.summary["metrics"][0]["comparisons"]
    assert (c["n"], c["dropped"]) == (3, 2)
    from_second = compare.compare([first, second], baseline="#2")
    assert {r["row_key"]: r["input"] for r in from_second.rows}["c"] == "c changed?"


def test_repeats_are_reduced_to_row_means(fake_model):
    save_dataset([{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(10)])
    a, b = run("{{question}}", repeat=3, scorers=[]), run("Q {{question}}", repeat=3, scorers=[])
    pattern = {}  # A passes 2 of 3 repeats on even rows and all 3 on odd rows; B always passes
    with session() as s:
        for item in s.exec(select(RunItem)).all():
            key = s.get(DatasetRow, item.dataset_row_id).row_key
            passed = item.run_id == b or int(key[1:]) % 2 == 1 or item.repeat < 2
            pattern.setdefault((item.run_id, key), []).append(1.0 if passed else 0.0)
            s.add(Score(run_item_id=item.id, scorer_name="contains", value=float(passed), passed=passed))
    result = compare.compare([a, b])
    (metric,) = result.summary["metrics"]
    (c,) = metric["comparisons"]
    assert result.summary["repeats"] == 3 and c["n"] == 10  # rows, not 30 repeats
    expected = stats.compare_variants(
        {
            "#1": {k: v for (r, k), v in pattern.items() if r == a},
            "#2": {k: v for (r, k), v in pattern.items() if r == b},
        },
        "#1",
        kind="pass",
    )[0]
    assert (c["diff"], c["ci_low"], c["ci_high"], c["p_value"]) == (
        expected.diff,
        expected.ci_low,
        expected.ci_high,
        expected.p_value,
    )
    assert c["diff"] == pytest.approx(5 * (1 / 3) / 10) and c["test"].endswith("on per-row pass rates")
    first, second = (v.label for v in result.variants)
    assert metric["variants"][first]["mean"] == pytest.approx((5 * 2 / 3 + 5) / 10)
    assert metric["flaky_rows"] == {first: 5, second: 0}
    flaky = compare.flaky_rows(result)
    assert sorted(r["row_key"] for r in flaky) == ["r0", "r2", "r4", "r6", "r8"]
    assert flaky[0][f"{first} · contains"] == "67% of 3 (flaky)" and flaky[0][f"{second} · contains"] == "100% of 3"
    assert compare.row_view(result, limit=1)["rows"][0]["variants"][first]["spread"]["contains"]["flaky"]


def test_three_variants_in_one_run_get_holm_adjusted_p_values(fake_model):
    discordant_dataset(a_only=0, b_only=12, both=8, neither=10)
    run_id = runs.create_run(
        runs.plan_from_config(
            {
                "prompts": [{"name": "ask", "template": t} for t in ("{{question}}", "{{hint}}", "Q: {{question}}")],
                "dataset": "quiz",
                "models": ["fake/model"],
                "scorers": CONTAINS,
            }
        )
    )
    run_jobs.run_now(run_id)
    result = compare.compare([run_id])
    assert [v.label for v in result.variants] == ["ask@1", "ask@2", "ask@3"]
    (metric,) = result.summary["metrics"]
    assert "2 variants were each compared with ask@1" in metric["multiple_comparisons"]
    hinted, same = metric["comparisons"]
    assert hinted["p_adjusted"] == pytest.approx(min(1.0, 2 * hinted["p_value"])) and hinted["direction"] == "better"
    assert same["diff"] == 0 and same["direction"] == "none"
    with pytest.raises(WorkbenchError, match="needs at least two variants"):
        compare.compare([run("{{question}}")])


def test_rows_side_by_side_order_filter_and_escaped_word_diff(fake_model):
    discordant_dataset(a_only=1, b_only=3, both=2, neither=2)
    a, b = run("{{question}}"), run("{{hint}}", prompt="hinted")
    result = compare.compare([a, b])
    ordered = compare.row_view(result, order="disagreement")["rows"]
    assert {r["row_key"] for r in ordered[:4]} == {"a0", "b0", "b1", "b2"}  # score disagreement first
    lost = compare.row_view(result, lost=f"#{b} hinted@1")
    assert [r["row_key"] for r in lost["rows"]] == ["a0"] and lost["total"] == 1
    entry = lost["rows"][0]["variants"][f"#{b} hinted@1"]
    assert "<del" in entry["html"] and "<ins" in entry["html"] and entry["scores"] == {"contains": 0.0}
    html = compare.word_diff_html("say <b>hi</b> now", "say <i>hi</i> now")
    assert "<i>" not in html and "<b>" not in html and html.count("&lt;") == 2 and html.count("&gt;") == 2
    assert compare.word_diff_html("same words", "same words") == '<div style="white-space:pre-wrap">same words</div>'


def test_cost_and_latency_side_by_side(fake_model):
    from workbench import costs

    costs.set_price("fake/model", 1000.0, 2000.0)  # USD per 1M tokens
    save_dataset([{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(5)])
    a, b = run("{{question}}"), run("{{question}}")  # b is all cache hits
    table = {c["variant"]: c for c in compare.compare([a, b]).summary["costs"]}
    assert table["#1"]["items"] == 5 and table["#1"]["errors"] == 0 and table["#2"]["cached"] == 5
    assert table["#1"]["latency_mean_ms"] > 0 and table["#2"]["latency_mean_ms"] is None  # hits take no time
    # 'ECHO: qN' = 2 words out, 'qN' = 1 word in: (1 * 1000 + 2 * 2000) / 1e6 per call
    assert table["#1"]["cost_mean_usd"] == pytest.approx(0.005)
    assert table["#2"]["cost_per_1k_rows_usd"] == pytest.approx(5.0)  # a hit is priced by its tokens


# ---------------------------------------------------------------- pairwise judge


def judged_pair(fake_model, n=12):
    save_dataset([{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(n)])
    a, b = run("plain {{question}}"), run("careful {{question}}", prompt="careful")
    return compare.compare([a, b])


def answers(messages) -> tuple[str, str]:
    text = messages[-1]["content"]
    first = text.split("Answer A:\n", 1)[1].split("\n\nAnswer B:", 1)[0]
    second = text.split("Answer B:\n", 1)[1].split("\n\nJudge only", 1)[0]
    return first, second


def judge_calls() -> int:
    with session() as s:
        return len(s.exec(select(LlmCall).where(LlmCall.source == "judge")).all())


def test_position_biased_judge_comes_out_as_all_ties(fake_model, monkeypatch):
    result = judged_pair(fake_model)
    monkeypatch.setattr(fake_model, "next_reply", lambda model, messages: "Winner: A")
    out = compare.pairwise_judge(result, result.baseline, result.variants[1].label, "fake/judge-biased")
    assert out["counts"] == {"A": 0, "B": 0, "tie": 12, "n": 12, "missing": 0}
    assert out["win_rate"] == 0.5 and out["ci_low"] < 0.5 < out["ci_high"]
    assert "no clear preference" in out["verdict"] and judge_calls() == 24


def test_judge_preferring_b_content_gives_b_a_win_rate_of_one(fake_model, monkeypatch):
    result = judged_pair(fake_model)

    def prefers_careful(model, messages):
        first, second = answers(messages)
        assert first != second
        return "Winner: A" if "careful" in first else "Winner: B"

    monkeypatch.setattr(fake_model, "next_reply", prefers_careful)
    b = result.variants[1].label
    out = compare.pairwise_judge(result, result.baseline, b, "fake/judge-fair")
    assert out["win_rate"] == 1.0 and out["counts"]["B"] == 12 and out["ci_low"] > 0.7
    assert all(r["a_first"] == "B" and r["b_first"] == "A" for r in out["rows"])
    assert out["verdict"].startswith(f"the pairwise judge fake/judge-fair prefers {b} to {result.baseline}")
    reversed_roles = compare.pairwise_judge(result, b, result.baseline, "fake/judge-fair")  # cache: no new calls
    assert reversed_roles["win_rate"] == 0.0 and judge_calls() == 48
    assert all(row.cached for row in calls.recent(24, source="judge"))


def test_unparseable_or_failed_judge_replies_are_missing_not_crashes(fake_model, monkeypatch):
    result = judged_pair(fake_model, n=6)

    def moody(model, messages):
        first, _ = answers(messages)
        if "q0" in first:
            return "I really could not say."
        if "q1" in first:
            raise RuntimeError("judge overloaded")
        return "Winner: A" if "careful" in first else "Winner: B"

    monkeypatch.setattr(fake_model, "next_reply", moody)
    out = compare.pairwise_judge(result, result.baseline, result.variants[1].label, "fake/judge-moody")
    assert out["counts"] == {"A": 0, "B": 4, "tie": 0, "n": 4, "missing": 2}
    errors = {r["row_key"]: r["error"] for r in out["rows"]}
    assert errors["r0"].startswith("unparseable judge reply") and errors["r1"].startswith("judge call failed")
    assert errors["r2"] is None and out["win_rate"] == 1.0


def test_pairwise_concurrency_is_bounded(fake_model, monkeypatch):
    result = judged_pair(fake_model, n=10)
    monkeypatch.setattr(fake_model, "next_reply", lambda model, messages: "Winner: tie")
    fake_model.delay = 0.02
    from workbench.models import client as models

    real, state = models.complete, {"now": 0, "max": 0}

    async def counting(*args, **kwargs):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        try:
            return await real(*args, **kwargs)
        finally:
            state["now"] -= 1

    monkeypatch.setattr(models, "complete", counting)
    out = compare.pairwise_judge(
        result, result.baseline, result.variants[1].label, "fake/judge-slow", concurrency=3, limit=5
    )
    assert state["max"] == 3 and out["counts"]["tie"] == 5 and len(out["rows"]) == 5


# ---------------------------------------------------------------- saving, promoting, exports


def test_save_and_promote_records_the_comparison_as_evidence(fake_model):
    discordant_dataset(a_only=0, b_only=12, both=8, neither=10)
    prompts.save_version("ask", template="{{question}}", model="fake/model")
    prompts.set_label("ask", "production", 1)
    a = run("{{question}}")
    b = run("{{hint}}")  # ask@2
    result = compare.compare([a, b])
    winner = f"#{b} ask@2"
    assert compare.leader(result.summary) == winner and compare.promotion_notes(result.summary, winner) == []
    assert "worse" in " ".join(compare.promotion_notes(compare.compare([a, b], baseline=winner).summary, f"#{a} ask@1"))
    comparison_id = compare.save(result, "hint vs question")
    with session() as s:
        stored = s.get(Comparison, comparison_id)
    assert stored.run_ids == [a, b] and stored.baseline == f"#{a} ask@1" and stored.name == "hint vs question"
    assert stored.summary["metrics"][0]["comparisons"][0]["direction"] == "better"
    moved = compare.promote(comparison_id, winner)
    assert moved == {
        "prompt": "ask",
        "version": 2,
        "previous": 1,
        "label": "production",
        "comparison_id": comparison_id,
    }
    assert prompts.labels_of("ask")["production"] == 2
    event = prompts.label_history("ask")[0]
    assert (event["from"], event["to"], event["evidence"]) == (1, 2, f"comparison {comparison_id}")
    assert compare.list_saved()[0]["id"] == comparison_id
    with pytest.raises(WorkbenchError):
        compare.promote(comparison_id, "no such variant")


def test_exports_hold_the_rows_and_the_summary(fake_model, monkeypatch):
    save_dataset(
        [{"id": "r0", "question": "<b>bold</b>", "expected": "bold"}]
        + [{"id": f"r{i}", "question": f"q{i}", "expected": "x"} for i in range(1, 6)]
    )
    a, b = run("{{question}}"), run("say {{question}}")
    result = compare.compare([a, b])
    monkeypatch.setattr(fake_model, "next_reply", lambda model, messages: "Winner: tie")
    b_label = result.variants[1].label
    pairwise = compare.pairwise_judge(result, result.baseline, b_label, "fake/judge")
    result.summary["pairwise"] = [pairwise]
    rows = list(csv.DictReader(io.StringIO(report.rows_csv(result).decode("utf-8-sig"))))
    assert [r["row_key"] for r in rows] == [f"r{i}" for i in range(6)]
    assert rows[0][f"{b_label} output"] == "ECHO: say <b>bold</b>" and rows[0][f"{result.baseline} contains"] == "1.0"
    verdict = result.summary["metrics"][0]["comparisons"][0]["verdict"]
    markdown = report.markdown_report(result.summary)
    assert verdict in markdown and "| metric | variant |" in markdown and pairwise["verdict"] in markdown
    page = report.html_report(result)
    assert page.count("* plotly.js v") == 1 and "Plotly.newPlot" in page and '<script charset="utf-8" src=' not in page
    assert verdict in page and "<h2>Summary</h2>" in page and "<h2>Verdicts</h2>" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page


# ---------------------------------------------------------------- command line


def cli(argv):
    parser = argparse.ArgumentParser(prog="workbench")
    compare.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_the_table_and_verdicts(fake_model, capsys, tmp_path):
    discordant_dataset(a_only=0, b_only=12, both=8, neither=10)
    a, b = run("{{question}}"), run("{{hint}}", prompt="hinted")
    report_path = tmp_path / "cmp.md"
    assert cli(["compare", str(a), str(b), "--save", "ci", "--report", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "verdicts:" in out and f"#{b} hinted@1 is better than #{a} ask@1 on contains" in out
    assert "difference vs baseline" in out and "+40.0 pp" in out and "saved as comparison 1" in out
    assert "## Verdicts" in report_path.read_text()
    assert cli(["compare", str(a), str(b), "--baseline", str(b), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["baseline"] == f"#{b} hinted@1" and summary["metrics"][0]["comparisons"][0]["direction"] == "worse"
    assert cli(["compare", str(a), "999"]) == 2
    assert "No run with id 999" in capsys.readouterr().err
