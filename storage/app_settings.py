"""App settings: small JSON values by key (the budget, saved judge-quality results)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from storage import core
from storage.db import engine
from storage.tables import AppSetting, utcnow
from storage.upsert import upsert


def get(key: str) -> Any:
    """The value stored under `key`, or None."""
    with engine().connect() as conn:
        return conn.execute(select(col(AppSetting.value)).where(col(AppSetting.key) == key)).scalar()


def put(key: str, value: Any) -> None:
    """Store `value` under `key` (an upsert: concurrent writers both succeed, the last one wins)."""
    with engine().begin() as conn:
        upsert(
            conn,
            core.table(AppSetting),
            {"key": key, "value": value, "updated_at": utcnow()},
            ["key"],
            ["value", "updated_at"],
        )


def update(key: str, change) -> Any:
    """Store `change(current value or None)` under `key` in one transaction (a read-modify-write that
    no concurrent `update` can interleave with: the write lock is taken first); returns the new value."""
    with engine().begin() as conn:
        upsert(
            conn, core.table(AppSetting), {"key": key, "value": None, "updated_at": utcnow()}, ["key"], ["updated_at"]
        )
        current = conn.execute(select(col(AppSetting.value)).where(col(AppSetting.key) == key)).scalar()
        value = change(current)
        conn.execute(core.table(AppSetting).update().where(core.table(AppSetting).c.key == key).values(value=value))
        return value


def delete(key: str) -> None:
    with engine().begin() as conn:
        conn.execute(core.table(AppSetting).delete().where(core.table(AppSetting).c.key == key))
