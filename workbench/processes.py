"""Child processes that never outlive the command that started them.

`workbench serve` starts the UI and a worker, `workbench eval --workers N` starts N-1 helpers.
Each child asks the kernel (Linux PR_SET_PDEATHSIG) for SIGTERM when its parent dies, even by
kill -9, and `stop_all` (from a `finally`, see `exit_on_terminate`) ends them on a normal exit or SIGTERM: no orphans either way.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: stop_all still ends children on a normal exit
        pass


def start(command: list[str], **kwargs) -> subprocess.Popen:
    """Start a child that receives SIGTERM when this process dies."""
    return subprocess.Popen(command, preexec_fn=_die_with_parent if sys.platform == "linux" else None, **kwargs)


def stop_all(children: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM every child still running, then SIGKILL those that do not stop in time."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def exit_on_terminate() -> None:
    """Turn SIGTERM (and SIGINT) into SystemExit in the main thread, so the caller's `finally`
    stops its children. The handler itself must not wait for them: it may have interrupted a
    `Popen.wait` that holds the lock every other wait needs."""

    def handle(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
