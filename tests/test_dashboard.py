"""Dashboard aggregations against hand-computed values on small ledgers."""

from __future__ import annotations

import io
import math
import os
import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import delete, insert, inspect, literal, select, update

from storage import dashboard_queries as q
from storage import db
from storage.tables import DatasetRow, LlmCall, Run, RunItem, Score, SQLModel
from workbench import dashboard, datasets, prompts
from workbench.dashboard import Filters

TODAY = date(2025, 3, 10)
THIS_PERIOD = Filters(date(2025, 3, 6), TODAY)  # 5 days; the previous period is 1-5 March


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def add_calls(*rows: dict) -> None:
    defaults = {
        "created_at": at(TODAY),
        "source": "playground",
        "model": "m/a",
        "request_hash": "h",
        "messages": [],
        "params": {},
        "latency_ms": 100.0,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.01,
        "cached": False,
        "error_type": None,
        "prompt_version_id": None,
        "run_id": None,
    }  # one key set: executemany
    with db.engine().begin() as conn:
        conn.execute(insert(LlmCall), [{**defaults, **row} for row in rows])


def nearest_rank(values: list[float], q_: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q_ * len(ordered) - 1e-9)) - 1]


def test_headline_figures_and_change_against_the_previous_period():
    add_calls(
        {"cost_usd": 0.01},
        {"cost_usd": 0.02, "created_at": at(date(2025, 3, 7))},
        {"cost_usd": 0.03},
        {"cost_usd": 0.0, "cached": True, "latency_ms": 0.0},
        {"model": "m/b", "cost_usd": None, "error_type": "rate_limit", "output_tokens": None, "latency_ms": 50.0},
        {"model": "m/c", "cost_usd": None},  # nobody priced m/c
        {"created_at": at(date(2025, 3, 1)), "latency_ms": 100.0},
        {"created_at": at(date(2025, 3, 5)), "latency_ms": 200.0},
        {"created_at": at(date(2025, 2, 20)), "cost_usd": 5.0},  # outside both periods
    )
    view = dashboard.view(THIS_PERIOD)
    f = {key: figure["value"] for key, figure in view.figures.items()}
    assert f["calls"] == 6
    assert f["spend"] == pytest.approx(0.06)
    assert f["cost_per_call"] == pytest.approx(0.06 / 4)  # over the 4 priced calls (the cache hit cost 0)
    assert f["error_rate"] == pytest.approx(1 / 6) and f["cache_rate"] == pytest.approx(1 / 6)
    assert view.totals["unpriced"] == 1 and view.totals["input_tokens"] == 60
    assert view.figures["calls"]["previous"] == 2 and view.figures["calls"]["change"] == pytest.approx(2.0)
    assert view.figures["spend"]["change"] == pytest.approx((0.06 - 0.02) / 0.02)
    assert view.figures["error_rate"]["change"] == pytest.approx(1 / 6)  # rates change in points
    # Latency covers the 5 calls that reached a provider (not the cache hit): 50, 100 x4.
    assert f["p50"] == 100.0 and view.figures["p95"]["previous"] == 200.0
    assert view.figures["guard_rate"]["value"] is None  # no guardrails ran: no rate, not 0


def test_change_is_relative_for_amounts_and_in_points_for_rates():
    assert dashboard.change(150.0, 100.0, "usd") == pytest.approx(0.5)
    assert dashboard.change(0.10, 0.04, "rate") == pytest.approx(0.06)
    assert dashboard.change(3, 0, "count") is None and dashboard.change(None, 1, "ms") is None
    assert THIS_PERIOD.previous() == Filters(date(2025, 3, 1), date(2025, 3, 5))


def test_exact_percentiles_of_a_known_list():
    add_calls(
        *[{"latency_ms": float(v), "created_at": at(date(2025, 3, 6 + v % 5))} for v in range(1, 101)],
        {"latency_ms": 0.0, "cached": True},
    )
    figures = dashboard.view(THIS_PERIOD).figures
    assert (figures["p50"]["value"], figures["p95"]["value"], figures["p99"]["value"]) == (50.0, 95.0, 99.0)


