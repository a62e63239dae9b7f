"""The one model-call path: cache, rate limit, budget reservation, retries, litellm, the ledger.

Runs, judges inside runs and re-scores, RAG answers, the playground and the pairwise judge all
call a model through `call` (the engine, which records results in batches) or `complete`
(everything else: records the call at once). Nothing else calls litellm.

- Cache: an identical successful call in the ledger is served instead, marked cached (not for
  calls that ask for logprobs, such as constrained judges: the ledger does not keep them).
- Rate limit: the model's `rpm`, through `RateLimits` (shared across processes with Redis).
- Budget: with a run budget, the call's estimated cost is reserved on the run row before the
  call (an atomic update that fails past the budget) and settled with the real cost after it,
  so the cap holds run-wide from the first wave of calls, judge calls included, however many
  processes execute the run.
- Retries: 429, 5xx, timeouts and connection errors, with exponential backoff and jitter
  honouring Retry-After; every attempt is counted on the result (`attempts`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from workbench import calls, costs
from workbench.llm import CallResult, ModelSpec, acall, backoff_delay, request_hash
from workbench.models.rate import RateLimits

DEFAULT_OUTPUT_TOKENS = 512  # assumed reply length for a reservation when max_tokens is not set


class BudgetExceeded(Exception):
    """The call was not made: its estimated cost does not fit in the run's budget."""


@dataclass
class Budget:
    """A run's budget as the call path sees it: reservations on the run row.

    A call reserves the most any call of this run has cost so far in this process (before any is
    known: the price of its prompt plus `max_tokens`, or 512, output tokens). When the budget has
    no room but other calls hold reservations, it waits for them to settle: they may free room.
    Only when nothing is in flight and it still does not fit is the budget reached."""

    run_id: int
    highest: float = 0.0  # the dearest call seen, the estimate once one is known
    wait_s: float = 60.0  # how long to wait for reservations held by calls in flight

    def estimate(self, spec: ModelSpec, messages: list) -> float:
        if self.highest > 0:
            return self.highest
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        out_tokens = int(spec.params.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
        return costs.call_cost(spec.id, chars // 3 + 8, out_tokens) or 0.0

    async def reserve(self, spec: ModelSpec, messages: list) -> float:
        """Reserve the call's estimate (or, before any price is known and with nothing in flight,
        whatever is left of the budget: one call at a time until a real cost is known). Returns
        what was reserved."""
        from storage import execution

        deadline = time.monotonic() + self.wait_s
        while True:
            amount = self.estimate(spec, messages)  # may drop once a call of the run has settled
            if await asyncio.to_thread(execution.reserve, self.run_id, amount):
                return amount
            _, spent, reserved, budget = await asyncio.to_thread(execution.run_control, self.run_id)
            if budget is not None and spent + reserved + amount <= budget:
                continue  # calls settled since the attempt: there is room now
            if reserved <= 1e-12:
                left = (budget or 0.0) - spent
                if self.highest > 0 or left <= 0:
                    raise BudgetExceeded(f"run {self.run_id}: budget reached")
                if await asyncio.to_thread(execution.reserve, self.run_id, left):
                    return left
                continue  # another call took it first: wait for that one
            if time.monotonic() > deadline:
                raise BudgetExceeded(f"run {self.run_id}: budget reached")
            await asyncio.sleep(0.05)

    async def settle(self, reserved: float, result: CallResult) -> None:
        from storage import execution

        spent = result.cost_usd or 0.0
        self.highest = max(self.highest, spent)
        await asyncio.to_thread(execution.settle, self.run_id, reserved, spent)


@dataclass
class CallOptions:
    """How calls of one job are made; shared by all its calls (limits and budget are per job)."""

    use_cache: bool = True
    max_attempts: int = 5
    timeout: float = 120.0
    budget: Budget | None = None
    limits: RateLimits | None = None
    cache: dict[str, dict] | None = None  # prefetched replies by request hash (the engine's)
    slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)  # per model id prefix, e.g. local/


_default_limits: RateLimits | None = None


def default_options() -> CallOptions:
    global _default_limits
    if _default_limits is None:
        _default_limits = RateLimits()
    return CallOptions(limits=_default_limits)


def _from_cache(spec: ModelSpec, messages: list, digest: str, hit: dict) -> CallResult:
    return CallResult(
        model=spec.id,
        messages=messages,
        params=dict(spec.params),
        request_hash=digest,
        output=hit["output"],
        latency_ms=0.0,
        input_tokens=hit["input_tokens"],
        output_tokens=hit["output_tokens"],
        cost_usd=0.0,
        cached=True,
        api_base=spec.api_base,
    )


def _cached(digest: str, options: CallOptions) -> dict | None:
    if options.cache is not None:
        return options.cache.get(digest)
    from storage import ledger

    hit = ledger.cached_call(digest)
    if hit is None:
        return None
    return {"output": hit.output, "input_tokens": hit.input_tokens, "output_tokens": hit.output_tokens}


async def call(
    spec: ModelSpec,
    messages: list,
    options: CallOptions | None = None,
    stop: Callable[[], bool] | None = None,
    attempted: Callable[[CallResult], None] | None = None,
) -> CallResult:
    """One call through cache, rate limit, budget and retries; never raises for provider errors.
    Raises BudgetExceeded when the run's budget leaves no room for it (nothing was called).
    `stop()` is asked before each retry; `attempted(result)` hears of every attempt."""
    options = options or default_options()
    digest = request_hash(spec, messages, spec.params)
    if options.use_cache and not spec.params.get("logprobs"):  # the ledger keeps no logprobs to serve
        hit = _cached(digest, options)
        if hit is not None:
            return _from_cache(spec, messages, digest, hit)
    reserved = 0.0
    if options.budget is not None:
        reserved = await options.budget.reserve(spec, messages)
    result: CallResult | None = None
    try:
        for attempt in range(options.max_attempts):
            if options.limits is not None:
                await options.limits.wait(spec.label, spec.rpm)
            slot = next((s for prefix, s in options.slots.items() if spec.id.startswith(prefix)), None)
            if slot is not None:
                async with slot:
                    result = await acall(spec, messages, options.timeout)
            else:
                result = await acall(spec, messages, options.timeout)
            result.attempts = attempt + 1
            if attempted is not None:
                attempted(result)  # e.g. a circuit breaker counting failures across calls
            if result.ok or not result.retryable or attempt == options.max_attempts - 1 or (stop and stop()):
                break
            await asyncio.sleep(backoff_delay(attempt, result.retry_after))
    finally:
        if options.budget is not None:
            await options.budget.settle(reserved, result or _nothing(spec, messages, digest))
    assert result is not None
    return result


def _nothing(spec: ModelSpec, messages: list, digest: str) -> CallResult:
    return CallResult(model=spec.id, messages=messages, params=dict(spec.params), request_hash=digest)


async def complete(
    spec: ModelSpec,
    messages: list,
    source: str,
    prompt_version_id: int | None = None,
    run_id: int | None = None,
    use_cache: bool = True,
    timeout: float = 120.0,
) -> tuple[CallResult, int]:
    """`call`, then record it in the ledger at once. Returns the result and its ledger id."""
    options = default_options()
    options.use_cache, options.timeout = use_cache, timeout
    result = await call(spec, messages, options)
    return result, record(result, source, prompt_version_id, run_id)


def record(result: CallResult, source: str, prompt_version_id: int | None = None, run_id: int | None = None) -> int:
    return calls.record(result, source, prompt_version_id, run_id)


Caller = Callable[[ModelSpec, list], Awaitable[CallResult]]
