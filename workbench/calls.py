"""The call ledger's rows: every model call the product makes becomes one `llm_call` row.

The call itself goes through `workbench.models.client` (cache, limits, budget, retries); this
module only says what a row holds, and where to read recent ones.
"""

from __future__ import annotations

from storage import ledger
from storage.tables import LlmCall, utcnow
from workbench.llm import CallResult


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
        "error": result.error,
        "cached": result.cached,
        "prompt_version_id": prompt_version_id,
        "run_id": run_id,
        "attempts": result.attempts,
    }


def record(result: CallResult, source: str, prompt_version_id: int | None = None, run_id: int | None = None) -> int:
    """Store one call; returns its ledger id."""
    return ledger.insert_call(call_values(result, source, prompt_version_id, run_id))


def recent(limit: int = 50, source: str | None = None) -> list[LlmCall]:
    return ledger.recent(limit, source)
