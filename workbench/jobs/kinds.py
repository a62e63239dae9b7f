"""What a job key names, and the function that executes it.

Keys are `<kind>:<what>`; each kind's executor claims the key's lease itself, so a key queued
twice or found by a reaper is executed at most once at a time.
"""

from __future__ import annotations

from workbench.jobs.lease import JobBusy


def execute(key: str) -> None:
    kind = key.split(":", 1)[0]
    try:
        if kind == "run":
            from workbench.jobs import runs

            runs.execute_key(key)
        elif kind == "index":
            from workbench.jobs import indexes

            indexes.execute_key(key)
        elif kind == "rescore":
            from workbench.jobs import rescore

            rescore.execute_key(key)
        else:
            raise ValueError(f"unknown job kind in {key!r}")
    except JobBusy:
        pass  # another live worker has it: a duplicate delivery
