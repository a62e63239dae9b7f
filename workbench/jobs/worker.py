"""`workbench worker`: a Huey consumer that executes jobs, plus a reaper for orphaned jobs.

The reaper runs in every worker process: every few seconds it takes the jobs nobody executes
(an expired lease, a job given back unfinished at a shutdown, a queued job whose message was
lost) and queues them again. Taking is a compare-and-set, so several reapers never queue one
job twice in the same round.
"""

from __future__ import annotations

import logging
import os
import threading
import time

REAP_EVERY_S = 2.0
QUEUED_GRACE_S = 60.0  # a queued job no worker has claimed in this long has lost its message

_reaper_started = False
_reaper_lock = threading.Lock()


def reap_once() -> list[str]:
    """Queue again every orphaned job; returns their keys."""
    from storage import leases
    from workbench.jobs import queue

    keys = leases.orphans(QUEUED_GRACE_S)
    for key in keys:
        queue.enqueue(key)
    return keys


def _reap_forever() -> None:
    log = logging.getLogger("workbench.worker")
    while True:
        try:
            for key in reap_once():
                log.info("re-queued orphaned job %s", key)
        except Exception as exc:  # a locked or briefly missing database: next round
            log.warning("reaper: %s", exc)
        time.sleep(REAP_EVERY_S)


def start_reaper() -> None:
    global _reaper_started
    with _reaper_lock:
        if not _reaper_started:
            threading.Thread(target=_reap_forever, name="reaper", daemon=True).start()
            _reaper_started = True


def run(workers: int = 1) -> None:
    """Consume jobs until stopped (SIGINT waits for running jobs, SIGTERM stops at once)."""
    from storage import db
    from workbench.jobs import queue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    huey = queue.huey()

    @huey.on_startup()
    def fresh_process() -> None:
        db.dispose_all(close=False)  # a forked worker must not share its parent's connections
        start_reaper()

    worker_type = "process" if workers > 1 else "thread"
    consumer = huey.create_consumer(
        workers=workers,
        worker_type=worker_type,
        periodic=False,
        initial_delay=0.05,
        max_delay=0.5,
        check_worker_health=True,
    )
    logging.getLogger("workbench.worker").info(
        "worker pid %s: %d %s worker(s) on %s", os.getpid(), workers, worker_type, queue.location()
    )
    try:
        consumer.run()
    finally:
        from workbench import local_server

        local_server.stop(owned_only=True)  # the embedded model's server, if this worker started it


def drain() -> int:
    """Execute every job waiting in the queue in this process, then return how many ran
    (`workbench worker --drain`, and tests that play the worker)."""
    from workbench.jobs import queue

    huey = queue.huey()
    ran = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        ran += 1
    return ran
