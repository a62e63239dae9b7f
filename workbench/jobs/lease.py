"""Holding a job's lease: claim it, keep it alive from a thread, give it up.

The heartbeat runs in a thread of its own, never on the event loop that makes the calls, so a
busy loop or a long scorer cannot make a live job look dead. It renews the lease well before it
runs out (every third of its length, and at least every 2 s: a beat also notices a cancel); if a renewal finds the lease gone (it expired during a
long stall and another worker took the job), it sets `lost`, and the job stops taking items.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

from storage import leases

LEASE_SECONDS_DEFAULT = 30.0
BEAT_MAX_S = 2.0  # beats also carry a cancel to the job: at least this often


def lease_seconds() -> float:
    return float(os.environ.get("WORKBENCH_LEASE_SECONDS", LEASE_SECONDS_DEFAULT))


def worker_name() -> str:
    """host:pid plus a random tag (a pid can be reused after a crash)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobBusy(Exception):
    """Another live worker holds the job."""

    def __init__(self, key: str, owner: str):
        super().__init__(f"{key} is being executed by {owner}")
        self.key, self.owner = key, owner


class Lease:
    """A claimed job. Use as a context manager: the heartbeat runs inside the block."""

    def __init__(self, key: str, owner: str | None = None, on_beat: Callable[[], None] | None = None):
        self.key = key
        self.owner = owner or worker_name()
        self.seconds = lease_seconds()
        self.on_beat = on_beat
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = False

    def claim(self) -> Lease:
        won, holder = leases.claim(self.key, self.owner, self.seconds)
        if not won:
            raise JobBusy(self.key, holder)
        return self

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name=f"lease {self.key}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(min(self.seconds / 3, BEAT_MAX_S)):
            try:
                if not leases.renew(self.key, self.owner, self.seconds):
                    self.lost.set()
                    return
                if self.on_beat is not None:
                    self.on_beat()
            except Exception:  # a locked database: try again at the next beat, the lease still runs
                continue

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost.is_set():
            leases.release(self.key, self.owner, finished=self.finished)
