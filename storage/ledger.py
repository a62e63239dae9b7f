"""Reads over the call ledger that are not the dashboard's (which has its own rollups)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import engine
from storage.tables import LlmCall, Run, Score


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
