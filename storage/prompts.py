"""Prompts, their immutable versions and their labels (with the history of every move)."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from storage import core
from storage.db import session
from storage.tables import LabelEvent, Prompt, PromptLabel, PromptVersion, utcnow
from storage.upsert import insert_ignore, retrying, row_values


def _get_or_create(s: Session, name: str, description: str | None) -> Prompt:
    insert_ignore(
        s.connection(), core.table(Prompt), row_values(Prompt(name=name, description=description or "")), ["name"]
    )
    prompt = s.exec(select(Prompt).where(col(Prompt.name) == name)).one()
    if description is not None and description != prompt.description:
        prompt.description = description
        s.add(prompt)
    return prompt


def save_version(name: str, description: str | None, fields: dict) -> tuple[PromptVersion, bool]:
    """Create the prompt if needed and append a version with `fields` (PromptVersion columns, with
    `content_hash`) unless the latest version has the same hash. Safe against concurrent savers."""

    def attempt() -> tuple[PromptVersion, bool]:
        with session() as s:
            prompt = _get_or_create(s, name, description)
            assert prompt.id is not None
            latest = s.exec(
                select(PromptVersion)
                .where(col(PromptVersion.prompt_id) == prompt.id)
                .order_by(col(PromptVersion.version).desc())
            ).first()
            if latest is not None and latest.content_hash == fields["content_hash"]:
                return latest, False
            version = PromptVersion(prompt_id=prompt.id, version=(latest.version + 1) if latest else 1, **fields)
            s.add(version)
            s.flush()
            return version, True

    return retrying(attempt)


def find(name: str) -> Prompt | None:
    with session() as s:
        return s.exec(select(Prompt).where(col(Prompt.name) == name)).first()


def by_id(prompt_id: int) -> Prompt | None:
    with session() as s:
        return s.get(Prompt, prompt_id)


def names() -> list[str]:
    with session() as s:
        return list(s.exec(select(col(Prompt.name))).all())


def listing() -> list[dict]:
    """Each prompt with its version count, latest version and {label: version number}, in two queries."""
    with session() as s:
        rows = s.execute(
            core_select(
                col(Prompt.id),
                col(Prompt.name),
                col(Prompt.description),
                func.count(col(PromptVersion.id)),
                func.max(col(PromptVersion.version)),
            )
            .join(PromptVersion, col(PromptVersion.prompt_id) == col(Prompt.id), isouter=True)
            .group_by(col(Prompt.id), col(Prompt.name), col(Prompt.description))
            .order_by(col(Prompt.name))
        ).all()
        labels: dict[int, dict[str, int]] = {}
        for prompt_id, label, number in s.exec(
            select(col(PromptLabel.prompt_id), col(PromptLabel.label), col(PromptVersion.version)).join(
                PromptVersion, col(PromptVersion.id) == col(PromptLabel.version_id)
            )
        ).all():
            labels.setdefault(prompt_id, {})[label] = number
    return [
        {"name": name, "description": description, "versions": count, "latest": latest, "labels": labels.get(pid, {})}
        for pid, name, description, count, latest in rows
    ]


def versions(prompt_id: int) -> list[PromptVersion]:
    with session() as s:
        return list(
            s.exec(
                select(PromptVersion)
                .where(col(PromptVersion.prompt_id) == prompt_id)
                .order_by(col(PromptVersion.version))
            ).all()
        )


def latest_version(prompt_id: int) -> PromptVersion | None:
    with session() as s:
        return s.exec(
            select(PromptVersion)
            .where(col(PromptVersion.prompt_id) == prompt_id)
            .order_by(col(PromptVersion.version).desc())
        ).first()


def version(prompt_id: int, number: int) -> PromptVersion | None:
    with session() as s:
        return s.exec(
            select(PromptVersion).where(col(PromptVersion.prompt_id) == prompt_id, col(PromptVersion.version) == number)
        ).first()


def version_by_id(version_id: int) -> PromptVersion | None:
    with session() as s:
        return s.get(PromptVersion, version_id)


def versions_by_id(version_ids: list[int]) -> dict[int, PromptVersion]:
    if not version_ids:
        return {}
    with session() as s:
        return {v.id: v for v in s.exec(select(PromptVersion).where(col(PromptVersion.id).in_(version_ids))).all()}


def labels(prompt_id: int) -> dict[str, int]:
    """{label: version number} for one prompt."""
    with session() as s:
        rows = s.exec(
            select(col(PromptLabel.label), col(PromptVersion.version))
            .join(PromptVersion, col(PromptVersion.id) == col(PromptLabel.version_id))
            .where(col(PromptLabel.prompt_id) == prompt_id)
        ).all()
    return {label: number for label, number in rows}


def move_label(prompt_id: int, label: str, version_id: int, author: str, evidence: str) -> bool:
    """Point `label` at `version_id` and record the move; False when it already pointed there.
    Two movers at once: the loser of the label's first insert re-reads and moves it from the winner's."""

    def attempt() -> bool:
        with session() as s:
            current = s.exec(
                select(PromptLabel).where(col(PromptLabel.prompt_id) == prompt_id, col(PromptLabel.label) == label)
            ).first()
            previous_id = current.version_id if current else None
            if previous_id == version_id:
                return False
            if current is None:
                s.add(PromptLabel(prompt_id=prompt_id, label=label, version_id=version_id))
            else:
                current.version_id, current.updated_at = version_id, utcnow()
                s.add(current)
            s.add(
                LabelEvent(
                    prompt_id=prompt_id,
                    label=label,
                    from_version_id=previous_id,
                    to_version_id=version_id,
                    author=author,
                    evidence=evidence,
                )
            )
            s.flush()
            return True

    return retrying(attempt)


def label_events(prompt_id: int) -> list[tuple[LabelEvent, int | None, int]]:
    """The label moves of one prompt, newest first, with the version numbers moved from and to."""
    with session() as s:
        numbers = dict(
            s.exec(
                select(col(PromptVersion.id), col(PromptVersion.version)).where(
                    col(PromptVersion.prompt_id) == prompt_id
                )
            ).all()
        )
        events = s.exec(
            select(LabelEvent).where(col(LabelEvent.prompt_id) == prompt_id).order_by(col(LabelEvent.id).desc())
        ).all()
    return [(e, numbers.get(e.from_version_id), numbers[e.to_version_id]) for e in events]


def counts() -> dict:
    """How many prompts and prompt versions there are (the home page)."""
    with session() as s:
        return {
            "prompts": s.exec(select(func.count()).select_from(Prompt)).one(),
            "versions": s.exec(select(func.count()).select_from(PromptVersion)).one(),
        }


def latest_versions() -> list[tuple[str, PromptVersion]]:
    """(prompt name, its latest version) for every prompt with a version, by name, in one query."""
    newest = (
        select(col(PromptVersion.prompt_id), func.max(col(PromptVersion.version)).label("version"))
        .group_by(col(PromptVersion.prompt_id))
        .subquery()
    )
    with session() as s:
        rows = s.exec(
            select(col(Prompt.name), PromptVersion)
            .join(PromptVersion, col(PromptVersion.prompt_id) == col(Prompt.id))
            .join(
                newest,
                (newest.c.prompt_id == col(PromptVersion.prompt_id)) & (newest.c.version == col(PromptVersion.version)),
            )
            .order_by(col(Prompt.name))
        ).all()
    return [(name, version) for name, version in rows]
