"""Judge quality: the agreement math, evaluate() against fake judges, and the stored results."""

from __future__ import annotations

import json
import re

import pytest
from sqlmodel import select

from storage.db import session
from storage.tables import AppSetting, LlmCall
from workbench import judge_quality
from workbench.judge_quality import agreement, evaluate, latest_results, load_labels, save_results
from workbench.scoring.judge import RUBRICS

GRADED = re.compile(r"Answer to grade:\n(.*?)\n\nGive a score", re.DOTALL)


def reply_with(fake, answer):
    """Make the fake judge answer `answer(graded_output)` instead of popping its queue."""

    def next_reply(model, messages):
        fake.history.append({"model": model, "messages": messages})
        return answer(GRADED.search(messages[-1]["content"]).group(1))

    fake.next_reply = next_reply


def test_agreement_perfect():
    result = agreement([(1, 1), (2, 2), (3, 3), (5, 5)])
    assert result == {
        "n": 4,
        "n_scored": 4,
        "spearman": pytest.approx(1.0),
        "exact": 1.0,
        "within_1": 1.0,
        "mean_abs_error": 0.0,
    }


def test_agreement_inverted():
    result = agreement([(5, 1), (4, 2), (2, 4), (1, 5)])
    assert result["spearman"] == pytest.approx(-1.0)
    assert result["exact"] == 0.0 and result["within_1"] == 0.0
    assert result["mean_abs_error"] == pytest.approx(3.0)  # (4 + 2 + 2 + 4) / 4


def test_agreement_counts_and_excludes_unparseable():
    result = agreement([(None, 3), (4, 4), (2.6, 2), (1, 1)])
    assert result["n"] == 4 and result["n_scored"] == 3
    assert result["exact"] == pytest.approx(2 / 3)  # 2.6 rounds to 3, not 2
    assert result["within_1"] == 1.0
    assert result["mean_abs_error"] == pytest.approx(0.6 / 3)
    assert result["spearman"] == pytest.approx(1.0)


def test_agreement_rounds_half_up_and_leaves_undefined_spearman_empty():
    assert agreement([(4.5, 5), (2.5, 2)])["exact"] == 0.5
    constant = agreement([(5, 1), (5, 3), (5, 5)])  # a judge that says 5 to everything
    assert constant["spearman"] is None and constant["exact"] == pytest.approx(1 / 3)
    nothing = agreement([(None, 2), (None, 4)])
    assert nothing == {"n": 2, "n_scored": 0, "spearman": None, "exact": None, "within_1": None, "mean_abs_error": None}


def test_every_rubric_has_enough_good_and_bad_labels():
    labels = load_labels()
    assert len({item["id"] for item in labels}) == len(labels)
    for rubric in RUBRICS:
        scores = [item["human_score"] for item in labels if item["rubric"] == rubric]
        assert len(scores) >= 6, rubric
        assert min(scores) <= 2 and max(scores) >= 4, rubric
    assert all(item["expected"] for item in labels if item["rubric"] == "correctness")


def test_load_labels_names_the_bad_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    good = {"id": "a", "rubric": "relevance", "input": "q", "output": "a", "human_score": 5}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "rubric": "vibes"}) + "\n")
    with pytest.raises(ValueError, match="line 3: unknown rubric 'vibes'"):
        load_labels(path)


def test_evaluate_with_a_judge_that_agrees_with_the_humans(fake_model):
    labels = load_labels()
    human = {item["output"]: item["human_score"] for item in labels}
    reply_with(fake_model, lambda graded: f"Score: {human[graded]}\nReason: as labelled")

    results = evaluate("fake/model", labels=labels)

    assert list(results) == list(RUBRICS)
    for rubric, entry in results.items():
        assert entry["model"] == "fake/model"
        assert entry["n"] == entry["n_scored"] == sum(item["rubric"] == rubric for item in labels)
        assert entry["spearman"] == pytest.approx(1.0)
        assert entry["exact"] == 1.0 and entry["mean_abs_error"] == 0.0
    prompts = [call["messages"][-1]["content"] for call in fake_model.history]
    assert any("Reference answer:\n$8\n" in p for p in prompts)  # correctness is graded against `expected`
    with session() as s:
        ledger = s.exec(select(LlmCall).where(LlmCall.source == "judge")).all()
    assert len(ledger) == len(labels)


def test_evaluate_counts_garbage_replies_as_unparseable(fake_model):
    reply_with(fake_model, lambda graded: "I think it's fine, really.")

    results = evaluate("fake/model", rubrics=["conciseness", "json_format"])

    assert list(results) == ["conciseness", "json_format"]
    for entry in results.values():
        assert entry["n"] == 8 and entry["n_scored"] == 0
        assert entry["spearman"] is None and entry["mean_abs_error"] is None
        assert all(item["judge"] is None and item["error"].startswith("unparseable") for item in entry["items"])


def test_evaluate_bounds_concurrency(fake_model, monkeypatch):
    fake_model.delay = 0.02
    reply_with(fake_model, lambda graded: "Score: 3")
    in_flight, peak = 0, []
    original = judge_quality.ajudge

    async def counting(*args, **kwargs):
        nonlocal in_flight
        in_flight += 1
        peak.append(in_flight)
        try:
            return await original(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(judge_quality, "ajudge", counting)
    evaluate("fake/model", rubrics=["relevance", "helpfulness"], concurrency=3)
    assert len(peak) == 16 and max(peak) == 3


def test_evaluate_refuses_unknown_rubrics():
    with pytest.raises(ValueError, match="unknown rubric"):
        evaluate("fake/model", rubrics=["vibes"])


def test_save_and_latest_round_trip(fake_model):
    assert latest_results() is None
    reply_with(fake_model, lambda graded: "Score: 4")
    first = evaluate("fake/model", rubrics=["correctness"])
    save_results(first)
    other = {"relevance": {**agreement([(5, 5), (1, 2)]), "model": "fake/other", "items": []}}
    save_results(other)
    again = evaluate("fake/model", rubrics=["harmlessness"])
    save_results(again)

    stored = latest_results()
    assert set(stored["models"]) == {"fake/model", "fake/other"}
    assert stored["models"]["fake/model"]["rubrics"] == json.loads(json.dumps(again))  # replaced, not merged
    assert stored["models"]["fake/other"]["rubrics"]["relevance"]["spearman"] == pytest.approx(1.0)
    assert stored["saved_at"] == stored["models"]["fake/model"]["saved_at"]
    with session() as s:
        assert len(s.exec(select(AppSetting).where(AppSetting.key == "judge_agreement")).all()) == 1
    with pytest.raises(ValueError, match="one model"):
        save_results({**first, **other})
