"""Constrained judging: the score read from one token's probabilities, pairwise A / B / tie, errors as data."""

from __future__ import annotations

import csv
import math

import pytest

from workbench.config import SAMPLE_DATA
from workbench.llm import CallResult, ModelSpec
from workbench.scoring import ScoreContext
from workbench.scoring.judge import (
    PAIRWISE_PREFILL,
    RUBRICS,
    SCORE_PREFILL,
    judge_messages,
    judge_spec,
    pairwise_request,
    read_pairwise,
    verdict,
)
from workbench.scoring.judge_parse import (
    JudgeParseError,
    expected_score,
    pairwise_distribution,
    parse_pairwise_reply,
    score_distribution,
)

CONTEXT = ScoreContext(row={"expected": "Paris", "question": "Capital of France?"}, input_text="Capital of France?")


def _reply(top: dict[str, float], output: str = "", messages=None) -> CallResult:
    return CallResult(
        model="local/smollm2",
        messages=messages or [],
        params={},
        request_hash="x",
        output=output,
        logprobs=[{"token": output, "top": [{"token": t, "logprob": lp} for t, lp in top.items()]}],
    )


def test_digit_probability_score_matches_a_hand_computed_expectation():
    # P(1)=0.1, P(2)=0.2 (as " 2"), P(3)=0.3, "x" and "7" (outside 1-5) ignored; renormalised over 0.6
    position = {"1": math.log(0.1), " 2": math.log(0.2), "3": math.log(0.3), "x": math.log(0.3), "7": math.log(0.1)}
    distribution = score_distribution(position, scale=(1, 5))
    assert distribution == pytest.approx({1: 1 / 6, 2: 2 / 6, 3: 3 / 6})
    assert expected_score(distribution) == pytest.approx((1 * 1 + 2 * 2 + 3 * 3) / 6)
    assert score_distribution({"hello": -0.1, "\n": -2.0}) is None


def test_constrained_verdict_is_the_expected_score_with_its_probabilities_as_reason():
    config = {"type": "llm_judge", "rubric": "correctness"}  # default judge: the embedded model
    reply = _reply({"5": math.log(0.5), "4": math.log(0.5), "---": math.log(0.01)}, output="5")
    result = verdict(config, reply)
    assert result.error is None and result.score == pytest.approx(4.5) and result.passed is True
    assert "5: 0.50" in result.reason and "4: 0.50" in result.reason


def test_constrained_reply_without_score_tokens_falls_back_to_text_then_to_a_recorded_error():
    config = {"type": "llm_judge", "rubric": "relevance"}
    text_only = CallResult("local/smollm2", [], {}, "x", output="3")
    assert verdict(config, text_only).score == 3.0  # "Score: " + "3"
    echoed = CallResult("local/smollm2", [], {}, "x", output="Score: 4")
    assert verdict(config, echoed).score == 4.0
    nothing = _reply({"---": -0.1, "**": -1.0}, output="---")
    result = verdict(config, nothing)
    assert result.score is None and result.error.startswith("unparseable judge reply")


def test_embedded_judge_is_constrained_and_hosted_ones_are_not_unless_asked():
    config = {"type": "llm_judge", "rubric": "helpfulness"}
    messages = judge_messages(config, "Go to Settings.", CONTEXT)
    assert messages[-1] == {"role": "assistant", "content": SCORE_PREFILL}
    assert judge_spec(config).params["max_tokens"] == 1 and judge_spec(config).params["top_logprobs"] == 20
    hosted = {**config, "model": "openai/gpt-4o-mini"}
    assert judge_messages(hosted, "x", CONTEXT)[-1]["role"] == "user"
    assert judge_spec(hosted).params["max_tokens"] == 200
    assert judge_messages({**hosted, "constrained": True}, "x", CONTEXT)[-1]["role"] == "assistant"
    assert judge_messages({**config, "constrained": False}, "x", CONTEXT)[-1]["role"] == "user"
    assert judge_messages({**config, "scale": [1, 10]}, "x", CONTEXT)[-1]["role"] == "user"  # "10" is two tokens


def test_pairwise_is_constrained_to_a_b_or_tie():
    spec, messages = pairwise_request(ModelSpec("local/smollm2"), [{"role": "user", "content": "Which?"}])
    assert messages[-1] == {"role": "assistant", "content": PAIRWISE_PREFILL} and spec.params["max_tokens"] == 1
    hosted, same = pairwise_request(ModelSpec("openai/gpt-4o-mini"), [{"role": "user", "content": "Which?"}])
    assert len(same) == 1 and hosted.params == {}
    # " a" is the article, not a verdict; " B" wins over " A"
    assert read_pairwise(_reply({" B": -1.6, " W": -2.4, " A": -2.7, " a": -1.0}, output=" B")) == "B"
    assert read_pairwise(_reply({" tie": -0.5, " A": -2.0})) == "tie"
    assert pairwise_distribution({" the": -0.1}) is None
    no_tokens = _reply({" W": -0.1}, output=" A", messages=messages)
    assert read_pairwise(no_tokens) == "A"  # read as "Winner: A"
    assert read_pairwise(_reply({" W": -0.1}, output="Winner: B", messages=messages)) == "B"  # llama.cpp echoes it
    with pytest.raises(JudgeParseError):
        read_pairwise(_reply({" W": -0.1}, output=" W", messages=messages))


@pytest.mark.parametrize(
    "text,expected",
    [("A is the winner.", "A"), ("B wins.", "B"), ("I'd say B is better.", "B"), ("Winner: tie", "tie")],
)
def test_pairwise_parser_reads_plain_sentences(text, expected):
    assert parse_pairwise_reply(text) == expected


def test_lower_case_article_is_not_a_verdict():
    with pytest.raises(JudgeParseError):
        parse_pairwise_reply("a is the winner")


def _sample_rows(n: int = 20) -> list[dict]:
    with open(SAMPLE_DATA / "support_qa.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))[:n]


@pytest.mark.slow
def test_every_rubric_gives_a_verdict_on_twenty_sample_rows():
    """The embedded judge, constrained, answers every built-in rubric on every row (good and bad answers)."""
    import asyncio

    from workbench import local_server
    from workbench.scoring.judge import ajudge

    rows = _sample_rows()

    async def all_verdicts():
        gate = asyncio.Semaphore(max(2, local_server.parallel_slots()))

        async def one(rubric: str, index: int, row: dict):
            output = row["expected"] if index % 2 == 0 else "I am not sure, please ask support."
            context = ScoreContext(
                row={"expected": row["expected"], "question": row["question"]}, input_text=row["question"]
            )
            async with gate:
                result, reply = await ajudge({"type": "llm_judge", "rubric": rubric}, output, context)
            return rubric, row["id"], result, reply

        return await asyncio.gather(*(one(rubric, i, row) for rubric in RUBRICS for i, row in enumerate(rows)))

    try:
        verdicts = asyncio.run(all_verdicts())
    finally:
        local_server.stop(owned_only=True)
    assert len(verdicts) == len(RUBRICS) * 20
    failed = [(r, i, v.error, reply.error) for r, i, v, reply in verdicts if v.score is None]
    assert not failed, failed[:5]
    assert all(1 <= v.score <= 5 for _, _, v, _ in verdicts)
