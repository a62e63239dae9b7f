"""Core (SQLAlchemy) handles on the SQLModel tables, typed for mypy (`Model.__table__` is not)."""

from __future__ import annotations

from sqlalchemy import Table


def table(model: type) -> Table:
    found = getattr(model, "__table__", None)
    if not isinstance(found, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return found
