"""Two registrations of the same new dataset file, the same scorer config or prompt, a label move, a
price and a setting, at once: both succeed with one row (threads of one process, and two processes)."""

from __future__ import annotations

import multiprocessing
import queue
import threading

from sqlalchemy import func, select

from storage.db import engine
from storage.tables import (
    AppSetting,
    Dataset,
    DatasetVersion,
    LabelEvent,
    ModelPrice,
    Prompt,
    PromptLabel,
    PromptVersion,
    Scorer,
)
from tests import race_workers

ROUNDS = 10


def _files(tmp_path) -> list[str]:
    paths = []
    for index in range(ROUNDS):
        path = tmp_path / f"race_{index}.csv"
        path.write_text("question,expected\n" + "".join(f"q{index}-{n},a{n}\n" for n in range(50)), encoding="utf-8")
        paths.append(str(path))
    return paths


def _check(results: list[tuple]) -> None:
    errors = [r[4] for r in results if r[4]]
    assert errors == []
    assert len(results) == 2 * ROUNDS
    for index in range(ROUNDS):
        pair = [r for r in results if r[1] == index]
        assert len(pair) == 2
        assert pair[0][2] == pair[1][2], "both registrations return the one dataset version"
        assert pair[0][3] == pair[1][3], "both saves return the one scorer version"
        assert pair[0][5] == pair[1][5], "both saves return the one prompt version"
    with engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(Dataset)).scalar() == ROUNDS
        assert conn.execute(select(func.count()).select_from(DatasetVersion)).scalar() == ROUNDS
        assert conn.execute(select(func.count()).select_from(Scorer)).scalar() == ROUNDS
        assert conn.execute(select(func.max(DatasetVersion.version))).scalar() == 1
        for table in (Prompt, PromptVersion, PromptLabel, LabelEvent, ModelPrice):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == ROUNDS, table
        assert conn.execute(select(func.count()).select_from(AppSetting)).scalar() == 1


def test_two_threads_register_the_same_new_dataset_and_scorer(tmp_path, workbench_home):
    files = _files(tmp_path)
    barrier, results = threading.Barrier(2), queue.Queue()
    threads = [
        threading.Thread(target=race_workers.register, args=(str(workbench_home), files, barrier, results))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _check([results.get_nowait() for _ in range(results.qsize())])


def test_two_processes_register_the_same_new_dataset_and_scorer(tmp_path, workbench_home):
    engine()  # the schema exists before the race: what is raced is the registration, not the migration
    files = _files(tmp_path)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=race_workers.register, args=(str(workbench_home), files, barrier, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    collected = [results.get(timeout=180) for _ in range(2 * ROUNDS)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    _check(collected)
