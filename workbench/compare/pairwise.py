"""The pairwise judge: which of two variants' outputs is better, asked in both orders."""

from __future__ import annotations

import asyncio

from workbench import secrets, stats
from workbench.compare.result import Result
from workbench.compare.rows import first_present
from workbench.errors import WorkbenchError

PAIRWISE_TEMPLATE = """You are comparing two answers to the same input. Decide which answer is better for this \
input: more correct, more helpful, and closer to the reference answer when one is given.

Input:
{input}

Reference answer (may be empty):
{expected}

Answer A:
{first}

Answer B:
{second}

Judge only the content, not the order the answers are shown in or their length. Reply with exactly one line: \
"Winner: A", "Winner: B" or "Winner: tie"."""


def pairwise_messages(input_text: str, expected, first: str, second: str) -> list[dict]:
    content = PAIRWISE_TEMPLATE.format(
        input=input_text, expected="" if expected is None else expected, first=first, second=second
    )
    return [{"role": "user", "content": content}]


def _judge_spec(judge):
    from workbench.llm import ModelSpec

    spec = ModelSpec.parse(judge)
    spec.params = {"temperature": 0, "max_tokens": 256, **spec.params}
    return spec


async def apairwise_judge(
    result: Result, a: str, b: str, judge, concurrency: int = 4, limit: int | None = None, use_cache: bool = True
) -> dict:
    """Ask `judge` which of A's and B's outputs is better on each row, in both orders.

    Position bias is the pairwise judge's best-known flaw, so every row is asked twice,
    (A, B) and (B, A), and only a verdict that follows the content both times counts;
    anything else is a tie (stats.pairwise_outcome). A failed call or an unparseable
    reply is recorded as missing for that row, never a crash. Calls go through the
    ledger (source `judge`) and its cache; at most `concurrency` are in flight.
    """
    from workbench.models import client as models
    from workbench.scoring.judge import pairwise_request, read_pairwise
    from workbench.scoring.judge_parse import JudgeParseError

    if a == b:
        raise WorkbenchError("Pick two different variants for the pairwise judge.")
    for label in (a, b):
        result.variant(label)  # an unknown label fails here, before any call
    spec = _judge_spec(judge)
    pairs = [
        (row, first_present(row["outputs"].get(a, [])), first_present(row["outputs"].get(b, []))) for row in result.rows
    ]
    pairs = [(row, out_a, out_b) for row, out_a, out_b in pairs if out_a is not None and out_b is not None]
    skipped = len(result.rows) - len(pairs)
    pairs = pairs[:limit] if limit else pairs
    semaphore = asyncio.Semaphore(max(1, int(concurrency)))

    async def ask(row, first, second):
        asked_spec, messages = pairwise_request(spec, pairwise_messages(row["input"], row["expected"], first, second))
        async with semaphore:
            reply, call_id = await models.complete(asked_spec, messages, source="judge", use_cache=use_cache)
        if not reply.ok:
            return None, secrets.mask(f"judge call failed: {reply.error_type}: {reply.error}"), reply, call_id
        try:
            return read_pairwise(reply), None, reply, call_id
        except JudgeParseError as exc:
            return None, f"unparseable judge reply: {exc}", reply, call_id

    asked = await asyncio.gather(
        *[ask(row, x, y) for row, out_a, out_b in pairs for x, y in ((out_a, out_b), (out_b, out_a))]
    )
    rows, outcomes, spent = [], [], 0.0
    for index, (row, _, _) in enumerate(pairs):
        (ab, error_ab, reply_ab, id_ab), (ba, error_ba, reply_ba, id_ba) = asked[2 * index : 2 * index + 2]
        outcome = stats.pairwise_outcome(ab, ba)
        outcomes.append(outcome)
        spent += (reply_ab.cost_usd or 0.0) + (reply_ba.cost_usd or 0.0)
        rows.append(
            {
                "row_key": row["row_key"],
                "a_first": ab,
                "b_first": ba,
                "outcome": outcome,
                "error": error_ab or error_ba,
                "call_ids": [id_ab, id_ba],
            }
        )
    rate = stats.pairwise_win_rate(outcomes)
    return {
        "a": a,
        "b": b,
        "judge": spec.label,
        "rows": rows,
        "win_rate": rate.win_rate,
        "ci_low": rate.ci_low,
        "ci_high": rate.ci_high,
        "counts": rate.counts,
        "skipped": skipped,
        "cost_usd": spent,
        "verdict": pairwise_verdict(a, b, spec.label, rate),
    }


def pairwise_judge(
    result: Result, a: str, b: str, judge, concurrency: int = 4, limit: int | None = None, use_cache: bool = True
) -> dict:
    """Synchronous `apairwise_judge` for pages and scripts, where no event loop is running."""
    return asyncio.run(apairwise_judge(result, a, b, judge, concurrency, limit, use_cache))


def pairwise_verdict(a: str, b: str, judge: str, rate: stats.WinRate) -> str:
    c = rate.counts
    tally = f"{c['B']} {b}, {c['A']} {a}, {c['tie']} ties" + (
        f", {c['missing']} without a verdict" if c["missing"] else ""
    )
    low, high = rate.ci_low, rate.ci_high
    if rate.win_rate is None or low is None or high is None:  # a win rate always comes with its CI
        return f"the pairwise judge {judge} gave no usable verdicts for {b} against {a} ({tally})"
    detail = f"{b} win rate {rate.win_rate:.0%}, 95% CI {low:.0%} to {high:.0%}; {tally}"
    if low > 0.5:
        return f"the pairwise judge {judge} prefers {b} to {a} ({detail})"
    if high < 0.5:
        return f"the pairwise judge {judge} prefers {a} to {b} ({detail})"
    return f"the pairwise judge {judge} shows no clear preference between {b} and {a} ({detail})"
