"""An index build as a job: the page records the `building` version, a worker builds it.

Uploaded files are written under WORKBENCH_HOME/uploads/<version id>/ first (the queue carries
only the job key, and the worker may be another process); the sample corpus and paths on disk
are passed as they are. The embedding model therefore loads in the worker, never in the web
server. A build that fails is recorded on its version as `failed` with its message.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from storage import app_settings, leases
from storage.tables import RagIndexVersion
from workbench import config
from workbench.jobs.lease import Lease
from workbench.rag import index


def _uploads(version_id: int) -> Path:
    return config.home() / "uploads" / str(version_id)


def _persist(version_id: int, source) -> str:
    """The source as something a worker in another process can read: a path or "sample"."""
    if source is None or isinstance(source, str | Path):
        return str(source or index.SAMPLE_CORPUS)
    folder = _uploads(version_id)
    folder.mkdir(parents=True, exist_ok=True)
    for item in source:
        name, data = (item.name, item.getvalue()) if hasattr(item, "getvalue") else item
        target = folder / Path(str(name)).name  # a name, never a path out of the folder
        target.write_bytes(data)
    return str(folder)


def prepare(name: str, source, **options) -> tuple[RagIndexVersion, str]:
    """Record the `building` version and its job (refusals such as a bad name raise WorkbenchError
    before anything is queued); returns the version and the job key."""
    version = index.start_version(name, source_label=index.source_label(source), **options)
    assert version.id is not None  # stored rows have ids
    key = f"index:{version.id}"
    app_settings.put(f"job:{key}", {"source": _persist(version.id, source)})
    leases.queue(key)
    return version, key


def execute_key(key: str) -> None:
    """Claim the build and run it."""
    version_id = int(key.split(":")[1])
    lease = Lease(key).claim()
    with lease:
        payload = app_settings.get(f"job:{key}")
        if payload is not None:
            try:
                index.run_build(version_id, payload["source"])
            except Exception:  # recorded on the version as `failed`, with its message
                logging.getLogger("workbench.jobs").info("index build %s failed", version_id, exc_info=True)
        lease.finished = True
    app_settings.delete(f"job:{key}")
    shutil.rmtree(_uploads(version_id), ignore_errors=True)
