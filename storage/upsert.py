"""Race-free get-or-create, for every table with a natural key.

Two processes registering the same dataset file (or saving the same scorer version) at once
both read "not there" and both insert; the loser used to crash with `UNIQUE constraint failed`.
Names are inserted with `INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL) and read
back, so the loser simply finds the winner's row. Appending a version (number = latest + 1)
cannot be an upsert, because the number depends on what was read: `retrying` runs the whole
transaction again after a conflict, and the second pass reads the winner's version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

T = TypeVar("T")
ATTEMPTS = 8


def _insert(conn: Connection, table: Table):
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for the {conn.dialect.name} dialect")


def insert_ignore(conn: Connection, table: Table, values: dict, keys: list[str]) -> bool:
    """Insert one row unless a row with the same `keys` exists; True when this call inserted it."""
    statement = _insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return bool(conn.execute(statement).rowcount)


def upsert(conn: Connection, table: Table, values: dict, keys: list[str], update: list[str]) -> None:
    """Insert one row, or set the `update` columns of the row with the same `keys` (last writer wins)."""
    statement = _insert(conn, table).values(**values)
    excluded = statement.excluded
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_={name: excluded[name] for name in update}))


def retrying(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `work` (one whole transaction) again when a concurrent writer won a unique key, so the next
    pass reads what the winner wrote. SQLite's "database is locked" after its busy timeout is retried
    too: it only means another writer held the lock for long."""
    for attempt in range(attempts):
        try:
            return work()
        except IntegrityError:
            if attempt == attempts - 1:
                raise
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def row_values(row: Any, exclude: tuple[str, ...] = ("id",)) -> dict:
    """A SQLModel object's column values (defaults filled in by the model) for a Core insert."""
    return {k: v for k, v in row.model_dump().items() if k not in exclude}
