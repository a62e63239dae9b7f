"""A run as jobs: its shards are queued, claimed by lease, executed, and the last one finishes it.

A run is split into `shards` (1 unless `workbench eval --workers N` asked for more) by item id;
each shard is a job keyed `run:<id>:<shard>/<shards>`. Whoever executes a shard — a
`workbench worker` that took it from the queue, or `workbench eval` itself — first claims its
lease, so a shard is executed by one process at a time however often it is queued. When the
last shard of a run is finished, the run's final status is decided from its stored items.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from storage import execution, leases
from storage.tables import utcnow
from workbench import engine, runs
from workbench.errors import WorkbenchError
from workbench.jobs.lease import JobBusy, Lease

ACTIVE = runs.ACTIVE
prefix = runs.job_prefix


def keys(run_id: int, shards: int) -> list[str]:
    return [f"{prefix(run_id)}{shard}/{shards}" for shard in range(shards)]


def parse(key: str) -> tuple[int, int, int]:
    """run:12:0/2 -> (12, 0, 2)"""
    _, run_id, part = key.split(":")
    shard, shards = part.split("/")
    return int(run_id), int(shard), int(shards)


def shards_of(run_id: int) -> int:
    return max(1, int(runs.get_run(run_id).config.get("shards") or 1))


def owner_of(run_id: int) -> str | None:
    """A live worker executing one of the run's shards, if any."""
    holders = leases.holders(prefix(run_id))
    return next(iter(holders.values()), None)


def prepare(run_id: int, retry_errors: bool = False) -> list[str]:
    """Make the run executable again: refuse when a live worker holds it, reset errors if asked,
    and record its shards as queued jobs. Returns the shard keys."""
    owner = owner_of(run_id)
    if owner:
        raise WorkbenchError(f"Run {run_id} is being executed by {owner}; wait for it or cancel it first.")
    run = runs.get_run(run_id)
    if run.status == "cancelling":
        runs.mark(run_id, status="cancelled", finished_at=utcnow())
        raise WorkbenchError(f"Run {run_id} was cancelled.")
    if retry_errors:
        execution.reset_errors(run_id)
    execution.clear_reservations(run_id)  # nobody holds it: no call of it is in flight
    shard_keys = keys(run_id, shards_of(run_id))
    leases.drop(prefix(run_id))
    for key in shard_keys:
        leases.queue(key)
    runs.mark(run_id, status="queued", finished_at=None, error=None)
    return shard_keys


def execute_key(
    key: str,
    *,
    on_progress: Callable[[dict], None] | None = None,
    stop: threading.Event | None = None,
    keep_queued_on_stop: bool = True,
) -> str | None:
    """Claim one shard and execute it. Returns the engine's stop reason (None: ran out of items),
    or raises JobBusy when another live worker holds the shard. A shard stopped by a shutdown
    stays queued for the next worker unless `keep_queued_on_stop` is False (an interrupted
    `workbench eval`: the user stopped it, nothing should resume it behind their back)."""
    run_id, shard, shards = parse(key)
    stop = stop or threading.Event()
    cancel = threading.Event()

    def on_beat() -> None:
        if execution.beat(run_id) in ("cancelling", "cancelled"):
            cancel.set()
            stop.set()

    lease = Lease(key, on_beat=on_beat).claim()
    reason: str | None = "stopped"
    with lease:
        run = runs.get_run(run_id)
        if run.status in ("cancelling", "cancelled"):
            lease.finished = True
            reason = "cancelled"
        else:
            runs.mark(run_id, status="running", started_at=run.started_at or utcnow(), worker=lease.owner)
            watch = threading.Thread(target=_forward, args=(lease.lost, stop), daemon=True)
            watch.start()
            try:
                reason = asyncio.run(engine.execute_shard(run_id, shard, shards, stop=stop, on_progress=on_progress))
            except Exception as exc:  # recorded on the run (errors are data); the shard is given up
                logging.getLogger("workbench.jobs").exception("run %s shard %s failed", run_id, key)
                runs.mark(run_id, error=f"{type(exc).__name__}: {exc}")
                reason = "failed"
            finally:
                if cancel.is_set():
                    reason = "cancelled"
                lease.finished = reason != "stopped" or not keep_queued_on_stop
                stop.set()  # ends the watcher
    if reason == "budget_exceeded":
        runs.mark(run_id, status="budget_exceeded")
    finalize(run_id)
    return reason


def _forward(source: threading.Event, target: threading.Event) -> None:
    """Set `target` once `source` is set (a lost lease stops the shard), or when target is set."""
    while not target.is_set():
        if source.wait(0.2):
            target.set()


def execute(
    run_id: int,
    *,
    on_progress: Callable[[dict], None] | None = None,
    stop: threading.Event | None = None,
    keep_queued_on_stop: bool = False,
) -> str:
    """Execute every shard of the run this process can claim, one after another (a shard another
    worker holds is left to it), and return the run's status afterwards."""
    for key in leases.pending(prefix(run_id)):
        if stop is not None and stop.is_set():
            break
        try:
            execute_key(key, on_progress=on_progress, stop=stop, keep_queued_on_stop=keep_queued_on_stop)
        except JobBusy:
            continue
    return runs.get_run(run_id).status


def finalize(run_id: int) -> str | None:
    """Once no shard of the run is left to execute, decide its final status from its items."""
    if leases.pending(prefix(run_id)):
        return None
    run = runs.get_run(run_id)
    p = runs.progress(run_id)
    if run.status in ("cancelling", "cancelled"):
        final = "cancelled"
    elif run.status == "budget_exceeded" and p["remaining"]:
        final = "budget_exceeded"
    elif p["remaining"]:
        final = "interrupted"
    elif p["done"] == 0 and p["failed"] > 0:
        final = "failed"
    else:
        final = "done"
    runs.mark(run_id, status=final, finished_at=utcnow(), heartbeat_at=utcnow())
    execution.clear_reservations(run_id)
    _refresh_rollups()
    return final


def _refresh_rollups() -> None:
    """Fold the run's calls into the dashboard's rollups now, so reading them never has to."""
    from storage import dashboard_queries

    dashboard_queries.refresh()


def run_now(run_id: int, *, retry_errors: bool = False, on_progress: Callable[[dict], None] | None = None) -> str:
    """Queue the run's shards and execute them in this process, as a worker would (tests, the
    CLI's single-process path). Returns the run's final status."""
    prepare(run_id, retry_errors)
    return execute(run_id, on_progress=on_progress)
