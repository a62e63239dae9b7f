"""Reads over the call ledger that are not the dashboard's (which has its own rollups)."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.db import engine
from storage.tables import LlmCall


def totals() -> dict:
    """How many calls there are and what they cost in all."""
    with engine().connect() as conn:
        calls, spend = conn.execute(select(func.count(), func.coalesce(func.sum(LlmCall.cost_usd), 0.0))).one()
    return {"calls": calls, "spend_usd": float(spend)}
