"""Custom model prices (USD per 1M tokens), and re-pricing past calls."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import col

from storage import core, dashboard_queries
from storage.db import engine, session
from storage.tables import LlmCall, ModelPrice, utcnow
from storage.upsert import upsert


def all_prices() -> dict[str, tuple[float, float]]:
    with engine().connect() as conn:
        rows = conn.execute(
            select(col(ModelPrice.model), col(ModelPrice.input_per_million), col(ModelPrice.output_per_million))
        )
        return {model: (float(i), float(o)) for model, i, o in rows}


def set_price(model: str, input_per_million: float, output_per_million: float) -> None:
    """Insert or overwrite one model's price (an upsert: two writers at once both succeed, the last wins)."""
    values = {
        "model": model,
        "input_per_million": input_per_million,
        "output_per_million": output_per_million,
        "updated_at": utcnow(),
    }
    with engine().begin() as conn:
        upsert(
            conn, core.table(ModelPrice), values, ["model"], ["input_per_million", "output_per_million", "updated_at"]
        )


def listing() -> list[ModelPrice]:
    with session() as s:
        return list(s.exec(select(ModelPrice).order_by(col(ModelPrice.model))).scalars())


def delete_price(model: str) -> bool:
    with engine().begin() as conn:
        return bool(conn.execute(delete(ModelPrice).where(col(ModelPrice.model) == model)).rowcount)


def reprice(model: str, price: tuple[float, float] | None) -> int:
    """Set the cost of `model`'s billed calls from their tokens at `price` (None: unpriced) in one UPDATE,
    and rebuild that model's spend rollups in the same transaction; returns the rows updated.
    Cache hits stay at 0 and failed calls stay unpriced: neither was billed."""
    tokens = func.coalesce(col(LlmCall.input_tokens), 0), func.coalesce(col(LlmCall.output_tokens), 0)
    cost = (tokens[0] * price[0] + tokens[1] * price[1]) / 1_000_000 if price else None
    with engine().begin() as conn:
        updated = conn.execute(
            update(LlmCall)
            .where(
                and_(
                    col(LlmCall.model) == model,
                    col(LlmCall.cached).is_(False),
                    col(LlmCall.error_type).is_(None),
                    or_(col(LlmCall.input_tokens).is_not(None), col(LlmCall.output_tokens).is_not(None)),
                )
            )
            .values(cost_usd=cost)
        ).rowcount
        dashboard_queries.rebuild_model(conn, model)
    return updated
