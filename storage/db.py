"""The engine and sessions.

One engine per database URL per process. SQLite gets WAL (readers never block the run
writer), foreign keys, and a busy timeout so a page reading while a run writes waits
instead of failing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from storage import migrations, settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def engine(url: str | None = None) -> Engine:
    """The migrated engine for `url` (default: WORKBENCH_DATABASE_URL or the SQLite file in WORKBENCH_HOME)."""
    url = url or settings.database_url()
    with _lock:
        if url in _engines:
            return _engines[url]
        if url.startswith("sqlite"):
            eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(eng, "connect", _sqlite_pragmas)
        else:
            eng = create_engine(url, pool_pre_ping=True)
        migrations.migrate(eng)
        _engines[url] = eng
        return eng


def dispose_all(close: bool = True) -> None:
    """Forget cached engines (tests switch WORKBENCH_HOME between cases). In a forked child,
    `close=False` drops the parent's pooled connections without closing them under the parent."""
    with _lock:
        for eng in _engines.values():
            eng.dispose(close=close)
        _engines.clear()


@contextmanager
def session():
    """A session that commits on success and rolls back on error: nothing is half-written."""
    with Session(engine(), expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except Exception:
            s.rollback()
            raise
