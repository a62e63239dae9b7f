"""Saved scorers: named configs with immutable versions."""

from __future__ import annotations

import json

from sqlalchemy import func
from sqlmodel import col, select

from storage.db import session
from storage.tables import Scorer
from storage.upsert import retrying


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def save_version(name: str, type_: str, config: dict, note: str = "") -> tuple[Scorer, bool]:
    """Append a version unless the config equals the latest one. Two processes saving the same new
    config at once both get the one version (the loser of the (name, version) key reads the winner's)."""

    def attempt() -> tuple[Scorer, bool]:
        with session() as s:
            latest = s.exec(select(Scorer).where(col(Scorer.name) == name).order_by(col(Scorer.version).desc())).first()
            if latest is not None and _same(latest.config, config):
                return latest, False
            row = Scorer(name=name, version=(latest.version + 1) if latest else 1, type=type_, config=config, note=note)
            s.add(row)
            s.flush()
            return row, True

    return retrying(attempt)


def latest_each() -> list[Scorer]:
    """The latest version of every saved scorer, by name."""
    newest = (
        select(col(Scorer.name), func.max(col(Scorer.version)).label("version")).group_by(col(Scorer.name)).subquery()
    )
    with session() as s:
        return list(
            s.exec(
                select(Scorer)
                .join(newest, (newest.c.name == col(Scorer.name)) & (newest.c.version == col(Scorer.version)))
                .order_by(col(Scorer.name))
            ).all()
        )


def versions(name: str) -> list[Scorer]:
    with session() as s:
        return list(s.exec(select(Scorer).where(col(Scorer.name) == name).order_by(col(Scorer.version))).all())


def count_rows() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Scorer)).one()
