"""Runs started from the UI execute here, outside any Streamlit script run.

One process-wide manager (the page keeps it in `st.cache_resource`) owns a worker
thread per active run, each with its own event loop. Reruns, page changes and closed
tabs do not touch these threads; the page only polls the database for progress. If the
server process dies, the run's heartbeat stops and the page offers Resume.
"""

from __future__ import annotations

import threading

from workbench import engine


class RunManager:
    def __init__(self):
        self._threads: dict[int, threading.Thread] = {}
        self._errors: dict[int, str] = {}
        self._lock = threading.Lock()

    def start(self, run_id: int, retry_errors: bool = False) -> bool:
        """Start (or resume) a run in the background; False if it is already running here."""
        with self._lock:
            thread = self._threads.get(run_id)
            if thread is not None and thread.is_alive():
                return False
            thread = threading.Thread(target=self._work, args=(run_id, retry_errors), name=f"run-{run_id}", daemon=True)
            self._threads[run_id] = thread
            self._errors.pop(run_id, None)
            thread.start()
            return True

    def _work(self, run_id: int, retry_errors: bool) -> None:
        try:
            engine.run_sync(run_id, retry_errors=retry_errors)
        except Exception as exc:  # recorded on the run by the engine too; kept here for the page
            self._errors[run_id] = f"{type(exc).__name__}: {exc}"

    def is_active(self, run_id: int) -> bool:
        thread = self._threads.get(run_id)
        return thread is not None and thread.is_alive()

    def error(self, run_id: int) -> str | None:
        return self._errors.get(run_id)

    def wait(self, run_id: int, timeout: float | None = None) -> None:
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)


_manager: RunManager | None = None


def manager() -> RunManager:
    """The process-wide manager (also reachable without Streamlit, e.g. from tests)."""
    global _manager
    if _manager is None:
        _manager = RunManager()
    return _manager
