"""Worker functions for tests/test_races.py, importable by spawned processes."""

from __future__ import annotations

import os


def register(home: str, files: list[str], barrier, results) -> None:
    """Register each dataset file and save each file's scorer config, meeting the other process at
    the barrier before each round so both start together."""
    os.environ["WORKBENCH_HOME"] = home
    os.environ.pop("WORKBENCH_DATABASE_URL", None)
    from workbench import datasets
    from workbench.scoring import store

    for index, path in enumerate(files):
        barrier.wait(timeout=60)
        try:
            version = datasets.resolve_for_run(path)
            scorer, _ = store.save(f"race-{index}", {"type": "contains", "value": f"answer {index}"})
            results.put((os.getpid(), index, version.id, scorer.id, None))
        except Exception as exc:  # reported to the test, which fails with it
            results.put((os.getpid(), index, None, None, f"{type(exc).__name__}: {exc}"))