def test_exact_percentiles_match_nearest_rank_under_every_kind_of_filter():
    rng = random.Random(3)
    version = prompts.save_version("ask", template="Q: {{ q }}").version.id
    rows = []
    for i in range(3000):
        rows.append(
            {
                "latency_ms": round(rng.lognormvariate(6.5, 0.9), 3),
                "model": rng.choice(["m/a", "m/b"]),
                "source": rng.choice(["playground", "rag", "run"]),
                "created_at": at(date(2025, 3, 1) + timedelta(days=rng.randint(0, 9)), rng.randint(0, 23)),
                "prompt_version_id": version if i % 3 == 0 else None,
            }
        )
    rows[0]["latency_ms"] = 1e7  # beyond the last bucket edge
    add_calls(*rows)
    cases = [
        THIS_PERIOD,
        Filters(THIS_PERIOD.start, TODAY, models=("m/b",)),
        Filters(THIS_PERIOD.start, TODAY, sources=("rag", "run")),
        Filters(date(2025, 3, 1), TODAY, prompt="ask"),
    ]
    for filters in cases:
        chosen = [
            r["latency_ms"]
            for r in rows
            if filters.start <= r["created_at"].date() <= filters.end
            and (not filters.models or r["model"] in filters.models)
            and (not filters.sources or r["source"] in filters.sources)
            and (not filters.prompt or r["prompt_version_id"] == version)
        ]
        figures = dashboard.view(filters).figures
        for key, q_ in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert figures[key]["value"] == nearest_rank(chosen, q_), (filters, key)


