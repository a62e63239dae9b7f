"""Dashboard reads never write: figures stay exact while the rollups are behind, and the database
is left as it was (only `dashboard.refresh_rollups()` writes)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, select

from storage import dashboard_queries as q
from storage import db
from storage.tables import Score
from tests.test_dashboard import THIS_PERIOD, _items, _score, add_calls, at, two_runs  # noqa: F401
from workbench import dashboard


class Watch:
    """PRAGMA data_version on a connection of its own changes whenever any other connection commits
    to the database file, so an unchanged value means nothing was written."""

    def __init__(self):
        self.conn = sqlite3.connect(db.engine().url.database)

    def version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]


def _mark() -> int:
    with db.engine().connect() as conn:
        return conn.execute(select(q.rollup_state.c.last_id).where(q.rollup_state.c.name == "llm_call")).scalar_one()


def test_reads_behind_the_rollups_are_exact_and_write_nothing(two_runs):  # noqa: F811
    first, _ = two_runs
    dashboard.set_budget(10.0, "month")
    dashboard.refresh_rollups()
    held = _mark()
    # After the refresh: two new calls (one of a model the rollups never saw) and a re-scored run.
    add_calls({"cost_usd": 1.0}, {"cost_usd": 2.0, "model": "m/new", "created_at": at(date(2025, 3, 9))})
    items = _items(first)
    with db.engine().begin() as conn:
        conn.execute(delete(Score).where(Score.run_item_id.in_(items), Score.scorer_name == "contains"))
    for item in items:
        _score(item, "contains", True)

    watch = Watch()
    before = watch.version()
    view = dashboard.view(THIS_PERIOD)
    assert view.figures["calls"]["value"] == 6 and view.figures["spend"]["value"] == pytest.approx(3.05)
    assert "m/new" in view.models and "m/new" in dashboard.filter_options()["models"]
    quality = view.quality
    assert quality[(quality.run_id == first) & (quality.scorer == "contains")]["value"].item() == 1.0
    table, total = dashboard.calls_table(THIS_PERIOD)
    assert total == 6 and len(table) == 6
    status = dashboard.budget_status(datetime(2025, 3, 10, 12, tzinfo=UTC))
    assert status["month_to_date"] == pytest.approx(3.05)
    assert dashboard.view(THIS_PERIOD).figures["calls"]["value"] == 6  # a second read: the same
    assert watch.version() == before, "a read wrote to the database"
    assert _mark() == held

    dashboard.refresh_rollups()  # the writer: now the stored rollups hold everything
    assert watch.version() != before and _mark() > held
    after = dashboard.view(THIS_PERIOD)
    assert after.figures == view.figures


def test_budget_status_with_nothing_new_writes_nothing():
    add_calls({"cost_usd": 0.5})
    dashboard.set_budget(1.0, "day")
    watch = Watch()
    before = watch.version()
    for _ in range(3):
        assert dashboard.budget_status(datetime(2025, 3, 10, 12, tzinfo=UTC))["spent"] == pytest.approx(0.5)
    assert watch.version() == before


def test_a_writer_is_not_blocked_while_a_read_is_open(two_runs):  # noqa: F811
    """The read's snapshot and its temporary rollups take no lock a writer would wait for."""
    dashboard.refresh_rollups()
    add_calls({"cost_usd": 1.0})  # the read below folds this newer row into temporary rollups
    with dashboard.reading(THIS_PERIOD) as (conn, scope, _):
        assert scope.rollups.delta
        writer = sqlite3.connect(db.engine().url.database, timeout=0.5)
        writer.execute(
            "INSERT INTO llm_call (created_at, source, model, request_hash, messages, params, cached, attempts)"
            " VALUES ('2025-03-10 12:00:00', 'playground', 'm/a', 'h', '[]', '{}', 0, 1)"
        )
        writer.commit()
        writer.close()
        assert q.totals(conn, scope)[0]["calls"] == 5  # the snapshot: the writer's row is not in it
    assert dashboard.view(THIS_PERIOD).figures["calls"]["value"] == 6
