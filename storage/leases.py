"""Job leases: who executes a job and until when.

A job (a run shard, an index build, ...) has a row in `job_lease` from the moment it is queued
until it is finished. A worker executes it only after claiming the row with one conditional
UPDATE (compare-and-set): the row is unowned, already its own, or its lease has expired. Two
claimants can therefore never both hold it, and a job the queue delivers twice is harmless.
The holder renews `lease_until` from a heartbeat; a dead holder's lease simply runs out and the
next claimant continues. Finished jobs delete their row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage.db import engine
from storage.tables import JobLease

UNOWNED = ""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def queue(key: str) -> None:
    """Record a job as queued (unowned, lease expired). Re-queuing a live job leaves its holder alone."""
    now = _now()
    try:
        with engine().begin() as conn:
            conn.execute(
                insert(JobLease).values(key=key, owner=UNOWNED, lease_until=EPOCH, claimed_at=now, heartbeat_at=EPOCH)
            )
    except IntegrityError:
        with engine().begin() as conn:  # already queued or running: only mark when it was queued
            conn.execute(update(JobLease).where(col(JobLease.key) == key).values(claimed_at=now))


def claim(key: str, owner: str, seconds: float) -> tuple[bool, str]:
    """Try to own `key` for `seconds`; returns (won, the holder). Creates the row when missing."""
    now = _now()
    until = now + timedelta(seconds=seconds)
    values = {"owner": owner, "lease_until": until, "heartbeat_at": now}
    with engine().begin() as conn:
        won = conn.execute(
            update(JobLease)
            .where(
                col(JobLease.key) == key,
                (col(JobLease.owner) == owner) | (col(JobLease.owner) == UNOWNED) | (col(JobLease.lease_until) < now),
            )
            .values(claimed_at=now, **values)
        ).rowcount
    if won:
        return True, owner
    try:
        with engine().begin() as conn:
            conn.execute(insert(JobLease).values(key=key, claimed_at=now, **values))
        return True, owner
    except IntegrityError:
        return False, holder(key) or UNOWNED


def renew(key: str, owner: str, seconds: float) -> bool:
    """Extend the lease; False when it is no longer ours (expired and taken, or released)."""
    now = _now()
    with engine().begin() as conn:
        return bool(
            conn.execute(
                update(JobLease)
                .where(col(JobLease.key) == key, col(JobLease.owner) == owner)
                .values(lease_until=now + timedelta(seconds=seconds), heartbeat_at=now)
            ).rowcount
        )


def release(key: str, owner: str, finished: bool) -> None:
    """Give the job up: delete it when finished, else leave it queued for the next claimant."""
    with engine().begin() as conn:
        if finished:
            conn.execute(delete(JobLease).where(col(JobLease.key) == key, col(JobLease.owner) == owner))
        else:
            conn.execute(
                update(JobLease)
                .where(col(JobLease.key) == key, col(JobLease.owner) == owner)
                .values(owner=UNOWNED, lease_until=EPOCH)
            )


def drop(prefix: str) -> int:
    """Forget every job whose key starts with `prefix` (a cancelled run's shards)."""
    with engine().begin() as conn:
        return conn.execute(delete(JobLease).where(col(JobLease.key).startswith(prefix))).rowcount


def holder(key: str) -> str | None:
    """The live owner of `key`, or None when nobody holds a valid lease."""
    with engine().connect() as conn:
        row = conn.execute(
            select(col(JobLease.owner), col(JobLease.lease_until)).where(col(JobLease.key) == key)
        ).first()
    if row is None or row.owner == UNOWNED or _aware(row.lease_until) < _now():
        return None
    return row.owner


def holders(prefix: str) -> dict[str, str]:
    """Live owners of the jobs under `prefix`, by key."""
    now = _now()
    with engine().connect() as conn:
        rows = conn.execute(
            select(col(JobLease.key), col(JobLease.owner), col(JobLease.lease_until)).where(
                col(JobLease.key).startswith(prefix)
            )
        ).all()
    return {r.key: r.owner for r in rows if r.owner != UNOWNED and _aware(r.lease_until) >= now}


def pending(prefix: str) -> list[str]:
    """Keys under `prefix` that are still to do (queued, running or abandoned)."""
    with engine().connect() as conn:
        return list(conn.execute(select(col(JobLease.key)).where(col(JobLease.key).startswith(prefix))).scalars())


def orphans(grace_seconds: float) -> list[str]:
    """Jobs nobody is executing: a lease that was held and ran out or was given back unfinished,
    or a job queued more than `grace_seconds` ago and never claimed (its queue message was lost).
    Each key is returned to one caller only: the caller whose compare-and-set marks it as queued
    again (claimed_at = now) re-enqueues it."""
    now = _now()
    cutoff = now - timedelta(seconds=grace_seconds)
    with engine().connect() as conn:
        rows = conn.execute(
            select(col(JobLease.key), col(JobLease.claimed_at)).where(
                col(JobLease.lease_until) < now,
                (col(JobLease.heartbeat_at) > EPOCH) | (col(JobLease.claimed_at) < cutoff),
            )
        ).all()
    taken = []
    with engine().begin() as conn:
        for key, claimed_at in rows:
            marked = conn.execute(
                update(JobLease)
                .where(
                    col(JobLease.key) == key, col(JobLease.claimed_at) == claimed_at, col(JobLease.lease_until) < now
                )
                .values(claimed_at=now, owner=UNOWNED, lease_until=EPOCH, heartbeat_at=EPOCH)
            ).rowcount
            if marked:
                taken.append(key)
    return taken
