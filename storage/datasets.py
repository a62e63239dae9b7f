"""Datasets, their immutable versions and their rows."""

from __future__ import annotations

from sqlalchemy import func, insert
from sqlmodel import col, select

from storage import core
from storage.db import session
from storage.tables import Dataset, DatasetRow, DatasetVersion
from storage.upsert import insert_ignore, retrying, row_values

BATCH = 5000


def save_version(
    name: str, description: str | None, fields: dict, keyed_rows: list[tuple[str, dict]]
) -> tuple[DatasetVersion, bool]:
    """Create the dataset if needed and append a version with `fields` (DatasetVersion columns, with
    `content_hash`) and its rows, all in one transaction, unless the latest version has the same hash.
    Two processes registering the same file at once both succeed with one version."""

    def attempt() -> tuple[DatasetVersion, bool]:
        with session() as s:
            insert_ignore(
                s.connection(),
                core.table(Dataset),
                row_values(Dataset(name=name, description=description or "")),
                ["name"],
            )
            dataset = s.exec(select(Dataset).where(col(Dataset.name) == name)).one()
            latest = s.exec(
                select(DatasetVersion)
                .where(col(DatasetVersion.dataset_id) == dataset.id)
                .order_by(col(DatasetVersion.version).desc())
            ).first()
            if latest is not None and latest.content_hash == fields["content_hash"]:
                return latest, False
            version = DatasetVersion(dataset_id=dataset.id, version=(latest.version + 1) if latest else 1, **fields)
            s.add(version)
            s.flush()
            payload = [
                {"dataset_version_id": version.id, "position": i, "row_key": key, "data": row}
                for i, (key, row) in enumerate(keyed_rows)
            ]
            for start in range(0, len(payload), BATCH):
                s.execute(insert(DatasetRow), payload[start : start + BATCH])
            return version, True

    return retrying(attempt)


def listing() -> list[dict]:
    """Each dataset with its latest version (one query: the newest version per dataset)."""
    newest = (
        select(col(DatasetVersion.dataset_id), func.max(col(DatasetVersion.version)).label("version"))
        .group_by(col(DatasetVersion.dataset_id))
        .subquery()
    )
    with session() as s:
        rows = s.exec(
            select(Dataset, DatasetVersion)
            .join(newest, newest.c.dataset_id == col(Dataset.id), isouter=True)
            .join(
                DatasetVersion,
                (col(DatasetVersion.dataset_id) == col(Dataset.id)) & (col(DatasetVersion.version) == newest.c.version),
                isouter=True,
            )
            .order_by(col(Dataset.name))
        ).all()
    return [{"dataset": dataset, "latest": latest} for dataset, latest in rows]


def find(name: str) -> Dataset | None:
    with session() as s:
        return s.exec(select(Dataset).where(col(Dataset.name) == name)).first()


def by_id(dataset_id: int) -> Dataset | None:
    with session() as s:
        return s.get(Dataset, dataset_id)


def versions(dataset_id: int) -> list[DatasetVersion]:
    with session() as s:
        return list(
            s.exec(
                select(DatasetVersion)
                .where(col(DatasetVersion.dataset_id) == dataset_id)
                .order_by(col(DatasetVersion.version))
            ).all()
        )


def version_by_id(version_id: int) -> DatasetVersion | None:
    with session() as s:
        return s.get(DatasetVersion, version_id)


def rows(version_id: int, limit: int | None = None, offset: int = 0) -> list[tuple[str, dict]]:
    """(row_key, data) in order; paginated for big datasets."""
    query = (
        select(col(DatasetRow.row_key), col(DatasetRow.data))
        .where(col(DatasetRow.dataset_version_id) == version_id)
        .order_by(col(DatasetRow.position))
        .offset(offset)
    )
    if limit:
        query = query.limit(limit)
    with session() as s:
        return [(key, data) for key, data in s.exec(query).all()]


def row_ids(version_id: int, limit: int | None = None) -> list[int]:
    query = (
        select(col(DatasetRow.id))
        .where(col(DatasetRow.dataset_version_id) == version_id)
        .order_by(col(DatasetRow.position))
    )
    if limit is not None:
        query = query.limit(limit)
    with session() as s:
        return list(s.exec(query).all())


def row_count(version_id: int) -> int:
    with session() as s:
        return s.exec(
            select(func.count()).select_from(DatasetRow).where(col(DatasetRow.dataset_version_id) == version_id)
        ).one()
