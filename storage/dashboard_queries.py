"""The Dashboard's SQL: rollups of the call ledger, kept current incrementally, and one query per panel.

Why rollups. At a million calls a plain GROUP BY over `llm_call` takes over a second per panel
on SQLite and the page has a dozen panels, so the ledger is folded into small tables (made by
migrations 3 and 4) and the panels read those:

- `rollup_call` (day, model, source, error_type): calls, cache hits, priced calls, spend, tokens;
- `rollup_version` (prompt version, day, model, source, error_type): the same per prompt version,
  which is what a prompt or version filter reads, and `rollup_version_model` (day, prompt
  version, model), the third as many rows that "cost per prompt version" reads;
- `rollup_latency` (day, model, source, bucket): a latency histogram of the calls that reached a
  provider (cache hits excluded), 8 buckets per power of two (each at most 12.5% wide), and
  `rollup_latency_cum` the same over all sources with each (day, model) histogram's running
  count, so "p95 per day and model" is a range read instead of a window over thousands of cells;
  `rollup_latency_version` (prompt version, day, model, bucket) for version filters, and
  `rollup_latency_fine` (day, bucket), 64 buckets per power of two, for the exact headline ranks;
- `rollup_run` and `rollup_score` (run, prompt version, model[, scorer]): item, guardrail and
  score summaries.

Weeks. Every day rollup also holds a row per week and key (`day` = 'w' + its Monday), rebuilt
from the day rows whenever a day of that week changes. A date range reads its whole weeks from
week rows and only the days at its ends from day rows (see `_periods`): 91 days are read as
13 weeks and a few days instead of 91 days.

How they stay current. The ledger is append-only, so `refresh()` folds the rows with ids past
`rollup_state.last_id` into the day rollups (an upsert that adds) and moves the mark. Only the
writers call it (the worker after a run's writes, `workbench serve` now and then, through
`dashboard.refresh_rollups`); a read never does. A read that finds the rollups behind (`pending`)
folds just the ledger rows past the mark into TEMPORARY `delta_` rollups (day rows) and recomputes
the changed runs into temporary run summaries (`build_delta`); every panel then reads the stored
rows UNION ALL the delta rows, all inside one read snapshot (`snapshot`) that ends in a rollback:
exact figures, and no write to the database. The one rewrite of past
calls, a cost recompute, rebuilds that model's spend rollups in the same transaction
(`rebuild_model`). Run summaries are recomputed per run when its stamp (status, heartbeat,
finish) changed, while it is unfinished, or when it got new scores (re-scoring writes new ids).

Filters on date, models, sources and prompt versions are rollup keys. A run filter (or a prompt
with a source) is narrow: `build_narrow` folds just those ledger rows (found through their
indexes) into TEMPORARY copies of the day rollups once per page, and every panel runs the same
queries against them.

Percentiles. The headline p50/p95/p99 are exact nearest-rank values: a histogram gives the
bucket holding rank ceil(q*N) and the offset inside it, and one ordered lookup on a covering
index of the ledger reads that row (never an average of averages). Per-model boxes and p95 over
time are read from the same histograms, interpolated inside the bucket that holds q*N (error
under one bucket width, 12.5%).

Cost of a page. At a million calls SQLite answers each panel in a few milliseconds, so what
SQLAlchemy does around it counts as much: statements are built once per filter shape with bound
values (`_prepared`), and panel rows are fetched as plain tuples (`_tuples`).

Everything is SQLAlchemy Core and runs on SQLite and PostgreSQL; the dialect differences
(a timestamp's day, floor) are small compiled helpers below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlmodel import col

from storage import core, db
from storage.tables import (
    LlmCall,
    Prompt,
    PromptVersion,
    Run,
    RunItem,
    Score,
    latency_bucket,
    rollup_call,
    rollup_latency,
    rollup_latency_cum,
    rollup_latency_fine,
    rollup_latency_version,
    rollup_run,
    rollup_run_state,
    rollup_score,
    rollup_state,
    rollup_version,
    rollup_version_model,
    utcnow,
)

FINAL_RUN_STATUSES = ("done", "failed", "cancelled", "budget_exceeded")
STEPS = 8  # latency buckets per power of two (must match migration 3's latency_bucket rows)
FINE_STEPS = 64  # in rollup_latency_fine: buckets 1.6% wide, so an exact rank walks few ledger rows
OCTAVES = 20  # 1 ms .. 2^20 ms; above that one open bucket
LAST_BUCKET = 1 + STEPS * OCTAVES
EVAL_SOURCES = ("run", "judge")


call = core.table(LlmCall)


CALL_COLUMNS = (
    "id",
    "created_at",
    "source",
    "model",
    "prompt_version_id",
    "run_id",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cached",
    "error_type",
)


@dataclass(frozen=True)
class Rollups:
    """One set of day rollups and the ledger rows behind them: the stored ones, or a narrow page's
    temporary copies (its matching calls, and rollups of just those). `version` is what cost per
    prompt version reads under a source filter, `version_model` (if kept) what it reads otherwise."""

    ledger: Table
    call: Table
    version: Table
    latency: Table
    latency_cum: Table
    version_model: Table | None = None
    latency_version: Table | None = None
    latency_fine: Table | None = None
    run: Table = rollup_run
    score: Table = rollup_score
    delta: bool = False  # also read the DELTA rollups: ledger rows the stored ones do not hold yet

    @property
    def rollups(self) -> tuple[Table, ...]:
        """Every table kept by folding the ledger in (each once)."""
        tables = (
            self.call,
            self.version,
            self.latency,
            self.latency_cum,
            self.version_model,
            self.latency_version,
            self.latency_fine,
        )
        return tuple(dict.fromkeys(t for t in tables if t is not None))


def _temporary(table: Table, columns, meta: MetaData, *extra: Column, prefix: str = "narrow_") -> Table:
    return Table(
        f"{prefix}{table.name}",
        meta,
        *[Column(c.name, c.type, primary_key=c.primary_key) for c in columns],
        *extra,
        prefixes=["TEMPORARY"],
    )


STORED = Rollups(
    call,
    rollup_call,
    rollup_version,
    rollup_latency,
    rollup_latency_cum,
    rollup_version_model,
    rollup_latency_version,
    rollup_latency_fine,
)
# A prompt or version filter reads the version-keyed rollups (rollup_call's columns with one more key).
VERSIONED = Rollups(call, rollup_version, rollup_version, rollup_latency_version, rollup_latency_version)
_narrow_meta = MetaData()
# A narrow page's calls, with their day and latency bucket worked out once while copying.
NARROW = Rollups(
    _temporary(
        call, [call.c[name] for name in CALL_COLUMNS], _narrow_meta, Column("day", Text), Column("bucket", Integer)
    ),
    _temporary(rollup_call, rollup_call.columns, _narrow_meta),
    _temporary(rollup_version, rollup_version.columns, _narrow_meta),
    _temporary(rollup_latency, rollup_latency.columns, _narrow_meta),
    _temporary(rollup_latency_cum, rollup_latency_cum.columns, _narrow_meta),
)
NARROW_TABLES = (NARROW.ledger, *NARROW.rollups)
# A read while the stored rollups are behind the ledger folds just the newer rows into these
# (temporary, day rows only are read) and every panel reads stored rows UNION ALL delta rows.
DELTA_OF = {t.name: _temporary(t, t.columns, _narrow_meta, prefix="delta_") for t in STORED.rollups}
DELTA = Rollups(
    call,
    DELTA_OF[rollup_call.name],
    DELTA_OF[rollup_version.name],
    DELTA_OF[rollup_latency.name],
    DELTA_OF[rollup_latency_cum.name],
)
DELTA = replace(
    DELTA,
    version_model=DELTA_OF[rollup_version_model.name],
    latency_version=DELTA_OF[rollup_latency_version.name],
    latency_fine=DELTA_OF[rollup_latency_fine.name],
)
# Run summaries recomputed for a read while some runs changed since the last refresh.
NARROW_RUNS = (
    _temporary(rollup_run, rollup_run.columns, _narrow_meta),
    _temporary(rollup_score, rollup_score.columns, _narrow_meta),
)
Index("narrow_llm_call_latency", NARROW.ledger.c.latency_ms)


# --- dialect helpers ----------------------------------------------------------------------------


class day_of(FunctionElement):
    """A timestamp's UTC day as 'YYYY-MM-DD' text (the rollups' `day`)."""

    type = String()
    inherit_cache = True


@compiles(day_of, "sqlite")
def _day_of_sqlite(element, compiler, **kw):
    return "strftime('%Y-%m-%d', " + compiler.process(element.clauses, **kw) + ")"


@compiles(day_of)
def _day_of_default(element, compiler, **kw):
    return "to_char(%s, 'YYYY-MM-DD')" % compiler.process(element.clauses, **kw)


class floor_(FunctionElement):
    """floor() of a non-negative number as an integer (SQLite may lack math functions)."""

    type = Integer()
    inherit_cache = True


@compiles(floor_, "sqlite")
def _floor_sqlite(element, compiler, **kw):
    return "CAST(%s AS INTEGER)" % compiler.process(element.clauses, **kw)


@compiles(floor_)
def _floor_default(element, compiler, **kw):
    return "CAST(floor(%s) AS INTEGER)" % compiler.process(element.clauses, **kw)


def _num(value: float):
    """A numeric constant inlined into SQL (no bind parameter), so GROUP BY sees one expression."""
    return literal_column(repr(float(value)))


def bucket_of(latency, steps: int = STEPS):
    """The `latency_bucket` a latency in ms falls in (with `steps` buckets per power of two; the
    fine histogram uses FINE_STEPS). Powers of two keep the arithmetic exact, so a row is in
    bucket b exactly when lo(b) <= latency < hi(b)."""
    whens: list[tuple[Any, ColumnElement[Any]]] = [(latency < _num(1), literal_column("0"))]
    for k in range(OCTAVES):
        base = 2.0**k
        whens.append(
            (
                latency < _num(2 * base),
                literal_column(str(1 + steps * k)) + floor_((latency - _num(base)) * _num(steps / base)),
            )
        )
    return case(*whens, else_=literal_column(str(1 + steps * OCTAVES)))


def bucket_edges(bucket: int, steps: int = STEPS) -> tuple[float, float]:
    """[lo, hi) of a bucket, as `latency_bucket` holds them for STEPS (exact binary fractions)."""
    if bucket == 0:
        return 0.0, 1.0
    if bucket > steps * OCTAVES:
        return 2.0**OCTAVES, 1e300
    k, j = divmod(bucket - 1, steps)
    return 2.0**k * (steps + j) / steps, 2.0**k * (steps + j + 1) / steps


def _upsert(conn: Connection, table: Table, query, keys: list[str], measures: list[str], zeros=()) -> None:
    """INSERT ... SELECT that adds to existing rollup rows (ON CONFLICT DO UPDATE on both dialects).
    `zeros` are further columns the query fills with 0 and a conflict leaves alone."""
    make = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    statement = make(table).from_select(keys + measures + list(zeros), query)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={m: table.c[m] + statement.excluded[m] for m in measures}
    )
    conn.execute(statement)


def _fetch(conn: Connection, query, values: dict | None = None) -> tuple[list[str], Sequence[tuple]]:
    """A panel's column names and rows, already aggregated, as the driver's plain tuples:
    SQLAlchemy compiles (from its cache) and executes the statement, but building its Row objects
    for hundreds of rows would cost the page more than SQLite's own work. Only for numbers and
    text: no type conversion happens here."""
    result = conn.execute(query, values)
    try:
        return list(result.keys()), result.cursor.fetchall()
    finally:
        result.close()


def _tuples(conn: Connection, query, values: dict | None = None) -> Sequence[tuple]:
    return _fetch(conn, query, values)[1]


def _dicts(conn: Connection, query, values: dict | None = None) -> list[dict]:
    keys, rows = _fetch(conn, query, values)
    return [dict(zip(keys, row)) for row in rows]


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- keeping the rollups current ----------------------------------------------------------------


def _fold_calls(conn: Connection, where, into: Rollups = STORED, tables=None) -> None:
    """Add the rows of `into.ledger` matching `where` to that set's day rollups (or just `tables`),
    then rebuild the week rows of the weeks they touched. Each table's primary key says how it
    groups; its other columns are measures named alike everywhere."""
    call = into.ledger
    tables = tables or into.rollups
    first, last = conn.execute(select(func.min(call.c.created_at), func.max(call.c.created_at)).where(where)).one()
    if first is None:
        return
    timed = and_(call.c.cached == false(), call.c.latency_ms.is_not(None))
    rows = (
        select(
            (call.c.day if "day" in call.c else day_of(call.c.created_at)).label("day"),
            call.c.model,
            call.c.source,
            func.coalesce(call.c.error_type, "").label("error_type"),
            func.coalesce(call.c.prompt_version_id, 0).label("prompt_version_id"),
            case((call.c.cached, 1), else_=0).label("hit"),
            call.c.cost_usd,
            call.c.input_tokens,
            call.c.output_tokens,
            case((timed, 1), else_=0).label("timed"),
            (call.c.bucket if "bucket" in call.c else bucket_of(call.c.latency_ms)).label("bucket"),
            bucket_of(call.c.latency_ms, FINE_STEPS).label("fine"),
        )
        .where(where)
        .subquery()
    )
    sums = {
        "calls": func.count(),
        "cached": func.sum(rows.c.hit),
        "priced": func.count(rows.c.cost_usd),
        "cost_usd": func.coalesce(func.sum(rows.c.cost_usd), 0.0),
        "n": func.count(),
        "input_tokens": func.coalesce(func.sum(rows.c.input_tokens), 0),
        "output_tokens": func.coalesce(func.sum(rows.c.output_tokens), 0),
    }
    for table in tables:
        keys = [c.name for c in table.primary_key.columns]
        measures = [c.name for c in table.columns if not c.primary_key and c.name in sums]
        zeros = [c.name for c in table.columns if not c.primary_key and c.name not in sums]  # latency_cum's counts
        key_columns = [rows.c.fine if (k == "bucket" and table is into.latency_fine) else rows.c[k] for k in keys]
        query = select(*key_columns, *[sums[m] for m in measures], *[literal_column("0") for _ in zeros])
        if "bucket" in keys:  # histograms count the calls that reached a provider
            query = query.where(rows.c.timed == 1)
        _upsert(conn, table, query.group_by(*key_columns), keys, measures, zeros=zeros)
    if into.latency_cum in tables:
        _recount(conn, into.latency_cum, _day(first), _day(last))
    _fold_weeks(conn, tables, _day(first), _day(last))


# --- week rows ----------------------------------------------------------------------------------
# Each day rollup also holds one row per week and key, `day` = WEEK + the week's Monday (ISO
# weeks, UTC). 'w' sorts after every digit, so a plain day range never sees week rows, and a
# range of weeks is a range of keys. A long date range reads its whole weeks from week rows and
# only the days at its two ends from day rows.

WEEK = "w"


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


class week_of(FunctionElement):
    """The week key of a rollup's 'YYYY-MM-DD' day: 'w' + that week's Monday."""

    type = String()
    inherit_cache = True


@compiles(week_of, "sqlite")
def _week_of_sqlite(element, compiler, **kw):
    return f"'{WEEK}' || date(%s, 'weekday 0', '-6 days')" % compiler.process(element.clauses, **kw)


@compiles(week_of)
def _week_of_default(element, compiler, **kw):
    return f"'{WEEK}' || to_char(date_trunc('week', CAST(%s AS date)), 'YYYY-MM-DD')" % compiler.process(
        element.clauses, **kw
    )


def _fold_weeks(conn: Connection, tables, first_day: str, last_day: str) -> None:
    """Recompute the week rows of every week that has a day in first_day..last_day, from the day rows."""
    first, last = _monday(date.fromisoformat(first_day)), _monday(date.fromisoformat(last_day))
    for table in tables:
        keys = [c for c in table.primary_key.columns if c.name != "day"]
        measures = [c for c in table.columns if not c.primary_key]
        conn.execute(
            delete(table).where(table.c.day >= WEEK + first.isoformat(), table.c.day <= WEEK + last.isoformat())
        )
        week = week_of(table.c.day)
        # A week row's running counts are unused (p95 per day reads day rows): stored as 0.
        sums = [literal_column("0") if c.name in ("cum", "total") else func.sum(c) for c in measures]
        conn.execute(
            table.insert().from_select(
                ["day", *[c.name for c in keys], *[c.name for c in measures]],
                select(week, *keys, *sums)
                .where(table.c.day >= first.isoformat(), table.c.day <= (last + timedelta(days=6)).isoformat())
                .group_by(week, *keys),
            )
        )


def _day(value) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)[:10]


def _recount(conn: Connection, table: Table, first_day: str, last_day: str) -> None:
    """Recompute the running count and total of every (day, model) histogram in those days."""
    days = [table.c.day >= first_day, table.c.day <= last_day]
    group = [table.c.day, table.c.model]
    counted = (
        select(
            *group,
            table.c.bucket,
            func.sum(table.c.n).over(partition_by=group, order_by=table.c.bucket, rows=(None, 0)).label("cum"),
            func.sum(table.c.n).over(partition_by=group).label("total"),
        )
        .where(*days)
        .subquery()
    )
    conn.execute(
        update(table)
        .where(table.c.day == counted.c.day, table.c.model == counted.c.model, table.c.bucket == counted.c.bucket)
        .values(cum=counted.c.cum, total=counted.c.total)
    )


def _lock(conn: Connection, name: str, table: str) -> int:
    """Take the rollup's write lock first (SQLite: the database's; PostgreSQL: the state row, and a
    SHARE lock so no insert with a lower id can still commit), then read its mark."""
    conn.execute(update(rollup_state).where(rollup_state.c.name == name).values(updated_at=utcnow()))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE MODE")
    return conn.execute(select(rollup_state.c.last_id).where(rollup_state.c.name == name)).scalar_one()


def _run_stamp():
    text_of = lambda column: func.coalesce(cast(column, Text), "")  # noqa: E731
    return col(Run.status) + "|" + text_of(col(Run.heartbeat_at)) + "|" + text_of(col(Run.finished_at))


def _dirty_runs(conn: Connection, score_mark: int) -> list[int]:
    stale = (
        select(col(Run.id))
        .outerjoin(rollup_run_state, rollup_run_state.c.run_id == col(Run.id))
        .where(
            or_(
                rollup_run_state.c.stamp.is_(None),
                rollup_run_state.c.stamp != _run_stamp(),
                col(Run.status).not_in(FINAL_RUN_STATUSES),
            )
        )
    )
    rescored = (
        select(col(RunItem.run_id))
        .join(Score, col(Score.run_item_id) == col(RunItem.id))
        .where(col(Score.id) > score_mark)
    )
    found = set(conn.execute(stale).scalars()) | set(conn.execute(rescored).scalars())
    return sorted(run_id for run_id in found if run_id is not None)


def _fold_runs(
    conn: Connection, run_ids: list[int], run: Table = rollup_run, score: Table = rollup_score, stamp: bool = True
) -> None:
    """Recompute the run summaries of `run_ids` from their items and scores (into `run` and `score`:
    the stored rollups, or a read's temporary copies, which keep no stamps)."""
    is_guard = col(Score.scorer_name).startswith("guard_", autoescape=True)
    for chunk in _chunks(run_ids):
        for table in (run, score, rollup_run_state) if stamp else (run, score):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        guards = (
            select(col(Score.run_item_id), func.max(case((col(Score.passed).is_(False), 1), else_=0)).label("failed"))
            .join(RunItem, col(RunItem.id) == col(Score.run_item_id))
            .where(col(RunItem.run_id).in_(chunk), is_guard)
            .group_by(col(Score.run_item_id))
            .subquery()
        )
        blocked = and_(col(RunItem.status) == "blocked", col(RunItem.error_type) == "guardrail")
        keys = [col(RunItem.run_id), col(RunItem.prompt_version_id), col(RunItem.model)]
        conn.execute(
            run.insert().from_select(
                [
                    "run_id",
                    "prompt_version_id",
                    "model",
                    "items",
                    "finished",
                    "errors",
                    "blocked",
                    "guard_checked",
                    "guard_triggered",
                ],
                select(
                    *keys,
                    func.count(),
                    func.sum(case((col(RunItem.status).in_(("done", "error", "blocked")), 1), else_=0)),
                    func.sum(case((col(RunItem.status) == "error", 1), else_=0)),
                    func.sum(case((col(RunItem.status) == "blocked", 1), else_=0)),
                    func.sum(case((or_(guards.c.run_item_id.is_not(None), blocked), 1), else_=0)),
                    func.sum(case((or_(guards.c.failed == 1, blocked), 1), else_=0)),
                )
                .outerjoin(guards, guards.c.run_item_id == col(RunItem.id))
                .where(col(RunItem.run_id).in_(chunk))
                .group_by(*keys),
            )
        )
        conn.execute(
            score.insert().from_select(
                [
                    "run_id",
                    "prompt_version_id",
                    "model",
                    "scorer_name",
                    "n",
                    "n_value",
                    "sum_value",
                    "n_verdict",
                    "n_passed",
                    "n_error",
                ],
                select(
                    *keys,
                    col(Score.scorer_name),
                    func.count(),
                    func.count(col(Score.value)),
                    func.coalesce(func.sum(col(Score.value)), 0.0),
                    func.count(col(Score.passed)),
                    func.sum(case((col(Score.passed).is_(True), 1), else_=0)),
                    func.count(col(Score.error)),
                )
                .join(RunItem, col(RunItem.id) == col(Score.run_item_id))
                .where(col(RunItem.run_id).in_(chunk))
                .group_by(*keys, col(Score.scorer_name)),
            )
        )
        if stamp:
            conn.execute(
                rollup_run_state.insert().from_select(
                    ["run_id", "stamp"], select(col(Run.id), _run_stamp()).where(col(Run.id).in_(chunk))
                )
            )


@dataclass(frozen=True)
class Pending:
    """What the stored rollups do not hold yet: ledger rows with ids in (mark, top], runs to re-fold."""

    mark: int
    top: int
    runs: tuple[int, ...]

    @property
    def stale(self) -> bool:
        return self.top > self.mark or bool(self.runs)


def pending(conn: Connection) -> Pending:
    """Read-only: how far the rollups are behind the ledger and the runs."""
    marks = dict(conn.execute(select(rollup_state.c.name, rollup_state.c.last_id)).all())
    top = conn.execute(select(func.max(call.c.id))).scalar() or 0
    return Pending(marks["llm_call"], max(top, marks["llm_call"]), tuple(_dirty_runs(conn, marks["score"])))


@contextmanager
def connection():
    """A connection for a few reads."""
    with db.engine().connect() as conn:
        yield conn


@contextmanager
def snapshot():
    """A connection whose reads all see one state of the database, so the stored rollups, the mark
    and the ledger rows past it agree (SQLite: one read transaction, begun here because the driver
    only begins before writes; PostgreSQL: REPEATABLE READ). It ends in a rollback: temporary tables
    made on it go away, and nothing is ever committed to the database."""
    with db.engine().connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield conn
        finally:
            conn.rollback()


def refresh(engine: Engine | None = None) -> int:
    """Bring every rollup up to date; returns the ledger id they now cover (reads use it as a snapshot).

    A read-only look first: when nothing changed (the usual case) no write lock is taken."""
    engine = engine or db.engine()
    with engine.connect() as conn:
        marks = dict(conn.execute(select(rollup_state.c.name, rollup_state.c.last_id)).all())
        top_call = conn.execute(select(func.max(call.c.id))).scalar() or 0
        runs_dirty = bool(_dirty_runs(conn, marks["score"]))
    mark = marks["llm_call"]
    if top_call > mark:
        with engine.begin() as conn:
            mark = _lock(conn, "llm_call", "llm_call")
            top = conn.execute(select(func.max(call.c.id))).scalar() or 0
            if top > mark:
                _fold_calls(conn, and_(call.c.id > mark, call.c.id <= top))
                conn.execute(update(rollup_state).where(rollup_state.c.name == "llm_call").values(last_id=top))
                mark = top
    if runs_dirty:
        with engine.begin() as conn:
            score_mark = _lock(conn, "score", "score")
            top = conn.execute(select(func.max(col(Score.id)))).scalar() or 0
            _fold_runs(conn, _dirty_runs(conn, score_mark))
            conn.execute(
                update(rollup_state).where(rollup_state.c.name == "score").values(last_id=max(top, score_mark))
            )
    return mark


def rebuild_model(conn: Connection, model: str) -> None:
    """Recompute one model's spend rollups after its past costs were rewritten, inside the caller's
    transaction (which already holds the write lock through its UPDATE of llm_call)."""
    mark = conn.execute(select(rollup_state.c.last_id).where(rollup_state.c.name == "llm_call")).scalar_one()
    spend = (rollup_call, rollup_version, rollup_version_model)
    for table in spend:
        conn.execute(delete(table).where(table.c.model == model))
    # Week rows are rebuilt from day rows, so the other models' weeks come back unchanged.
    _fold_calls(conn, and_(call.c.model == model, call.c.id <= mark), tables=spend)


# --- what a panel is asked for ------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Filters in SQL terms. Days are inclusive 'YYYY-MM-DD' (UTC); empty tuples mean "all";
    version_ids None means any version; upto is the ledger id the rollups cover; rollups is the
    set the panels read (the stored one, or a narrow page's temporary copies)."""

    first_day: str
    last_day: str
    upto: int
    models: tuple = ()
    sources: tuple = ()
    version_ids: tuple | None = None
    run_id: int | None = None
    rollups: Rollups = STORED

    @property
    def narrow(self) -> bool:
        """Whether no stored rollup has the keys to answer it (a run, or a version and a source)."""
        return self.run_id is not None or (self.version_ids is not None and bool(self.sources))

    def bounds(self) -> tuple[datetime, datetime]:
        """[first day 00:00, day after the last 00:00) in UTC."""
        first = datetime.combine(date.fromisoformat(self.first_day), dtime(), UTC)
        return first, datetime.combine(date.fromisoformat(self.last_day), dtime(), UTC) + timedelta(days=1)


def shape(scope: Scope) -> tuple:
    """What decides the structure of a panel's statement for this scope; the rest (days, ids,
    the models and versions picked) are bound values. Statements are built once per shape."""
    return (
        scope.rollups,
        len(_periods(scope)),
        bool(scope.models),
        tuple(sorted(scope.sources)),
        scope.version_ids is not None,
        scope.run_id is not None,
    )


def params(scope: Scope) -> dict:
    """The bound values of every statement built for the scope's shape."""
    first_at, after_at = scope.bounds()
    values = {
        "first_day": scope.first_day,
        "last_day": scope.last_day,
        "first_at": first_at,
        "after_at": after_at,
        "upto": scope.upto,
        "models": list(scope.models),
        "sources": list(scope.sources),
        "versions": list(scope.version_ids or ()),
        "run_id": scope.run_id,
    }
    for i, (lo, hi) in enumerate(_periods(scope)):
        values[f"lo{i}"], values[f"hi{i}"] = lo, hi
    return values


_statements: dict = {}


def _prepared(key: tuple, build):
    """The statement for `key` (a panel and a shape), built on first use. Building a statement and
    working out its cache key costs SQLAlchemy more than SQLite takes to run most panels, and a
    page asks the same shapes again on every rerun."""
    statement = _statements.get(key)
    if statement is None:
        if len(_statements) > 5000:  # shapes are few; a bound against a leak all the same
            _statements.clear()
        statement = _statements[key] = build()
    return statement


def _in(column, name: str):
    return column.in_(bindparam(name, expanding=True))


def ledger_where(scope: Scope, ledger: Table = call) -> list:
    """The scope as conditions on the ledger (llm_call, or a narrow page's copy of its calls)."""
    where = [
        ledger.c.created_at >= bindparam("first_at"),
        ledger.c.created_at < bindparam("after_at"),
        ledger.c.id <= bindparam("upto"),
    ]
    if scope.models:
        where.append(_in(ledger.c.model, "models"))
    if scope.sources:
        where.append(_in(ledger.c.source, "sources"))
    if scope.version_ids is not None:
        where.append(_in(ledger.c.prompt_version_id, "versions"))
    if scope.run_id is not None:
        where.append(ledger.c.run_id == bindparam("run_id"))
    return where


def build_narrow(conn: Connection, scope: Scope, runs: tuple[int, ...] = ()) -> Scope:
    """Copy a narrow scope's calls (all of `scope`'s days; one pass over the ledger through its
    indexes) into temporary tables on this connection and fold them into temporary rollups;
    returns the scope reading those. `drop_narrow` removes them. With `runs` (runs changed since
    the last refresh), the run summaries are read from temporary copies with those runs recomputed.
    Only TEMPORARY tables are written: the database itself is not (no write lock is taken)."""
    drop_narrow(conn)
    for table in NARROW_TABLES:
        table.create(conn)
    rollups = _with_runs(conn, NARROW, runs)
    conn.execute(
        NARROW.ledger.insert().from_select(
            [*CALL_COLUMNS, "day", "bucket"],
            select(
                *[call.c[name] for name in CALL_COLUMNS], day_of(call.c.created_at), bucket_of(call.c.latency_ms)
            ).where(*ledger_where(scope)),
        ),
        params(scope),
    )
    _fold_calls(conn, true(), into=NARROW)
    return replace(scope, rollups=rollups)


def _with_runs(conn: Connection, rollups: Rollups, runs: tuple[int, ...]) -> Rollups:
    """`rollups` reading run summaries from temporary copies with `runs` recomputed (when there are any)."""
    if not runs:
        return rollups
    run, score = NARROW_RUNS
    for temp, stored in ((run, rollup_run), (score, rollup_score)):
        temp.create(conn)
        conn.execute(
            temp.insert().from_select(list(stored.c.keys()), select(stored).where(stored.c.run_id.not_in(runs)))
        )
    _fold_runs(conn, list(runs), run, score, stamp=False)
    return replace(rollups, run=run, score=score)


def build_delta(conn: Connection, scope: Scope, behind: Pending) -> Scope:
    """A stored scope that also reads what the stored rollups do not hold yet: ledger rows with ids in
    (mark, top] folded into temporary DELTA rollups, and the changed runs recomputed into temporary
    run summaries. Writes only TEMPORARY tables; `drop_narrow` removes them."""
    drop_narrow(conn)
    rollups = scope.rollups
    if behind.top > behind.mark:
        for table in DELTA.rollups:
            table.create(conn)
        _fold_calls(conn, and_(call.c.id > behind.mark, call.c.id <= behind.top), into=DELTA)
        rollups = replace(rollups, delta=True)
    return replace(scope, rollups=_with_runs(conn, rollups, behind.runs))


def drop_narrow(conn: Connection) -> None:
    for table in (*NARROW_TABLES, *NARROW_RUNS, *DELTA.rollups):
        table.drop(conn, checkfirst=True)


def rollups_for(scope: Scope) -> Scope:
    """The scope reading the stored rollups that hold its keys: the version-keyed ones for a
    prompt or version filter. (A narrow scope gets its own from `build_narrow`.)"""
    return replace(scope, rollups=VERSIONED if scope.version_ids is not None and not scope.narrow else STORED)


def _periods(scope: Scope) -> list[tuple[str, str]]:
    """The scope's days as inclusive ranges of rollup keys: its whole weeks as one range of week
    rows and the days at either end as day rows."""
    first, last = date.fromisoformat(scope.first_day), date.fromisoformat(scope.last_day)
    week_first = _monday(first + timedelta(days=6))  # the first Monday on or after `first`
    week_last = _monday(last + timedelta(days=1)) - timedelta(days=7)  # Monday of the last whole week
    if week_first > week_last:
        return [(scope.first_day, scope.last_day)]
    ranges = [(WEEK + week_first.isoformat(), WEEK + week_last.isoformat())]
    if first < week_first:
        ranges.append((scope.first_day, (week_first - timedelta(days=1)).isoformat()))
    if week_last + timedelta(days=6) < last:
        ranges.append(((week_last + timedelta(days=7)).isoformat(), scope.last_day))
    return ranges


def _keys_where(table, scope: Scope, period: int | None) -> list:
    """One range of rollup keys (period i of `_periods`, or None: the plain days), and the model,
    source and prompt version conditions, on a rollup."""
    lo, hi = ("first_day", "last_day") if period is None else (f"lo{period}", f"hi{period}")
    where = [table.c.day >= bindparam(lo), table.c.day <= bindparam(hi)]
    if scope.models:
        where.append(_in(table.c.model, "models"))
    if scope.sources:
        where.append(_in(table.c.source, "sources"))
    if scope.version_ids is not None and "prompt_version_id" in table.c:
        where.append(_in(table.c.prompt_version_id, "versions"))
    return where


def _rows(table, scope: Scope, columns=None, weeks: bool = True):
    """The scope's rows of a rollup as a subquery: one range read per period, UNION ALL (an OR of
    ranges would make SQLite collect and de-duplicate the keys of every row first). Without
    weeks, just the day rows (for panels by day)."""
    columns = [table.c[name] for name in columns] if columns else list(table.c)
    periods = range(len(_periods(scope))) if weeks else [None]
    parts = [select(*columns).where(*_keys_where(table, scope, period)) for period in periods]
    if scope.rollups.delta:  # the newer ledger rows' day rows (their weeks are not in the stored week rows)
        delta = DELTA_OF[table.name]
        parts.append(select(*[delta.c[c.name] for c in columns]).where(*_keys_where(delta, scope, None)))
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


def _calls(scope: Scope, weeks: bool = True):
    return _rows(scope.rollups.call, scope, weeks=weeks)


def _histogram(scope: Scope, weeks: bool = True):
    """(day, model, bucket, n) rows for the scope; by source only when the scope picks sources."""
    table = scope.rollups.latency if scope.sources else scope.rollups.latency_cum
    return _rows(table, scope, ["day", "model", "bucket", "n"], weeks)


def _runs(scope: Scope, table):
    """Run summaries for runs created in the scope's days (items are judged by their run's start)."""
    where = [col(Run.created_at) >= bindparam("first_at"), col(Run.created_at) < bindparam("after_at")]
    if scope.models:
        where.append(_in(table.c.model, "models"))
    if scope.version_ids is not None:
        where.append(_in(table.c.prompt_version_id, "versions"))
    if scope.run_id is not None:
        where.append(table.c.run_id == bindparam("run_id"))
    if scope.sources and "run" not in scope.sources:
        where.append(false())
    return where


# --- panels -------------------------------------------------------------------------------------
# Each panel builds its statement from the scope's shape only (see `_prepared`) and runs it with
# the scope's `params`.

TOTALS = (
    "calls",
    "cached",
    "errors",
    "unpriced",
    "priced",
    "cost_usd",
    "eval_cost_usd",
    "input_tokens",
    "output_tokens",
    "items_finished",
    "items_blocked",
    "guard_checked",
    "guard_triggered",
)


def _totals_statement(scope: Scope):
    c = _calls(scope)
    ok = c.c.error_type == ""
    ledger = select(
        func.sum(c.c.calls),
        func.sum(c.c.cached),
        func.sum(case((ok, 0), else_=c.c.calls)),
        func.sum(case((ok, c.c.calls - c.c.priced), else_=0)),
        func.sum(c.c.priced),
        func.sum(c.c.cost_usd),
        func.sum(case((c.c.source.in_(EVAL_SOURCES), c.c.cost_usd), else_=0.0)),
        func.sum(c.c.input_tokens),
        func.sum(c.c.output_tokens),
    ).subquery()
    items = (
        select(
            func.sum(scope.rollups.run.c.finished),
            func.sum(scope.rollups.run.c.blocked),
            func.sum(scope.rollups.run.c.guard_checked),
            func.sum(scope.rollups.run.c.guard_triggered),
        )
        .select_from(scope.rollups.run.join(Run, col(Run.id) == scope.rollups.run.c.run_id))
        .where(*_runs(scope, scope.rollups.run))
        .subquery()
    )
    return select(ledger, items).select_from(ledger.join(items, true()))  # two one-row aggregates, one round trip


def totals(conn: Connection, *scopes: Scope) -> list[dict]:
    """Per scope (e.g. this period and the previous): calls, cache hits, errors, unpriced and priced
    calls, spend (all, and on evals), tokens, and run items finished, blocked, checked by a
    guardrail and triggering one. (A plain range query per period beats one pass with CASEs.)"""
    out = []
    for scope in scopes:
        statement = _prepared(("totals", shape(scope)), lambda: _totals_statement(scope))
        row = _tuples(conn, statement, params(scope))[0]
        out.append({k: (float(v or 0) if k.endswith("usd") else int(v or 0)) for k, v in zip(TOTALS, row)})
    return out


def _spend_statement(scope: Scope, month: bool):
    c = _calls(scope, weeks=False)
    period = func.substr(c.c.day, literal_column("1"), literal_column("7")) if month else c.c.day
    return (
        select(period.label("period"), c.c.model, func.sum(c.c.cost_usd), func.sum(c.c.calls))
        .group_by(period, c.c.model)
        .order_by(period, c.c.model)
    )


def spend_by_day(conn: Connection, scope: Scope, month: bool = False) -> list[dict]:
    statement = _prepared(("spend", month, shape(scope)), lambda: _spend_statement(scope, month))
    return [
        {"period": p, "model": m, "cost_usd": float(cost or 0), "calls": int(n)}
        for p, m, cost, n in _tuples(conn, statement, params(scope))
    ]


def _tokens_statement(scope: Scope):
    c = _calls(scope)
    return (
        select(
            c.c.model,
            func.sum(c.c.input_tokens),
            func.sum(c.c.output_tokens),
            func.sum(c.c.calls),
            func.sum(c.c.priced),
            func.sum(c.c.cost_usd),
        )
        .group_by(c.c.model)
        .order_by(c.c.model)
    )


def tokens_by_model(conn: Connection, scope: Scope) -> list[dict]:
    statement = _prepared(("tokens", shape(scope)), lambda: _tokens_statement(scope))
    return [
        {
            "model": m,
            "input_tokens": int(i or 0),
            "output_tokens": int(o or 0),
            "calls": int(n),
            "priced": int(priced),
            "cost_usd": float(cost) if priced else None,
        }
        for m, i, o, n, priced, cost in _tuples(conn, statement, params(scope))
    ]


def _errors_statement(scope: Scope):
    c = _calls(scope)
    return (
        select(c.c.error_type, c.c.model, func.sum(c.c.calls))
        .where(c.c.error_type != "")
        .group_by(c.c.error_type, c.c.model)
        .order_by(c.c.error_type, c.c.model)
    )


def errors_by_type(conn: Connection, scope: Scope) -> list[dict]:
    statement = _prepared(("errors", shape(scope)), lambda: _errors_statement(scope))
    return [{"error_type": e, "model": m, "calls": int(n)} for e, m, n in _tuples(conn, statement, params(scope))]


def _versions_statement(scope: Scope):
    slim = scope.rollups.version_model
    source = scope.rollups.version if scope.sources or slim is None else slim  # the slim one has no source
    table = _rows(source, scope, ["prompt_version_id", "model", "calls", "priced", "cost_usd"])
    grouped = (
        select(
            table.c.prompt_version_id,
            table.c.model,
            func.sum(table.c.calls).label("calls"),
            func.sum(table.c.priced).label("priced"),
            func.sum(table.c.cost_usd).label("cost_usd"),
        )
        .group_by(table.c.prompt_version_id, table.c.model)
        .subquery()
    )
    return (
        select(grouped, col(Prompt.name), col(PromptVersion.version))
        .outerjoin(PromptVersion, col(PromptVersion.id) == grouped.c.prompt_version_id)
        .outerjoin(Prompt, col(Prompt.id) == col(PromptVersion.prompt_id))
        .order_by(grouped.c.prompt_version_id, grouped.c.model)
    )


def cost_by_version(conn: Connection, scope: Scope) -> list[dict]:
    """Spend per prompt version and model, labelled `prompt vN` (version 0 = calls without one)."""
    statement = _prepared(("versions", shape(scope)), lambda: _versions_statement(scope))
    return [
        {
            "prompt_version_id": pv_id,
            "prompt": prompt,
            "version": version,
            "model": model,
            "calls": int(calls),
            "priced": int(priced),
            "cost_usd": float(cost or 0),
        }
        for pv_id, model, calls, priced, cost, prompt, version in _tuples(conn, statement, params(scope))
    ]


def _uses_fine(scope: Scope) -> bool:
    return scope.rollups.latency_fine is not None and not (
        scope.models or scope.sources or scope.version_ids is not None
    )


def _rank_histogram_statement(scope: Scope):
    h = _rows(scope.rollups.latency_fine, scope, ["bucket", "n"]) if _uses_fine(scope) else _histogram(scope)
    return select(h.c.bucket, func.sum(h.c.n)).group_by(h.c.bucket).order_by(h.c.bucket)


def _rank_histogram(conn: Connection, scope: Scope) -> list[tuple[float, float, int, int]]:
    """(lo, hi, n, running count) per non-empty bucket, in order, of the histogram that counts
    exactly the scope's timed calls: the fine one when nothing but dates is filtered (narrow
    buckets, short walks), else the coarse one with the scope's keys."""
    steps = FINE_STEPS if _uses_fine(scope) else STEPS
    statement = _prepared(("rank histogram", shape(scope)), lambda: _rank_histogram_statement(scope))
    running, out = 0, []
    for bucket, n in _tuples(conn, statement, params(scope)):
        running += int(n)
        out.append((*bucket_edges(bucket, steps), int(n), running))
    return out


def _lookups_statement(scope: Scope, descending: tuple[bool, ...]):
    """One ordered lookup per quantile i (bound q{i}_lo, q{i}_hi and q{i}_offset), in one SELECT."""
    ledger = scope.rollups.ledger
    lookups = []
    for i, desc in enumerate(descending):
        ordered = ledger.c.latency_ms.desc() if desc else ledger.c.latency_ms
        lookups.append(
            select(ledger.c.latency_ms)
            .where(
                *ledger_where(scope, ledger),
                ledger.c.cached == false(),
                ledger.c.latency_ms >= bindparam(f"q{i}_lo"),
                ledger.c.latency_ms < bindparam(f"q{i}_hi"),
            )
            .order_by(ordered)
            .limit(1)
            .offset(bindparam(f"q{i}_offset"))
            .scalar_subquery()
        )
    return select(*lookups)


def exact_percentiles(conn: Connection, *scopes: Scope, quantiles=(0.5, 0.95, 0.99)) -> list[dict]:
    """Per scope, nearest-rank percentiles (the value at rank ceil(q*N)) of the calls that reached a
    provider.

    The histogram says which bucket holds that rank and how far into it; one ordered lookup on
    the ledger's latency index reads the row. Both count exactly the same rows (ids <= upto)."""
    out = []
    for scope in scopes:
        buckets = _rank_histogram(conn, scope)
        total = buckets[-1][3] if buckets else 0
        if not total:
            out.append(dict.fromkeys(quantiles))
            continue
        values, descending = params(scope), []
        for i, q in enumerate(quantiles):
            rank = min(total, max(1, math.ceil(q * total - 1e-9)))
            lo, hi, n, running = next(b for b in buckets if b[3] >= rank)
            offset = rank - (running - n) - 1
            desc = offset > n // 2  # walk in from the nearer end of the bucket
            values.update({f"q{i}_lo": lo, f"q{i}_hi": hi, f"q{i}_offset": n - 1 - offset if desc else offset})
            descending.append(desc)
        statement = _prepared(
            ("lookups", tuple(descending), shape(scope)), lambda: _lookups_statement(scope, tuple(descending))
        )
        out.append(dict(zip(quantiles, _tuples(conn, statement, values)[0])))
    return out


def _interpolate(target, before, n, bucket, lo, hi):
    """Where q*N falls inside its bucket, linearly (the open last bucket reports its lower edge)."""
    return case((bucket == LAST_BUCKET, lo), else_=lo + (target - before) * (hi - lo) / n)


def _grouped_histogram_statement(h, group: list[str]):
    cols = [h.c[g] for g in group]
    return select(*cols, h.c.bucket, func.sum(h.c.n)).group_by(*cols, h.c.bucket).order_by(*cols, h.c.bucket)


def _histogram_quantiles(
    conn: Connection, key: tuple, scope: Scope, group: list[str], quantiles, weeks: bool = True
) -> list[dict]:
    """Quantiles per group (e.g. per model) read off the scope's histogram: SQL sums it per group
    and bucket (a few hundred bins, whatever the number of calls), then each quantile is placed
    inside the bin that holds q*N, linearly (the open last bin reports its lower edge). Running
    counts over those bins by window functions cost SQLite more than the whole rest of a page."""
    statement = _prepared((key, shape(scope)), lambda: _grouped_histogram_statement(_histogram(scope, weeks), group))
    out, width = [], len(group)

    def place(keys, bins):
        total = sum(n for _, n in bins)
        for q in quantiles:
            target, before = q * total, 0
            for bucket, n in bins:
                if before + n >= target:
                    lo, hi = bucket_edges(bucket)
                    value = lo if bucket == LAST_BUCKET else lo + (target - before) * (hi - lo) / n
                    out.append({**dict(zip(group, keys)), "q": q, "value": value, "total": total})
                    break
                before += n

    current: tuple | None = None
    bins: list = []
    for row in _tuples(conn, statement, params(scope)):
        keys = row[:width]
        if keys != current and bins:
            place(current, bins)
            bins = []
        current = keys
        bins.append((row[width], int(row[width + 1])))
    if bins:
        place(current, bins)
    return out


def latency_quantiles_by_model(conn: Connection, scope: Scope, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)) -> list[dict]:
    return _histogram_quantiles(conn, ("model histogram",), scope, ["model"], quantiles)


def _day_quantile_statement(scope: Scope, quantile: float):
    t = scope.rollups.latency_cum
    target = _num(quantile) * t.c.total
    value = _interpolate(target, t.c.cum - t.c.n, t.c.n, t.c.bucket, latency_bucket.c.lo, latency_bucket.c.hi)
    return (
        select(t.c.day, t.c.model, _num(quantile).label("q"), value.label("value"), t.c.total)
        .join(latency_bucket, latency_bucket.c.bucket == t.c.bucket)
        .where(*_keys_where(t, scope, None), t.c.cum >= target, t.c.cum - t.c.n < target)
        .order_by(t.c.day, t.c.model)
    )


def latency_quantile_by_day(conn: Connection, scope: Scope, quantile: float = 0.95) -> list[dict]:
    """One quantile per day and model. Without a source filter it is read straight off the stored
    running counts of each (day, model) histogram."""
    if scope.sources or "cum" not in scope.rollups.latency_cum.c or scope.rollups.delta:
        return _histogram_quantiles(conn, ("day histogram",), scope, ["day", "model"], [quantile], weeks=False)
    statement = _prepared(("day quantile", quantile, shape(scope)), lambda: _day_quantile_statement(scope, quantile))
    return _dicts(conn, statement, params(scope))


def _quality_statement(scope: Scope):
    s = scope.rollups.score
    keys = [
        s.c.run_id,
        col(Run.name),
        s.c.prompt_version_id,
        col(Prompt.name),
        col(PromptVersion.version),
        s.c.scorer_name,
    ]
    return (
        select(
            *keys,
            func.sum(s.c.n),
            func.sum(s.c.n_value),
            func.sum(s.c.sum_value),
            func.sum(s.c.n_verdict),
            func.sum(s.c.n_passed),
            func.sum(s.c.n_error),
        )
        .select_from(s)
        .join(Run, col(Run.id) == s.c.run_id)
        .join(PromptVersion, col(PromptVersion.id) == s.c.prompt_version_id)
        .join(Prompt, col(Prompt.id) == col(PromptVersion.prompt_id))
        .where(*_runs(scope, s))
        .group_by(*keys)
        .order_by(s.c.run_id, s.c.scorer_name, s.c.prompt_version_id)
    )


def run_quality(conn: Connection, scope: Scope) -> list[dict]:
    """Per run (in run order), prompt version and scorer: count, mean score and pass rate."""
    statement = _prepared(("quality", shape(scope)), lambda: _quality_statement(scope))
    out = []
    for run_id, run_name, pv_id, prompt, version, scorer, n, n_value, total, n_verdict, n_passed, n_error in _tuples(
        conn, statement, params(scope)
    ):
        out.append(
            {
                "run_id": run_id,
                "run": run_name,
                "prompt_version_id": pv_id,
                "prompt": prompt,
                "version": version,
                "scorer": scorer,
                "n": int(n),
                "mean": float(total) / n_value if n_value else None,
                "pass_rate": float(n_passed) / n_verdict if n_verdict else None,
                "errors": int(n_error),
            }
        )
    return out


def _calls_page_statements(scope: Scope, by_model: bool, by_error: bool):
    ledger = scope.rollups.ledger
    where = ledger_where(scope, ledger)
    c = _calls(scope)
    conditions = []
    if by_model:
        where.append(ledger.c.model == bindparam("page_model"))
        conditions.append(c.c.model == bindparam("page_model"))
    if by_error:
        where.append(ledger.c.error_type == bindparam("page_error"))
        conditions.append(c.c.error_type == bindparam("page_error"))
    page = (
        select(*[ledger.c[name] for name in CALL_COLUMNS])
        .where(*where)
        .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
        .limit(bindparam("page_limit"))
        .offset(bindparam("page_offset"))
    )
    return page, select(func.coalesce(func.sum(c.c.calls), 0)).where(*conditions)


def calls_page(
    conn: Connection, scope: Scope, limit: int, offset: int, model: str | None = None, error_type: str | None = None
) -> tuple[list[dict], int]:
    """One page of the scope's calls, newest first, and how many there are in all."""
    page, count = _prepared(
        ("calls page", bool(model), bool(error_type), shape(scope)),
        lambda: _calls_page_statements(scope, bool(model), bool(error_type)),
    )
    values = {
        **params(scope),
        "page_model": model,
        "page_error": error_type,
        "page_limit": limit,
        "page_offset": offset,
    }
    rows = [dict(r._mapping) for r in conn.execute(page, values)]  # through SQLAlchemy: it converts the timestamps
    return rows, int(_tuples(conn, count, values)[0][0])


def spend_between(conn: Connection, first_day: str, last_day: str, mark: int | None = None) -> float:
    """All spend on the days first_day..last_day (for budgets: no filters). With `mark` (the ledger id
    the rollups hold), the spend of later ledger rows is read from the ledger and added: exact
    without folding anything."""
    spent = conn.execute(
        select(func.coalesce(func.sum(rollup_call.c.cost_usd), 0.0)).where(
            rollup_call.c.day >= first_day, rollup_call.c.day <= last_day
        )
    ).scalar_one()
    if mark is not None:
        first = datetime.combine(date.fromisoformat(first_day), dtime(), UTC)
        after = datetime.combine(date.fromisoformat(last_day), dtime(), UTC) + timedelta(days=1)
        spent += conn.execute(
            select(func.coalesce(func.sum(call.c.cost_usd), 0.0)).where(
                call.c.id > mark, call.c.created_at >= first, call.c.created_at < after
            )
        ).scalar_one()
    return float(spent)


def prompt_choices(conn: Connection) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    query = (
        select(col(Prompt.name), col(PromptVersion.version))
        .join(PromptVersion, col(PromptVersion.prompt_id) == col(Prompt.id))
        .order_by(col(Prompt.name), col(PromptVersion.version))
    )
    for name, version in conn.execute(query):
        out.setdefault(name, []).append(version)
    return out


def run_choices(conn: Connection, limit: int = 500) -> list[tuple[int, str]]:
    query = select(col(Run.id), col(Run.name)).order_by(col(Run.id).desc()).limit(limit)
    return [(run_id, name) for run_id, name in conn.execute(query) if run_id is not None]  # ids are never NULL


def known_models(conn: Connection, mark: int | None = None) -> list[str]:
    """Every model in the rollups, and (with `mark`) in the ledger rows they do not hold yet."""
    weeks = rollup_call.c.day >= WEEK  # every model has week rows, and there are 7x fewer of them
    found = {m for (m,) in _tuples(conn, select(rollup_call.c.model).where(weeks).distinct())}
    if mark is not None:
        found |= {m for (m,) in _tuples(conn, select(call.c.model).where(call.c.id > mark).distinct())}
    return sorted(found)


def version_ids(conn: Connection, prompt: str, version: int | None = None) -> tuple:
    query = (
        select(col(PromptVersion.id))
        .join(Prompt, col(Prompt.id) == col(PromptVersion.prompt_id))
        .where(col(Prompt.name) == prompt)
    )
    if version is not None:
        query = query.where(col(PromptVersion.version) == version)
    return tuple(conn.execute(query.order_by(col(PromptVersion.id))).scalars())
