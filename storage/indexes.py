"""RAG indexes and their immutable versions (builds)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlmodel import col

from storage import core
from storage.db import session
from storage.tables import RagIndex, RagIndexVersion
from storage.upsert import insert_ignore, retrying, row_values


def start_version(name: str, make: Callable[[int, int], RagIndexVersion]) -> RagIndexVersion:
    """Create the index if needed and insert the next version, `make(index id, number)`. Two builds
    started at once get consecutive numbers (the loser of a number retries with the next one)."""

    def attempt() -> RagIndexVersion:
        with session() as s:
            insert_ignore(s.connection(), core.table(RagIndex), row_values(RagIndex(name=name)), ["name"])
            index = s.exec(select(RagIndex).where(col(RagIndex.name) == name)).scalars().one()
            latest = (
                s.exec(
                    select(col(RagIndexVersion.version))
                    .where(col(RagIndexVersion.index_id) == index.id)
                    .order_by(col(RagIndexVersion.version).desc())
                )
                .scalars()
                .first()
            )
            assert index.id is not None
            version = make(index.id, (latest or 0) + 1)
            s.add(version)
            s.flush()
            return version

    return retrying(attempt)


def change_version(version_id: int, change: Callable[[RagIndexVersion], None]) -> RagIndexVersion | None:
    """Apply `change` to the stored version in one transaction; returns it (None when there is none)."""
    with session() as s:
        version = s.get(RagIndexVersion, version_id)
        if version is None:
            return None
        change(version)
        s.add(version)
        return version


def find(name: str) -> RagIndex | None:
    with session() as s:
        return s.exec(select(RagIndex).where(col(RagIndex.name) == name)).scalars().first()


def by_id(index_id: int) -> RagIndex | None:
    with session() as s:
        return s.get(RagIndex, index_id)


def version_by_id(version_id: int) -> RagIndexVersion | None:
    with session() as s:
        return s.get(RagIndexVersion, version_id)


def versions(index_id: int, newest_first: bool = False) -> list[RagIndexVersion]:
    order = col(RagIndexVersion.version).desc() if newest_first else col(RagIndexVersion.version)
    with session() as s:
        return list(
            s.exec(select(RagIndexVersion).where(col(RagIndexVersion.index_id) == index_id).order_by(order)).scalars()
        )


def version(index_id: int, number: int) -> RagIndexVersion | None:
    with session() as s:
        return (
            s.exec(
                select(RagIndexVersion).where(
                    col(RagIndexVersion.index_id) == index_id, col(RagIndexVersion.version) == number
                )
            )
            .scalars()
            .first()
        )


def latest_ready(index_id: int, below: int | None = None) -> list[RagIndexVersion]:
    """The ready versions of an index, newest first (only those numbered below `below` if given)."""
    query = select(RagIndexVersion).where(
        col(RagIndexVersion.index_id) == index_id, col(RagIndexVersion.status) == "ready"
    )
    if below is not None:
        query = query.where(col(RagIndexVersion.version) < below)
    with session() as s:
        return list(s.exec(query.order_by(col(RagIndexVersion.version).desc())).scalars())


def listing() -> list[tuple[RagIndex, list[RagIndexVersion]]]:
    """Every index by name with its versions, newest first (two queries)."""
    with session() as s:
        indexes = list(s.exec(select(RagIndex).order_by(col(RagIndex.name))).scalars())
        rows = list(
            s.exec(
                select(RagIndexVersion).order_by(col(RagIndexVersion.index_id), col(RagIndexVersion.version).desc())
            ).scalars()
        )
    by_index: dict[int, list[RagIndexVersion]] = {}
    for row in rows:
        by_index.setdefault(row.index_id, []).append(row)
    return [(index, by_index.get(index.id or 0, [])) for index in indexes]
