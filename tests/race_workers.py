"""Worker functions for tests/test_races.py, importable by spawned processes."""

from __future__ import annotations

import os


def register(home: str, files: list[str], barrier, results) -> None:
    """Register each dataset file and save each file's scorer config, meeting the other process at
    the barrier before each round so both start together."""
    os.environ["WORKBENCH_HOME"] = home
    os.environ.pop("WORKBENCH_DATABASE_URL", None)
    from workbench import costs, dashboard, datasets, prompts
    from workbench.scoring import store

    for index, path in enumerate(files):
        barrier.wait(timeout=60)
        try:
            version = datasets.resolve_for_run(path)
            scorer, _ = store.save(f"race-{index}", {"type": "contains", "value": f"answer {index}"})
            prompt = prompts.save_version(f"race-{index}", template="Answer {{ question }}").version
            prompts.set_label(f"race-{index}", "production", 1, evidence=str(os.getpid()))
            costs.set_price(f"race/model-{index}", 1.0, 2.0)
            dashboard.set_budget(float(index + 1), "day")
            results.put((os.getpid(), index, version.id, scorer.id, None, prompt.id))
        except Exception as exc:  # reported to the test, which fails with it
            results.put((os.getpid(), index, None, None, f"{type(exc).__name__}: {exc}", None))
