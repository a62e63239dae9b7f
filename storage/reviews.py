"""Review queues, their items and the labels people give them: every query the review feature makes.

Labels are append-only: `add_labels` inserts, nothing updates or deletes a label, and "the current
label" of a reviewer on an item is their newest row. A batch of labels (an import) is one
transaction, so it lands whole or not at all.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import engine, session
from storage.tables import ReviewItem, ReviewLabel, ReviewQueue, Run, RunItem, Score, Scorer


def create_queue(queue: ReviewQueue, items: list[dict], labels: list[list[dict]] | None = None) -> ReviewQueue:
    """The queue and all its items (and, for sample data, their labels: ReviewLabel fields per item)
    in one transaction; `items` are ReviewItem fields."""
    with session() as s:
        s.add(queue)
        s.flush()
        for position, fields in enumerate(items):
            item = ReviewItem(queue_id=int(queue.id or 0), position=position, **fields)
            s.add(item)
            if labels and labels[position]:
                s.flush()
                s.add_all(ReviewLabel(item_id=int(item.id or 0), **given) for given in labels[position])
        return queue


def queue_by_name(name: str) -> ReviewQueue | None:
    with session() as s:
        return s.exec(select(ReviewQueue).where(col(ReviewQueue.name) == name)).scalars().first()  # type: ignore[call-overload]


def queue_by_id(queue_id: int) -> ReviewQueue | None:
    with session() as s:
        return s.get(ReviewQueue, queue_id)


def list_queues() -> list[dict]:
    """Every queue with its item count and how many items have at least one label."""
    labelled = (
        select(col(ReviewItem.queue_id), func.count(func.distinct(col(ReviewLabel.item_id))).label("labelled"))
        .join(ReviewLabel, col(ReviewLabel.item_id) == col(ReviewItem.id))
        .where(col(ReviewLabel.skipped).is_(False))
        .group_by(col(ReviewItem.queue_id))
        .subquery()
    )
    counts = (
        select(col(ReviewItem.queue_id), func.count().label("n_items")).group_by(col(ReviewItem.queue_id)).subquery()
    )
    query = (
        select(ReviewQueue, func.coalesce(counts.c.n_items, 0), func.coalesce(labelled.c.labelled, 0))
        .join(counts, counts.c.queue_id == col(ReviewQueue.id), isouter=True)
        .join(labelled, labelled.c.queue_id == col(ReviewQueue.id), isouter=True)
        .order_by(col(ReviewQueue.id).desc())
    )
    with session() as s:
        rows = s.exec(query).all()  # type: ignore[call-overload]
    return [
        {
            "id": q.id,
            "name": q.name,
            "kind": q.kind,
            "run_id": q.run_id,
            "items": int(items),
            "labelled": int(done),
            "created": q.created_at,
        }
        for q, items, done in rows
    ]


def update_rubric(queue_id: int, rubric: dict) -> int:
    """A new rubric version for the queue; returns its number."""
    with session() as s:
        queue = s.get(ReviewQueue, queue_id)
        if queue is None:
            raise LookupError(f"no review queue {queue_id}")
        queue.rubric = dict(rubric)
        queue.rubric_version += 1
        s.add(queue)
        return queue.rubric_version


def items(queue_id: int) -> list[ReviewItem]:
    with session() as s:
        query = select(ReviewItem).where(col(ReviewItem.queue_id) == queue_id).order_by(col(ReviewItem.position))
        return list(s.exec(query).scalars().all())  # type: ignore[call-overload]


def add_labels(labels: list[ReviewLabel]) -> int:
    """Insert labels in one transaction (all or none)."""
    with session() as s:
        s.add_all(labels)
    return len(labels)


def labels(queue_id: int, reviewer: str | None = None, latest_only: bool = True) -> list[ReviewLabel]:
    """The queue's labels, oldest first; with `latest_only` each reviewer's newest label per item."""
    query = (
        select(ReviewLabel)
        .join(ReviewItem, col(ReviewItem.id) == col(ReviewLabel.item_id))
        .where(col(ReviewItem.queue_id) == queue_id)
        .order_by(col(ReviewLabel.id))
    )
    if reviewer is not None:
        query = query.where(col(ReviewLabel.reviewer) == reviewer)
    with session() as s:
        found = list(s.exec(query).scalars().all())  # type: ignore[call-overload]
    if not latest_only:
        return found
    newest: dict[tuple[int, str], ReviewLabel] = {}
    for label in found:
        newest[(label.item_id, label.reviewer)] = label
    return sorted(newest.values(), key=lambda label: label.id or 0)


def labelled_run_items(scorer_name: str | None = None) -> list[int]:
    """Run items some queue holds (optionally only those with a score from `scorer_name`)."""
    query = select(func.distinct(col(ReviewItem.run_item_id))).where(col(ReviewItem.run_item_id).is_not(None))
    if scorer_name is not None:
        query = query.join(Score, col(Score.run_item_id) == col(ReviewItem.run_item_id)).where(
            col(Score.scorer_name) == scorer_name
        )
    with engine().connect() as conn:
        return [int(i) for i in conn.execute(query).scalars().all()]


def scores_for_items(run_item_ids: list[int]) -> dict[int, dict[str, dict]]:
    """{run_item_id: {scorer_name: {value, passed, error}}} as stored now."""
    out: dict[int, dict[str, dict]] = {}
    if not run_item_ids:
        return out
    query = select(
        col(Score.run_item_id), col(Score.scorer_name), col(Score.value), col(Score.passed), col(Score.error)
    ).where(col(Score.run_item_id).in_(run_item_ids))
    with engine().connect() as conn:
        for item_id, name, value, passed, error in conn.execute(query).all():
            out.setdefault(item_id, {})[name] = {"value": value, "passed": passed, "error": error}
    return out


def run_of_item(run_item_id: int) -> int | None:
    with engine().connect() as conn:
        return conn.execute(select(col(RunItem.run_id)).where(col(RunItem.id) == run_item_id)).scalar()


def run_config(run_id: int) -> dict:
    with session() as s:
        run = s.get(Run, run_id)
        return dict(run.config) if run is not None else {}


def scorer_configs(name: str) -> list[dict]:
    """Saved versions' configs of a scorer name, newest first (to find a judge's scale)."""
    query = select(col(Scorer.config)).where(col(Scorer.name) == name).order_by(col(Scorer.version).desc())
    with engine().connect() as conn:
        return [dict(c) for c in conn.execute(query).scalars().all()]


def all_labelled_queue_ids() -> list[int]:
    query = (
        select(func.distinct(col(ReviewItem.queue_id)))
        .join(ReviewLabel, col(ReviewLabel.item_id) == col(ReviewItem.id))
        .order_by(col(ReviewItem.queue_id))
    )
    with engine().connect() as conn:
        return [int(i) for i in conn.execute(query).scalars().all()]


def stamp() -> tuple[int, int]:
    """(newest label id, newest score id): what calibration figures depend on, for page caches."""
    with engine().connect() as conn:
        label_id = conn.execute(select(func.max(col(ReviewLabel.id)))).scalar() or 0
        score_id = conn.execute(select(func.max(col(Score.id)))).scalar() or 0
    return int(label_id), int(score_id)
