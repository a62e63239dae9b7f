"""Scoring run items: inside the engine as items finish, and re-scoring a finished run.

Deterministic scorers run inline (microseconds). Judge scorers make model calls, which
return to the caller so they are recorded in the ledger (source `judge`) with the run
and counted toward its budget. Re-scoring reads stored outputs only: the model that
produced them is never called again.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from storage import runs as run_repo
from workbench import guardrails, secrets
from workbench.llm import CallResult
from workbench.scoring import ScoreContext, ScoreResult, run_scorer, scorer_name, store, validate_scorer_config
from workbench.scoring.judge import ajudge


@dataclass
class PreparedScorer:
    name: str
    config: dict
    version_id: int | None
    is_judge: bool


def prepare(configs: list[dict]) -> list[PreparedScorer]:
    configs = store.expand(configs)
    problems = [p for c in configs for p in validate_scorer_config(c)]
    if problems:
        raise ValueError("; ".join(problems))
    names = [scorer_name(c) for c in configs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"two scorers share the name {', '.join(sorted(duplicates))}: give one a 'name'")
    ids = store.version_ids(configs)
    return [PreparedScorer(scorer_name(c), c, vid, c.get("type") == "llm_judge") for c, vid in zip(configs, ids)]


def score_row(scorer: PreparedScorer, result: ScoreResult) -> dict:
    return {
        "scorer_name": scorer.name,
        "scorer_version_id": scorer.version_id,
        "value": result.score,
        "passed": result.passed,
        "reason": result.reason[:2000],
        "error": result.error,
    }


_pool: ThreadPoolExecutor | None = None


def _scorer_threads() -> ThreadPoolExecutor:
    """Scorers' own threads. Not the event loop's default executor: aiohttp resolves host names
    there, so slow scorers filling it would hold up every new connection's call."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scorer")
    return _pool


async def score_output(
    scorers: list[PreparedScorer], output: str, context: ScoreContext, call=None
) -> tuple[list[dict], list[CallResult]]:
    """All scores for one output, plus the judge calls made (to be recorded by the caller).

    Judge scorers call the model through `call` (the job's call path); the others are CPU work
    (a `python` expression, an embedding, a regex) and run in a thread so they never stall the
    event loop that carries every other call in flight."""
    rows, judge_calls = [], []
    for scorer in scorers:
        if scorer.is_judge:
            result, reply = await ajudge(scorer.config, output, context, call=call)
            judge_calls.append(reply)
        else:
            result = await asyncio.get_running_loop().run_in_executor(
                _scorer_threads(), run_scorer, scorer.config, output, context
            )
        rows.append(score_row(scorer, result))
    return rows, judge_calls


def guard_scores(name: str, findings: list) -> dict:
    """A guardrail check as a score row, so trigger rates aggregate like any scorer."""
    triggered = bool(findings)
    reason = "; ".join(f.describe() for f in findings)[:2000] if triggered else "no findings"
    return {
        "scorer_name": name,
        "scorer_version_id": None,
        "value": 0.0 if triggered else 1.0,
        "passed": not triggered,
        "reason": reason,
        "error": None,
    }


def check_guards(text: str, guards: list[dict]) -> tuple[bool, list]:
    findings = guardrails.check(text, guards or [])
    return guardrails.blocked(findings), findings


def rescore(run_id: int, configs: list[dict], concurrency: int = 4) -> int:
    """Score a finished run's stored outputs with new or changed scorers; returns scores written."""
    from workbench import calls as ledger

    scorers = prepare(configs)
    items = run_repo.done_items_with_calls(run_id)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item):
        context = ScoreContext(
            row=item.data or {},
            latency_ms=item.latency_ms,
            cost_usd=item.cost_usd,
            input_tokens=item.input_tokens,
            output_tokens=item.output_tokens,
            input_text="\n".join(m["content"] for m in item.messages or []),
        )
        async with semaphore:
            rows, judge_calls = await score_output(scorers, item.output or "", context)
        return item, rows, judge_calls

    async def everything():
        return await asyncio.gather(*[one(item) for item in items])

    scored = asyncio.run(everything())
    names = [s.name for s in scorers]
    payload = [{**row, "run_item_id": item.id} for item, rows, _ in scored for row in rows]
    judge_calls = [
        ledger.call_values(reply, "judge", item.prompt_version_id, run_id)
        for item, _, replies in scored
        for reply in replies
    ]

    def new_config(config: dict) -> dict:
        kept = [c for c in (config.get("scorers") or []) if scorer_name(c) not in names]
        return {**config, "scorers": secrets.strip_keys(kept + [s.config for s in scorers])}

    run_repo.replace_scores(run_id, [item.id for item, _, _ in scored], names, payload, judge_calls, new_config)
    return len(payload)


def try_on_run(config: dict, run_id: int, limit: int = 3) -> list[dict]:
    """Run one scorer config on the first finished items of a run (for the Scorers page preview)."""
    problems = validate_scorer_config(config)
    if problems:
        raise ValueError("; ".join(problems))
    items = run_repo.done_items_with_calls(run_id, limit)
    out = []
    for item in items:
        context = ScoreContext(
            row=item.data or {},
            latency_ms=item.latency_ms,
            cost_usd=item.cost_usd,
            input_tokens=item.input_tokens,
            output_tokens=item.output_tokens,
            input_text="\n".join(m["content"] for m in item.messages or []),
        )
        result = run_scorer(config, item.output or "", context)
        out.append(
            {
                "input": context.input_text,
                "output": item.output,
                "expected": (item.data or {}).get("expected"),
                "score": result.score,
                "passed": result.passed,
                "reason": result.error or result.reason,
            }
        )
    return out