def test_quantiles_by_model_and_day_are_within_one_bucket_of_exact():
    rng = random.Random(5)
    rows = [
        {
            "latency_ms": rng.lognormvariate(math.log(m * 300), 0.5),
            "model": f"m/{m}",
            "source": rng.choice(["run", "rag"]),
            "created_at": at(date(2025, 3, 6 + rng.randint(0, 4))),
        }
        for m in (1, 2, 3)
        for _ in range(800)
    ]
    add_calls(*rows)
    view = dashboard.view(THIS_PERIOD)
    for box in view.latency_models.itertuples():
        mine = [r["latency_ms"] for r in rows if r["model"] == box.model]
        assert box.calls == len(mine)
        for name, q_ in (("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95)):
            assert getattr(box, name) == pytest.approx(nearest_rank(mine, q_), rel=0.125)
    assert len(view.latency_days) == 15  # 5 days x 3 models
    for day in view.latency_days.itertuples():
        mine = [
            r["latency_ms"] for r in rows if r["model"] == day.model and r["created_at"].date().isoformat() == day.day
        ]
        assert day.calls == len(mine) and day.p95_ms == pytest.approx(nearest_rank(mine, 0.95), rel=0.125)
    # With a source filter the same figure comes from the per-source histogram through window functions.
    by_source = dashboard.view(Filters(THIS_PERIOD.start, TODAY, sources=("run", "rag"))).latency_days
    pd.testing.assert_frame_equal(by_source.reset_index(drop=True), view.latency_days.reset_index(drop=True))


def test_panels_spend_tokens_errors_and_versions():
    v1 = prompts.save_version("ask", template="A {{ q }}").version.id
    v2 = prompts.save_version("ask", template="B {{ q }}").version.id
    add_calls(
        {"prompt_version_id": v1, "cost_usd": 0.5, "created_at": at(date(2025, 3, 6))},
        {"prompt_version_id": v2, "cost_usd": 0.25, "model": "m/b", "input_tokens": 100, "output_tokens": 40},
        {"prompt_version_id": v2, "cost_usd": 0.25},
        {"cost_usd": None, "error_type": "timeout", "model": "m/b"},
        {"cost_usd": None, "error_type": "timeout", "model": "m/b"},
        {"cost_usd": None, "error_type": "auth"},
    )
    view = dashboard.view(THIS_PERIOD)
    spend = {(r.period, r.model): r.cost_usd for r in view.spend.itertuples()}
    assert spend == {("2025-03-06", "m/a"): 0.5, ("2025-03-10", "m/a"): 0.25, ("2025-03-10", "m/b"): 0.25}
    tokens = view.tokens.set_index("model")
    assert tokens.loc["m/b", "input_tokens"] == 120 and tokens.loc["m/b", "output_tokens"] == 50
    errors = {(r.error_type, r.model): r.calls for r in view.errors.itertuples()}
    assert errors == {("auth", "m/a"): 1, ("timeout", "m/b"): 2}
    versions = {(r.prompt_version, r.model): r.cost_usd for r in view.versions.itertuples()}
    assert versions == {
        ("(no version)", "m/a"): 0.0,
        ("(no version)", "m/b"): 0.0,
        ("ask v1", "m/a"): 0.5,
        ("ask v2", "m/a"): 0.25,
        ("ask v2", "m/b"): 0.25,
    }
    version_only = dashboard.view(Filters(THIS_PERIOD.start, TODAY, prompt="ask", version=2))
    assert version_only.figures["calls"]["value"] == 2 and version_only.figures["spend"]["value"] == pytest.approx(0.5)
    monthly = dashboard.view(Filters(date(2024, 1, 1), TODAY)).spend  # over 92 days: by month
    assert list(monthly["period"].unique()) == ["2025-03"]


def test_model_source_and_run_filters():
    add_calls(
        {"model": "m/a", "source": "playground"},
        {"model": "m/b", "source": "rag"},
        {"model": "m/b", "source": "run"},
        {"model": "m/c", "source": "judge"},
    )
    count = lambda **kw: dashboard.view(Filters(THIS_PERIOD.start, TODAY, **kw)).figures["calls"]["value"]  # noqa: E731
    assert count() == 4 and count(models=("m/b",)) == 2 and count(models=("m/a", "m/c")) == 2
    assert count(sources=("rag", "run")) == 2 and count(models=("m/b",), sources=("judge",)) == 0
    with pytest.raises(Exception, match="Unknown source"):
        dashboard.view(Filters(THIS_PERIOD.start, TODAY, sources=("nope",)))
    with pytest.raises(Exception, match="ends before it starts"):
        dashboard.view(Filters(TODAY, THIS_PERIOD.start))


def _run_with_items(version_id: int, row_ids: list[int], created: datetime, statuses: list[str], model="m/a") -> int:
    with db.session() as s:
        run = Run(name="eval", config={}, status="done", created_at=created, finished_at=created)
        s.add(run)
        s.flush()
        for row_id, status in zip(row_ids, statuses):
            s.add(
                RunItem(
                    run_id=run.id,
                    prompt_version_id=version_id,
                    model=model,
                    dataset_row_id=row_id,
                    status=status,
                    error_type="guardrail" if status == "blocked" else None,
                )
            )
        return run.id


def _items(run_id: int) -> list[int]:
    with db.engine().connect() as conn:
        return list(conn.execute(select(RunItem.id).where(RunItem.run_id == run_id).order_by(RunItem.id)).scalars())


def _score(item_id: int, name: str, passed: bool | None, value: float | None = None) -> None:
    with db.engine().begin() as conn:
        conn.execute(
            insert(Score).values(
                run_item_id=item_id,
                scorer_name=name,
                passed=passed,
                value=float(passed) if value is None and passed is not None else value,
                created_at=at(TODAY),
            )
        )


@pytest.fixture
def two_runs():
    """Run 1 (v1): 4 items, one blocked by a guardrail, one flagged; run 2 (v2): 2 items, both pass."""
    v1 = prompts.save_version("ask", template="A {{ q }}").version.id
    v2 = prompts.save_version("ask", template="B {{ q }}").version.id
    version, _ = datasets.save_version("quiz", datasets.parse_pasted("q\na\nb\nc\nd\n"))
    with db.engine().connect() as conn:
        row_ids = list(
            conn.execute(
                select(DatasetRow.id).where(DatasetRow.dataset_version_id == version.id).order_by(DatasetRow.position)
            ).scalars()
        )
    first = _run_with_items(v1, row_ids, at(date(2025, 3, 7)), ["done", "done", "blocked", "done"])
    i1, i2, i3, i4 = _items(first)
    _score(i1, "contains", True), _score(i1, "guard_output", True)
    _score(i2, "contains", False), _score(i2, "guard_output", False)
    _score(i3, "guard_input", False)
    _score(i4, "contains", True), _score(i4, "judge", None, value=0.25)
    second = _run_with_items(v2, row_ids[:2], at(date(2025, 3, 9)), ["done", "done"])
    for item in _items(second):
        _score(item, "contains", True)
    add_calls(
        *[{"source": "run", "run_id": first, "prompt_version_id": v1, "cost_usd": 0.01} for _ in range(3)],
        {"source": "judge", "run_id": first, "prompt_version_id": v1, "cost_usd": 0.02},
    )
    return first, second


def test_guardrail_rate_quality_in_run_order_and_cost_per_1000_rows(two_runs):
    first, second = two_runs
    view = dashboard.view(THIS_PERIOD)
    # Checked by a guardrail: items 1, 2 (guard_output) and 3 (blocked); triggered: 2 (flagged) and 3.
    assert view.figures["guard_rate"]["value"] == pytest.approx(2 / 3)
    assert view.totals["items_finished"] == 6 and view.totals["items_blocked"] == 1
    # Run and judge spend 0.05 over 6 finished rows.
    assert view.figures["cost_per_1k_rows"]["value"] == pytest.approx(0.05 / 6 * 1000)
    contains = view.quality[view.quality["scorer"] == "contains"]
    assert list(contains["run_id"]) == [first, second]
    assert list(contains["prompt_version"]) == ["ask v1", "ask v2"]
    assert list(contains["value"]) == pytest.approx([2 / 3, 1.0])
    judge = view.quality[view.quality["scorer"] == "judge"].iloc[0]
    assert judge["metric"] == "mean" and judge["value"] == 0.25
    only_second = dashboard.view(Filters(THIS_PERIOD.start, TODAY, run_id=second))
    assert set(only_second.quality["run_id"]) == {second} and only_second.figures["guard_rate"]["value"] is None


def test_rollups_follow_new_calls_rescoring_and_runs_that_change(two_runs):
    first, _ = two_runs
    assert dashboard.view(THIS_PERIOD).figures["calls"]["value"] == 4
    add_calls({"cost_usd": 1.0}, {"cost_usd": 2.0})
    after = dashboard.view(THIS_PERIOD)
    assert after.figures["calls"]["value"] == 6 and after.figures["spend"]["value"] == pytest.approx(3.05)
    # Re-scoring replaces scores with new rows; the run's summary is recomputed.
    items = _items(first)
    with db.engine().begin() as conn:
        conn.execute(delete(Score).where(Score.run_item_id.in_(items), Score.scorer_name == "contains"))
    for item in items:
        _score(item, "contains", True)
    quality = dashboard.view(THIS_PERIOD).quality
    assert quality[(quality.run_id == first) & (quality.scorer == "contains")]["value"].item() == 1.0
    # A run going on (status running) is recounted on every refresh.
    runs_running = dashboard.view(THIS_PERIOD).totals["items_finished"]
    with db.engine().begin() as conn:
        conn.execute(update(Run).where(Run.id == first).values(status="running"))
        conn.execute(update(RunItem).where(RunItem.id == items[0]).values(status="pending"))
    assert dashboard.view(THIS_PERIOD).totals["items_finished"] == runs_running - 1


def test_calls_table_pages_newest_first_and_narrows_to_a_day_model_or_error():
    add_calls(
        *[{"created_at": at(TODAY, hour=h), "model": "m/b" if h % 2 else "m/a"} for h in range(7)],
        {"created_at": at(date(2025, 3, 8)), "error_type": "timeout", "cost_usd": None},
    )
    first, total = dashboard.calls_table(THIS_PERIOD, page=1, page_size=3)
    assert total == 8 and len(first) == 3
    assert list(first["created_at"].dt.hour) == [6, 5, 4]
    last, _ = dashboard.calls_table(THIS_PERIOD, page=3, page_size=3)
    assert len(last) == 2 and last["created_at"].iloc[-1].date() == date(2025, 3, 8)
    day, total = dashboard.calls_table(THIS_PERIOD, day=TODAY, model="m/b")
    assert total == 3 and set(day["model"]) == {"m/b"}
    failed, total = dashboard.calls_table(THIS_PERIOD, error_type="timeout")
    assert total == 1 and failed["error_type"].tolist() == ["timeout"]
    narrow, total = dashboard.calls_table(Filters(THIS_PERIOD.start, TODAY, models=("m/a",), sources=("playground",)))
    assert total == 5 and len(narrow) == 5


def test_budget_status_and_month_projection():
    assert dashboard.budget_status() is None
    add_calls(
        {"created_at": at(date(2025, 3, 1)), "cost_usd": 0.4},
        {"created_at": at(date(2025, 3, 5)), "cost_usd": 0.3},
        {"created_at": at(TODAY, 8), "cost_usd": 0.5},
        {"created_at": at(date(2025, 2, 28)), "cost_usd": 9.0},
    )
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    dashboard.set_budget(1.0, "month")
    status = dashboard.budget_status(now)
    assert status["month_to_date"] == pytest.approx(1.2) and status["spent"] == pytest.approx(1.2)
    assert status["exceeded"] and status["fraction"] == pytest.approx(1.2)
    pace = (0.3 + 0.5) / 6.5  # the last 7 days (4-10 March), today half gone
    assert status["pace_per_day"] == pytest.approx(pace)
    assert status["projected_month"] == pytest.approx(1.2 + pace * (31 - 9 - 0.5))
    dashboard.set_budget(0.6, "day")
    daily = dashboard.budget_status(now)
    assert (
        daily["spent"] == pytest.approx(0.5)
        and not daily["exceeded"]
        and daily["month_limit"] == pytest.approx(0.6 * 31)
    )
    dashboard.set_budget(None)
    assert dashboard.budget_status(now) is None
    with pytest.raises(Exception, match="period"):
        dashboard.set_budget(5.0, "week")


def test_a_panel_downloads_as_csv():
    add_calls({"cost_usd": 0.5}, {"cost_usd": 0.25, "model": "m/b"})
    view = dashboard.view(THIS_PERIOD)
    back = pd.read_csv(io.BytesIO(dashboard.to_csv(view.spend)))
    assert list(back.columns) == ["period", "model", "cost_usd", "calls"]
    assert back["cost_usd"].sum() == pytest.approx(0.75)


def test_week_rows_and_version_rollups_give_the_figures_of_the_ledger_itself():
    """Long ranges read whole weeks from week rows, prompt filters read version rollups: over
    random ranges and filters every figure must equal a plain count over the calls."""
    rng = random.Random(11)
    v1 = prompts.save_version("ask", template="A {{ q }}").version.id
    v2 = prompts.save_version("ask", template="B {{ q }}").version.id
    start = date(2025, 1, 1)

    def random_calls(n: int) -> list[dict]:
        return [
            {
                "created_at": at(start + timedelta(days=rng.randint(0, 69)), rng.randint(0, 23)),
                "model": rng.choice(["m/a", "m/b", "m/c"]),
                "source": rng.choice(["playground", "run", "rag"]),
                "prompt_version_id": rng.choice([v1, v2, None]),
                "cost_usd": rng.choice([0.01, 0.02, None]),
                "error_type": rng.choice([None] * 8 + ["timeout", "rate_limit"]),
                "cached": rng.random() < 0.1,
                "latency_ms": round(rng.lognormvariate(6, 0.8), 2),
                "input_tokens": rng.randint(1, 50),
            }
            for _ in range(n)
        ]

    rows = random_calls(1500)
    add_calls(*rows[:900])
    dashboard.refresh_rollups()  # folds the first batch
    # The second batch lands in weeks that already have week rows; the reads fold it into temporary
    # rollups (stored UNION ALL newer rows) until the last cases, after a refresh stores it too.
    add_calls(*rows[900:])
    for case in range(12):
        if case == 8:
            dashboard.refresh_rollups()
        first = start + timedelta(days=rng.randint(0, 40))
        filters = Filters(
            first,
            first + timedelta(days=rng.randint(0, 29)),
            models=rng.choice([(), ("m/b",)]),
            sources=rng.choice([(), (), ("run", "rag")]),
            prompt=rng.choice([None, "ask"]),
            version=rng.choice([None, 2]),
        )
        version_ids = None if not filters.prompt else {v2} if filters.version == 2 else {v1, v2}
        mine = [
            r
            for r in rows
            if filters.start <= r["created_at"].date() <= filters.end
            and (not filters.models or r["model"] in filters.models)
            and (not filters.sources or r["source"] in filters.sources)
            and (version_ids is None or r["prompt_version_id"] in version_ids)
        ]
        view = dashboard.view(filters)
        assert view.figures["calls"]["value"] == len(mine), (case, filters)
        assert view.figures["spend"]["value"] == pytest.approx(sum(r["cost_usd"] or 0 for r in mine)), filters
        assert view.totals["cached"] == sum(r["cached"] for r in mine)
        assert view.totals["errors"] == sum(r["error_type"] is not None for r in mine)
        assert view.totals["input_tokens"] == sum(r["input_tokens"] for r in mine)
        timed = [r["latency_ms"] for r in mine if not r["cached"]]
        assert view.figures["p95"]["value"] == (nearest_rank(timed, 0.95) if timed else None), filters
        by_model = {m: sum(1 for r in mine if r["model"] == m and not r["cached"]) for m in {r["model"] for r in mine}}
        assert dict(zip(view.latency_models["model"], view.latency_models["calls"])) == {
            m: n for m, n in by_model.items() if n
        }, filters
        assert sum(view.spend["calls"]) == len(mine) and sum(view.versions["calls"]) == len(mine)
        assert sum(view.errors["calls"]) == view.totals["errors"]
        assert sum(view.latency_days["calls"]) == len(timed)
    assert dashboard.filter_options()["models"] == ["m/a", "m/b", "m/c"]


def test_migration_matches_the_rollup_tables_and_bucket_edges_are_exact():
    engine = db.engine()
    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}, table.name
    with engine.connect() as conn:
        buckets = conn.execute(select(q.latency_bucket).order_by(q.latency_bucket.c.bucket)).all()
        assert len(buckets) == q.LAST_BUCKET + 1
        for bucket, lo, hi in buckets:
            below_hi = math.nextafter(min(hi, 1e12), 0)
            assert conn.execute(select(q.bucket_of(literal(lo)), q.bucket_of(literal(below_hi)))).one() == (
                bucket,
                bucket,
            ), (bucket, lo, hi)
            assert q.bucket_edges(bucket) == (lo, hi)
        for bucket in range(1 + q.FINE_STEPS * q.OCTAVES):  # the fine histogram's edges, worked out in Python
            lo, hi = q.bucket_edges(bucket, q.FINE_STEPS)
            below_hi = math.nextafter(hi, 0)
            fine = [q.bucket_of(literal(v), q.FINE_STEPS) for v in (lo, below_hi)]
            assert conn.execute(select(*fine)).one() == (bucket, bucket), (bucket, lo, hi)


def test_queries_use_the_dialect_helpers_on_postgresql():
    from sqlalchemy.dialects import postgresql

    day = str(select(q.day_of(LlmCall.created_at)).compile(dialect=postgresql.dialect()))
    assert "to_char(llm_call.created_at, 'YYYY-MM-DD')" in day
    bucket = str(select(q.bucket_of(LlmCall.latency_ms)).compile(dialect=postgresql.dialect()))
    assert "floor(" in bucket and "%(" not in bucket  # constants are inlined, no bind parameters
    week = str(select(q.week_of(q.rollup_call.c.day)).compile(dialect=postgresql.dialect()))
    assert "date_trunc('week', CAST(rollup_call.day AS date))" in week


def _empty_postgres() -> None:
    with db.engine().begin() as conn:
        for table in (
            "score",
            "run_item",
            "llm_call",
            "run",
            "dataset_row",
            "dataset_version",
            "dataset",
            "label_event",
            "prompt_label",
            "prompt_version",
            "prompt",
            "app_setting",
            "model_price",
            *[
                t.name
                for t in SQLModel.metadata.sorted_tables
                if t.name.startswith("rollup_") and t.name != "rollup_state"
            ],
        ):
            conn.exec_driver_sql(f"DELETE FROM {table}")
        conn.exec_driver_sql("UPDATE rollup_state SET last_id = 0")


@pytest.mark.skipif(not os.environ.get("WORKBENCH_TEST_POSTGRES_URL"), reason="set WORKBENCH_TEST_POSTGRES_URL to run")
def test_the_same_panels_on_postgresql(monkeypatch, request):
    """The panel tests again against a real PostgreSQL database (emptied first: use a scratch one)."""
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", os.environ["WORKBENCH_TEST_POSTGRES_URL"])
    db.dispose_all()
    for check in (
        test_headline_figures_and_change_against_the_previous_period,
        test_exact_percentiles_match_nearest_rank_under_every_kind_of_filter,
        test_quantiles_by_model_and_day_are_within_one_bucket_of_exact,
        test_panels_spend_tokens_errors_and_versions,
        test_calls_table_pages_newest_first_and_narrows_to_a_day_model_or_error,
        test_budget_status_and_month_projection,
        test_week_rows_and_version_rollups_give_the_figures_of_the_ledger_itself,
    ):
        _empty_postgres()
        check()
    for check in (
        test_guardrail_rate_quality_in_run_order_and_cost_per_1000_rows,
        test_rollups_follow_new_calls_rescoring_and_runs_that_change,
    ):
        _empty_postgres()
        check(two_runs.__wrapped__())
