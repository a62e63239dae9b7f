"""A re-score as a job: a worker scores a run's stored outputs with new or changed scorers.

The scorer configs travel beside the job key (in `app_setting`, under `job:<key>`), not in the
queue message, so a job the reaper queues again still finds them. Nothing calls the model that
produced the outputs; judge scorers do call their judge, through the one call path.
"""

from __future__ import annotations

import uuid

from storage import app_settings, leases
from workbench.jobs.lease import Lease
from workbench.scoring import apply


def prefix(run_id: int) -> str:
    return f"rescore:{run_id}:"


def prepare(run_id: int, configs: list[dict]) -> str:
    """Validate the scorers (a bad config raises ValueError before anything is queued) and record
    the job; returns its key."""
    apply.prepare(configs)
    key = f"{prefix(run_id)}{uuid.uuid4().hex[:10]}"
    app_settings.put(f"job:{key}", {"run_id": run_id, "scorers": configs})
    leases.queue(key)
    return key


def execute_key(key: str) -> int | None:
    """Claim the job and score; returns the number of scores written (None: nothing to do)."""
    lease = Lease(key).claim()
    with lease:
        payload = app_settings.get(f"job:{key}")
        written = None if payload is None else apply.rescore(payload["run_id"], payload["scorers"])
        lease.finished = True
    app_settings.delete(f"job:{key}")
    return written


def pending(run_id: int) -> int:
    """Re-scores of this run still queued or running."""
    return len(leases.pending(prefix(run_id)))
