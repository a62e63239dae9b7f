"""The task queue: Huey, with SQLite storage in WORKBENCH_HOME, or Redis for a team.

The queue only carries job keys; what a job is and who executes it lives in the database (the
job's lease row), so a message delivered twice, or lost with a killed worker, is harmless: a
second delivery fails to claim the lease, and a lost one is found by a worker's reaper (an
expired lease) and queued again.
"""

from __future__ import annotations

import os
import threading

from huey import Huey, RedisHuey, SqliteHuey

from workbench.jobs import indexes, kinds, rescore, runs

_hueys: dict[str, Huey] = {}
_tasks: dict[str, object] = {}
_lock = threading.Lock()


def location() -> str:
    """`WORKBENCH_QUEUE_URL` (redis://...) or the SQLite file in WORKBENCH_HOME."""
    url = os.environ.get("WORKBENCH_QUEUE_URL", "")
    if url:
        return url
    from workbench import config

    return str(config.home() / "queue.db")


def huey() -> Huey:
    """The queue for this environment, with the job task registered on it."""
    where = location()
    with _lock:
        if where not in _hueys:
            if where.startswith(("redis://", "rediss://")):
                instance: Huey = RedisHuey("workbench", url=where, results=False)
            else:
                instance = SqliteHuey("workbench", filename=where, results=False)
            _tasks[where] = instance.task(name="job")(run_job)
            _hueys[where] = instance
        return _hueys[where]


def enqueue(key: str) -> None:
    """Put a job on the queue by its key."""
    huey()
    _tasks[location()](key)  # type: ignore[operator]


def run_job(key: str) -> None:
    """Execute the job named by `key` if its lease can be claimed (else another worker has it)."""
    kinds.execute(key)


def submit_index(name: str, source, **options):
    """Record a new `building` index version and queue its build; returns the version."""
    version, key = indexes.prepare(name, source, **options)
    enqueue(key)
    return version


def submit_rescore(run_id: int, configs: list[dict]) -> None:
    """Queue a re-score of a run's stored outputs (ValueError for a bad scorer config, at once)."""
    enqueue(rescore.prepare(run_id, configs))


def submit_run(run_id: int, retry_errors: bool = False) -> None:
    """Queue a run (new, or to resume) for the workers. The UI calls this and returns at once."""
    for key in runs.prepare(run_id, retry_errors):
        enqueue(key)
