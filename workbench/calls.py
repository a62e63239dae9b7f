"""The call ledger: record every model call, serve identical calls from it as a cache.

The cache is the ledger itself: a successful, non-cached call with the same request
hash. Failed calls are recorded but never served from the cache.
"""

from __future__ import annotations

from sqlmodel import select

from storage.db import session
from storage.tables import LlmCall, utcnow
from workbench import secrets
from workbench.llm import CallResult, ModelSpec, acall_with_retries, request_hash


def cached_output(digest: str) -> LlmCall | None:
    with session() as s:
        return s.exec(
            select(LlmCall)
            .where(LlmCall.request_hash == digest, LlmCall.error_type.is_(None), LlmCall.cached.is_(False))
            .order_by(LlmCall.id.desc())
            .limit(1)
        ).first()


def from_cache(spec: ModelSpec, messages: list, hit: LlmCall) -> CallResult:
    return CallResult(
        model=spec.id,
        messages=messages,
        params=dict(spec.params),
        request_hash=hit.request_hash,
        output=hit.output,
        latency_ms=0.0,
        input_tokens=hit.input_tokens,
        output_tokens=hit.output_tokens,
        cost_usd=0.0,
        cached=True,
        api_base=spec.api_base,
    )


def call_values(
    result: CallResult, source: str, prompt_version_id: int | None = None, run_id: int | None = None
) -> dict:
    """A ledger row as plain column values (the run engine inserts thousands of these per second,
    where building ORM objects would cost more than the insert)."""
    return {
        "created_at": utcnow(),
        "source": source,
        "model": result.model,
        "api_base": result.api_base,
        "request_hash": result.request_hash,
        "messages": result.messages,
        "params": result.params,
        "output": result.output,
        "latency_ms": result.latency_ms,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": result.cost_usd,
        "error_type": result.error_type,
        "error": _masked_error(result),
        "cached": result.cached,
        "prompt_version_id": prompt_version_id,
        "run_id": run_id,
    }


def _masked_error(result: CallResult) -> str | None:
    """The error with every known secret masked, written back to the result: providers echo keys in
    error bodies, and the run engine stores the item's error from the same result right after."""
    result.error = secrets.mask(result.error)
    return result.error


def to_row(result: CallResult, source: str, prompt_version_id: int | None = None, run_id: int | None = None) -> LlmCall:
    return LlmCall(**call_values(result, source, prompt_version_id, run_id))


def record(result: CallResult, source: str, prompt_version_id: int | None = None, run_id: int | None = None) -> int:
    with session() as s:
        row = to_row(result, source, prompt_version_id, run_id)
        s.add(row)
        s.flush()
        return row.id


async def acomplete(
    spec: ModelSpec,
    messages: list,
    source: str,
    prompt_version_id: int | None = None,
    use_cache: bool = True,
    timeout: float = 120.0,
) -> tuple[CallResult, int]:
    """Cache lookup, call with retries, record. Returns the result and its ledger id."""
    if use_cache:
        hit = cached_output(request_hash(spec, messages, dict(spec.params)))
        if hit is not None:
            result = from_cache(spec, messages, hit)
            return result, record(result, source, prompt_version_id)
    result = await acall_with_retries(spec, messages, timeout=timeout)
    return result, record(result, source, prompt_version_id)


def recent(limit: int = 50, source: str | None = None) -> list[LlmCall]:
    with session() as s:
        query = select(LlmCall).order_by(LlmCall.id.desc()).limit(limit)
        if source:
            query = query.where(LlmCall.source == source)
        return list(s.exec(query).all())
