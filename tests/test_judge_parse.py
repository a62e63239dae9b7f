"""Parsing LLM judge replies: the forms judges really use, conflicts, and replies we must refuse."""

from __future__ import annotations

import math

import pytest

from workbench.scoring.judge_parse import (
    JudgeParseError,
    parse_judge_reply,
    parse_pairwise_reply,
    weighted_score_from_logprobs,
)


@pytest.mark.parametrize(
    "reply, score, reason",
    [
        ('{"score": 4, "reason": "Accurate but terse."}', 4.0, "Accurate but terse."),
        ('{"rating": 3, "explanation": "ok"}', 3.0, "ok"),
        ('{"Grade": "5", "Rationale": "perfect"}', 5.0, "perfect"),
        ('{"score": "4/5", "reasoning": "fine"}', 4.0, "fine"),
        ('{"score": 3.5}', 3.5, ""),
        (
            'Here is my evaluation:\n```json\n{"score": 2, "reason": "misses the point"}\n```\nHope that helps.',
            2.0,
            "misses the point",
        ),
        ('After careful thought: {"score": 5, "reason": "great"} -- done', 5.0, "great"),
        ('{"evaluation": {"score": 4, "reason": "nested"}}', 4.0, "nested"),
        ('{"score": 4, "details": {"score": 1}}', 4.0, ""),
        ("Score: 4/5\nThe answer is mostly right.", 4.0, "The answer is mostly right."),
        ("Rating: 4", 4.0, ""),
        ("**Rating:** 3", 3.0, ""),
        ("**Score**: 2 - too vague", 2.0, ""),
        ("Score (1-5): 4", 4.0, ""),
        ("I would give it a rating of 5.", 5.0, ""),
        ("The final score is 3.", 3.0, ""),
        ("Reasoning: mostly right, one slip.\nScore: 4", 4.0, "mostly right, one slip."),
        ("The answer is accurate and complete.\n\n5", 5.0, "The answer is accurate and complete."),
        ("The answer is accurate.\n**4**", 4.0, "The answer is accurate."),
        ("4", 4.0, ""),
        ("I give it 4 out of 5.", 4.0, ""),
        ("Overall this deserves a 3/5 because it is vague.", 3.0, ""),
        ('{"score": 4, "reason": "cut off mid-senten', 4.0, "cut off mid-senten"),
    ],
)
def test_parse_judge_reply_accepts(reply, score, reason):
    got_score, got_reason = parse_judge_reply(reply)
    assert got_score == score
    if reason:
        assert got_reason == reason


@pytest.mark.parametrize(
    "reply, score",
    [
        # labelled beats a bare number elsewhere; the last labelled score wins (judges conclude last)
        ("Criterion 1 is met.\n2\nScore: 4", 4.0),
        ("Score: 3 at first glance; on reflection, Final score: 4", 4.0),
        # JSON beats a labelled score
        ('Score: 5\n{"score": 2, "reason": "actually weak"}', 2.0),
        # "x out of y" with the scale's maximum beats a date-like fraction
        ("Reviewed 12/05/2024. I rate it 4 out of 5.", 4.0),
    ],
)
def test_conflicting_candidates_prefer_the_explicit_one(reply, score):
    assert parse_judge_reply(reply)[0] == score


@pytest.mark.parametrize(
    "reply, fragment",
    [
        ("I think it's good", "no score found"),
        ("It has 3 issues and 2 typos.", "no score found"),
        ("The response is excellent overall!", "no score found"),
        ("", "empty"),
        ("   \n ", "empty"),
        ("Score: 7", "outside the scale 1-5"),
        ("Score: 0", "outside the scale 1-5"),
        ('{"score": 9, "reason": "wow"}', "outside the scale 1-5"),
        ("Score: 8/10", "8/10 but the scale is 1-5"),
        ("I'd say 7/10.", "7/10 but the scale is 1-5"),
        ("The answer was written on 2024-05-17.\n2024", "outside the scale"),
        ('{"score": "high"}', "no score found"),
    ],
)
def test_parse_judge_reply_rejects(reply, fragment):
    with pytest.raises(JudgeParseError, match=fragment):
        parse_judge_reply(reply)


def test_other_scales():
    assert parse_judge_reply("Score: 8/10", scale=(1, 10)) == (8.0, "")
    assert parse_judge_reply('{"score": 0}', scale=(0, 1))[0] == 0.0
    assert parse_judge_reply("Score: -1", scale=(-2, 2))[0] == -1.0
    with pytest.raises(ValueError):
        parse_judge_reply("Score: 1", scale=(5, 1))


# ---------------------------------------------------------------- logprobs


def lp(p):
    return math.log(p)


def test_weighted_score_from_logprobs():
    positions = [
        {"{": lp(0.99), "4": lp(0.01)},  # the score token is not on top here
        {" 4": lp(0.6), "5": lp(0.3), "maybe": lp(0.1)},
    ]
    # renormalised over valid score tokens only: (4 * 0.6 + 5 * 0.3) / 0.9
    assert weighted_score_from_logprobs(positions, (1, 5)) == pytest.approx((4 * 0.6 + 5 * 0.3) / 0.9)


def test_weighted_score_ignores_out_of_scale_tokens_and_merges_variants():
    positions = [{"3": lp(0.5), " 3": lp(0.2), "9": lp(0.2), "1": lp(0.1)}]
    # 3 has 0.7, 1 has 0.1, 9 is off the 1-5 scale
    assert weighted_score_from_logprobs(positions, (1, 5)) == pytest.approx((3 * 0.7 + 1 * 0.1) / 0.8)


def test_weighted_score_none_without_a_score_token():
    assert weighted_score_from_logprobs([{"The": lp(0.9), "A": lp(0.1)}], (1, 5)) is None
    assert weighted_score_from_logprobs([], (1, 5)) is None
    assert weighted_score_from_logprobs([{}], (1, 5)) is None
    assert weighted_score_from_logprobs([{"7": lp(0.9)}], (1, 5)) is None


def test_weighted_score_ten_point_scale():
    assert weighted_score_from_logprobs([{"10": lp(0.5), "9": lp(0.5)}], (1, 10)) == pytest.approx(9.5)


# ---------------------------------------------------------------- pairwise


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("[[A]]", "A"),
        ("After comparing both, my verdict is [[B]]", "B"),
        ("[[C]]", "tie"),
        ('{"winner": "B", "reason": "more accurate"}', "B"),
        ('{"preference": "Response A"}', "A"),
        ('```json\n{"winner": "tie"}\n```', "tie"),
        ("Winner: B", "B"),
        ("**Verdict:** Response A", "A"),
        ("Final verdict: tie", "tie"),
        ("B", "B"),
        ("A.", "A"),
        ("Output B", "B"),
        ("Response A is better than response B.", "A"),
        ("I prefer Response B because it cites sources.", "B"),
        ("Both are equally good; it's a tie.", "tie"),
    ],
)
def test_parse_pairwise_reply(reply, verdict):
    assert parse_pairwise_reply(reply) == verdict


@pytest.mark.parametrize(
    "reply, fragment",
    [
        ("Both have merits.", "no verdict"),
        ("Response A is more concise, but Response B is more accurate.", "prefers both"),
        ('{"winner": "neither one really"}', "is not A, B or tie"),
        ("", "empty"),
        ("I cannot decide.", "no verdict"),
    ],
)
def test_parse_pairwise_reply_rejects(reply, fragment):
    with pytest.raises(JudgeParseError, match=fragment):
        parse_pairwise_reply(reply)
