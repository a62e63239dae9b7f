"""The call ledger's queries: one row per model call, the cache that is the ledger itself, and
reads over it that are not the dashboard's (which has its own rollups).

A cached reply is a successful call (no error type) that was itself made, not served from the
cache, with the same request hash. Failed calls are recorded but never served.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlmodel import col

from storage.db import engine, session
from storage.tables import LlmCall, Run, Score

CHUNK = 500


def cached_call(digest: str) -> LlmCall | None:
    """The newest successful, non-cached call with this request hash."""
    with session() as s:
        return (
            s.query(LlmCall)
            .filter(
                col(LlmCall.request_hash) == digest, col(LlmCall.error_type).is_(None), col(LlmCall.cached).is_(False)
            )
            .order_by(col(LlmCall.id).desc())
            .first()
        )


def cached_replies(digests: set[str]) -> dict[str, dict]:
    """Output and token counts of successful, non-cached calls by request hash, fetched in chunks."""
    found: dict[str, dict] = {}
    wanted = list(digests)
    with engine().connect() as conn:
        for start in range(0, len(wanted), CHUNK):
            rows = conn.execute(
                select(
                    col(LlmCall.request_hash),
                    col(LlmCall.output),
                    col(LlmCall.input_tokens),
                    col(LlmCall.output_tokens),
                ).where(
                    col(LlmCall.request_hash).in_(wanted[start : start + CHUNK]),
                    col(LlmCall.error_type).is_(None),
                    col(LlmCall.cached).is_(False),
                )
            )
            for row in rows:
                found[row.request_hash] = {
                    "output": row.output,
                    "input_tokens": row.input_tokens,
                    "output_tokens": row.output_tokens,
                }
    return found


def insert_call(values: dict) -> int:
    """Record one call; returns its id."""
    with engine().begin() as conn:
        call_id = conn.execute(insert(LlmCall).returning(col(LlmCall.id)), [values]).scalar_one()
    assert call_id is not None
    return call_id


def recent(limit: int = 50, source: str | None = None) -> list[LlmCall]:
    with session() as s:
        query = s.query(LlmCall)
        if source:
            query = query.filter(col(LlmCall.source) == source)
        return list(query.order_by(col(LlmCall.id).desc()).limit(limit).all())


def totals() -> dict:
    """How many calls there are and what they cost in all."""
    with engine().connect() as conn:
        calls, spend = conn.execute(select(func.count(), func.coalesce(func.sum(col(LlmCall.cost_usd)), 0.0))).one()
    return {"calls": calls, "spend_usd": float(spend or 0.0)}


def stamp() -> tuple:
    """What changes whenever a figure computed from calls, runs or scores can change: the database,
    the newest call, score and run, and the latest heartbeat and finish of any run. Cheap (maxima on
    keys and a small table), so pages can key cached reads on it."""
    with engine().connect() as conn:
        calls = conn.execute(select(func.max(col(LlmCall.id)))).scalar()
        scores = conn.execute(select(func.max(col(Score.id)))).scalar()
        runs = conn.execute(
            select(func.max(col(Run.id)), func.max(col(Run.heartbeat_at)), func.max(col(Run.finished_at)))
        ).one()
    return (str(engine().url), calls, scores, *[str(value) for value in runs])
