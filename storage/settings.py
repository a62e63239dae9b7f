"""Which database: WORKBENCH_DATABASE_URL, or the SQLite file in WORKBENCH_HOME.

Storage needs this and nothing else from the configuration, so it lives here and
`workbench.config` re-exports it: `storage/` imports nothing from `workbench/`.
Read at call time (not import time) so tests can point WORKBENCH_HOME at a temporary
directory per test.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The data directory: the SQLite database, Chroma indexes and caches."""
    path = Path(os.environ.get("WORKBENCH_HOME") or Path.home() / ".workbench").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


_database_urls: dict[tuple[str | None, str | None], str] = {}


def database_url() -> str:
    """WORKBENCH_DATABASE_URL, or the SQLite file in the home. Asked for on every model call
    (prices, ledger), so it is worked out once per value of the two variables: home()'s mkdir
    cost ~0.3 ms of the run engine's per-call budget."""
    key = (os.environ.get("WORKBENCH_DATABASE_URL"), os.environ.get("WORKBENCH_HOME"))
    url = _database_urls.get(key)
    if url is None:
        url = _database_urls[key] = key[0] or f"sqlite:///{home() / 'workbench.db'}"
    return url
