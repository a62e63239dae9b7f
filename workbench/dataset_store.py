"""Stored datasets: named, with immutable versions whose rows keep stable keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import select

from storage.db import session
from storage.tables import Dataset, DatasetRow, DatasetVersion
from workbench import config
from workbench.errors import NotFound, WorkbenchError


def _content_hash(columns: list[str], keys: list[str], rows: list[dict]) -> str:
    body = json.dumps({"columns": columns, "rows": list(zip(keys, rows))}, sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def save_version(name: str, parsed, note: str = "", source_filename: str = "", description: str | None = None,
                 author: str | None = None) -> tuple[DatasetVersion, bool]:
    """Append a version (all rows in one transaction); unchanged content returns the latest, created=False."""
    from workbench.datasets import row_keys

    name = (name or "").strip()
    if not name or "@" in name:
        raise WorkbenchError("Give the dataset a name (without '@').")
    if not parsed.rows:
        raise WorkbenchError("The dataset has no rows.")
    keys = row_keys(parsed.columns, parsed.rows)
    digest = _content_hash(parsed.columns, keys, parsed.rows)
    with session() as s:
        dataset = s.exec(select(Dataset).where(Dataset.name == name)).first()
        if dataset is None:
            dataset = Dataset(name=name, description=description or "")
            s.add(dataset)
            s.flush()
        latest = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                        .order_by(DatasetVersion.version.desc())).first()
        if latest is not None and latest.content_hash == digest:
            return latest, False
        version = DatasetVersion(
            dataset_id=dataset.id, version=(latest.version + 1) if latest else 1, columns=list(parsed.columns),
            column_types=dict(parsed.column_types), row_count=len(parsed.rows), content_hash=digest,
            source_filename=source_filename, note=note, author=author or config.author(),
        )
        s.add(version)
        s.flush()
        payload = [{"dataset_version_id": version.id, "position": i, "row_key": key, "data": row}
                   for i, (key, row) in enumerate(zip(keys, parsed.rows))]
        for start in range(0, len(payload), 5000):
            s.execute(insert(DatasetRow), payload[start:start + 5000])
        return version, True


def list_datasets() -> list[dict]:
    with session() as s:
        out = []
        for dataset in s.exec(select(Dataset).order_by(Dataset.name)).all():
            latest = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                            .order_by(DatasetVersion.version.desc())).first()
            out.append({"name": dataset.name, "description": dataset.description,
                        "versions": latest.version if latest else 0, "rows": latest.row_count if latest else 0,
                        "columns": ", ".join(latest.columns) if latest else ""})
        return out


def versions(name: str) -> list[DatasetVersion]:
    with session() as s:
        dataset = s.exec(select(Dataset).where(Dataset.name == name)).first()
        if dataset is None:
            raise NotFound(f"No dataset named {name!r}.")
        return list(s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                           .order_by(DatasetVersion.version)).all())


def get_version(name: str, version: int | None = None) -> DatasetVersion:
    found = versions(name)
    if version is None:
        return found[-1]
    for v in found:
        if v.version == version:
            return v
    raise NotFound(f"Dataset {name!r} has no version {version}.")


def version_by_id(version_id: int) -> DatasetVersion:
    with session() as s:
        found = s.get(DatasetVersion, version_id)
        if found is None:
            raise NotFound(f"No dataset version {version_id}.")
        return found


def label_of(version: DatasetVersion) -> str:
    with session() as s:
        return f"{s.get(Dataset, version.dataset_id).name}@{version.version}"


def rows(version_id: int, limit: int | None = None, offset: int = 0) -> list[tuple[str, dict]]:
    """(row_key, data) in order; paginated for big datasets."""
    with session() as s:
        query = (select(DatasetRow.row_key, DatasetRow.data).where(DatasetRow.dataset_version_id == version_id)
                 .order_by(DatasetRow.position).offset(offset))
        if limit:
            query = query.limit(limit)
        return [(key, data) for key, data in s.exec(query).all()]


def row_count(version_id: int) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(DatasetRow)
                      .where(DatasetRow.dataset_version_id == version_id)).one()


def resolve_for_run(ref: str, base_dir: str | None = None) -> DatasetVersion:
    """A file path (registered as a dataset named after the file, idempotently) or `name[@version]`."""
    from workbench.datasets import parse_dataset

    candidates = [Path(ref)] + ([Path(base_dir) / ref] if base_dir else []) + [config.REPO_ROOT / ref]
    path = next((p for p in candidates if p.is_file()), None)
    if path is not None:
        parsed = parse_dataset(path.read_bytes(), path.name)
        version, _ = save_version(path.stem, parsed, note=f"from {path.name}", source_filename=path.name)
        return version
    name, _, number = ref.partition("@")
    try:
        return get_version(name.strip(), int(number) if number.strip() else None)
    except ValueError:
        raise WorkbenchError(f"Dataset version must be a number: {ref!r}") from None
    except NotFound:
        raise WorkbenchError(f"Dataset {ref!r} is neither a file nor a stored dataset.") from None


def prompt_coverage(columns: list[str]) -> list[dict]:
    """For each prompt's latest version: does a dataset with these columns satisfy its variables?"""
    from workbench import prompts

    out = []
    for entry in prompts.list_prompts():
        version = prompts.get_version(entry["name"], entry["latest"])
        missing = [v for v in version.variables if v not in columns]
        out.append({"prompt": entry["name"], "version": version.version, "variables": ", ".join(version.variables),
                    "ok": not missing, "missing": ", ".join(missing)})
    return out


def from_records(columns: list[str], records: list[dict]):
    """Rows edited in the UI table back into a ParsedDataset (blank rows dropped, NaN as empty)."""
    import math

    from workbench.datasets import parse_pasted

    clean = []
    for record in records:
        row = {c: ("" if (isinstance(v, float) and math.isnan(v)) or v is None else v)
               for c, v in record.items() if c in columns}
        if any(str(v).strip() for v in row.values()):
            clean.append(row)
    lines = "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in clean)
    return parse_pasted(lines)
