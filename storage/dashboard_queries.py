"""The Dashboard's SQL: rollups of the call ledger, kept current incrementally, and one query per panel.

Why rollups. At a million calls a plain GROUP BY over `llm_call` takes over a second per panel
on SQLite and the page has a dozen panels, so the ledger is folded into small tables (made by
migration 3) and the panels read those:

- `rollup_call` (day, model, source, error_type): calls, cache hits, priced calls, spend, tokens;
- `rollup_version` (day, prompt version, model, source): calls, spend, tokens;
- `rollup_latency` (day, model, source, bucket): a latency histogram of the calls that reached a
  provider (not cache hits), 8 buckets per power of two (each at most 12.5% wide);
- `rollup_run` and `rollup_score` (run, prompt version, model[, scorer]): item, guardrail and
  score summaries.

How they stay current. The ledger is append-only, so `refresh()` folds the rows with ids past
`rollup_state.last_id` into the day rollups (an upsert that adds) and moves the mark; it is called
before every read and costs two index lookups when nothing is new. The one rewrite of past calls,
a cost recompute, rebuilds that model's rollups in the same transaction (`rebuild_model`). Run
summaries are recomputed per run whenever the run's stamp (status, heartbeat, finish) changed,
while it is not finished, or when it got new scores (re-scoring replaces scores with new ids).

Filters on date, models and sources are rollup keys. A prompt, version or run filter is narrow:
those panels aggregate the ledger directly through its indexes, with the same query shapes.

Percentiles. The headline p50/p95/p99 are exact nearest-rank values: the histogram gives the
bucket holding rank ceil(q*N) and the row's offset inside it, and one ordered lookup on the
covering index `ix_llm_call_latency` reads that row (never an average of averages). Per-model
boxes and p95 over time are read from the same histogram with window functions in SQL,
interpolated inside the bucket (error under one bucket width).

Everything is SQLAlchemy Core and runs on SQLite and PostgreSQL; the two dialect differences
(a timestamp's day, floor) are small compiled helpers below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta

from sqlalchemy import (Column, DateTime, Float, Integer, MetaData, String, Table, Text, and_, case, cast, delete,
                        false, func, literal, literal_column, or_, select, true, union_all, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from storage.tables import LlmCall, Prompt, PromptVersion, Run, RunItem, Score, utcnow

FINAL_RUN_STATUSES = ("done", "failed", "cancelled", "budget_exceeded")
STEPS = 8  # latency buckets per power of two (must match migration 3's latency_bucket rows)
OCTAVES = 20  # 1 ms .. 2^20 ms; above that one open bucket
LAST_BUCKET = 1 + STEPS * OCTAVES
EVAL_SOURCES = ("run", "judge")

meta = MetaData()
rollup_state = Table("rollup_state", meta, Column("name", Text, primary_key=True), Column("last_id", Integer),
                     Column("updated_at", DateTime))
rollup_call = Table(
    "rollup_call", meta, Column("day", Text, primary_key=True), Column("model", Text, primary_key=True),
    Column("source", Text, primary_key=True), Column("error_type", Text, primary_key=True),
    Column("calls", Integer), Column("cached", Integer), Column("priced", Integer), Column("cost_usd", Float),
    Column("input_tokens", Integer), Column("output_tokens", Integer))
rollup_version = Table(
    "rollup_version", meta, Column("day", Text, primary_key=True), Column("prompt_version_id", Integer, primary_key=True),
    Column("model", Text, primary_key=True), Column("source", Text, primary_key=True),
    Column("calls", Integer), Column("priced", Integer), Column("cost_usd", Float),
    Column("input_tokens", Integer), Column("output_tokens", Integer))
latency_bucket = Table("latency_bucket", meta, Column("bucket", Integer, primary_key=True), Column("lo", Float),
                       Column("hi", Float))
rollup_latency = Table(
    "rollup_latency", meta, Column("day", Text, primary_key=True), Column("model", Text, primary_key=True),
    Column("source", Text, primary_key=True), Column("bucket", Integer, primary_key=True), Column("n", Integer))
rollup_run = Table(
    "rollup_run", meta, Column("run_id", Integer, primary_key=True), Column("prompt_version_id", Integer, primary_key=True),
    Column("model", Text, primary_key=True), Column("items", Integer), Column("finished", Integer),
    Column("errors", Integer), Column("blocked", Integer), Column("guard_checked", Integer),
    Column("guard_triggered", Integer))
rollup_score = Table(
    "rollup_score", meta, Column("run_id", Integer, primary_key=True), Column("prompt_version_id", Integer, primary_key=True),
    Column("model", Text, primary_key=True), Column("scorer_name", Text, primary_key=True), Column("n", Integer),
    Column("n_value", Integer), Column("sum_value", Float), Column("n_verdict", Integer), Column("n_passed", Integer),
    Column("n_error", Integer))
rollup_run_state = Table("rollup_run_state", meta, Column("run_id", Integer, primary_key=True), Column("stamp", Text))

call = LlmCall.__table__


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


def bucket_of(latency):
    """The `latency_bucket` a latency in ms falls in. Powers of two keep the arithmetic exact, so a
    row is in bucket b exactly when lo(b) <= latency < hi(b)."""
    whens = [(latency < _num(1), literal_column("0"))]
    for k in range(OCTAVES):
        base = 2.0 ** k
        whens.append((latency < _num(2 * base),
                      literal_column(str(1 + STEPS * k)) + floor_((latency - _num(base)) * _num(STEPS / base))))
    return case(*whens, else_=literal_column(str(LAST_BUCKET)))


def _upsert(conn: Connection, table: Table, query, keys: list[str], measures: list[str]) -> None:
    """INSERT ... SELECT that adds to existing rollup rows (ON CONFLICT DO UPDATE on both dialects)."""
    make = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    statement = make(table).from_select(keys + measures, query)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={m: table.c[m] + statement.excluded[m] for m in measures})
    conn.execute(statement)


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


# --- keeping the rollups current ----------------------------------------------------------------

def _fold_calls(conn: Connection, where, tables=("call", "version", "latency")) -> None:
    """Add the ledger rows matching `where` to the day rollups."""
    rows = select(
        day_of(call.c.created_at).label("day"), call.c.model, call.c.source,
        func.coalesce(call.c.error_type, "").label("error_type"),
        func.coalesce(call.c.prompt_version_id, 0).label("prompt_version_id"),
        case((call.c.cached, 1), else_=0).label("hit"), call.c.cost_usd, call.c.input_tokens, call.c.output_tokens,
    ).where(where).subquery()
    sums = [func.count(), func.count(rows.c.cost_usd), func.coalesce(func.sum(rows.c.cost_usd), 0.0),
            func.coalesce(func.sum(rows.c.input_tokens), 0), func.coalesce(func.sum(rows.c.output_tokens), 0)]
    if "call" in tables:
        keys = [rows.c.day, rows.c.model, rows.c.source, rows.c.error_type]
        query = select(*keys, sums[0], func.sum(rows.c.hit), *sums[1:]).group_by(*keys)
        _upsert(conn, rollup_call, query, ["day", "model", "source", "error_type"],
                ["calls", "cached", "priced", "cost_usd", "input_tokens", "output_tokens"])
    if "version" in tables:
        keys = [rows.c.day, rows.c.prompt_version_id, rows.c.model, rows.c.source]
        _upsert(conn, rollup_version, select(*keys, *sums).group_by(*keys),
                ["day", "prompt_version_id", "model", "source"],
                ["calls", "priced", "cost_usd", "input_tokens", "output_tokens"])
    if "latency" in tables:
        timed = select(day_of(call.c.created_at).label("day"), call.c.model, call.c.source,
                       bucket_of(call.c.latency_ms).label("bucket")).where(
            where, call.c.cached == false(), call.c.latency_ms.is_not(None)).subquery()
        keys = [timed.c.day, timed.c.model, timed.c.source, timed.c.bucket]
        _upsert(conn, rollup_latency, select(*keys, func.count()).group_by(*keys),
                ["day", "model", "source", "bucket"], ["n"])


def _lock(conn: Connection, name: str, table: str) -> int:
    """Take the rollup's write lock first (SQLite: the database's; PostgreSQL: the state row, and a
    SHARE lock so no insert with a lower id can still commit), then read its mark."""
    conn.execute(update(rollup_state).where(rollup_state.c.name == name).values(updated_at=utcnow()))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE MODE")
    return conn.execute(select(rollup_state.c.last_id).where(rollup_state.c.name == name)).scalar_one()


def _run_stamp():
    text_of = lambda column: func.coalesce(cast(column, Text), "")  # noqa: E731
    return Run.status + "|" + text_of(Run.heartbeat_at) + "|" + text_of(Run.finished_at)


def _dirty_runs(conn: Connection, score_mark: int) -> list[int]:
    stale = select(Run.id).outerjoin(rollup_run_state, rollup_run_state.c.run_id == Run.id).where(or_(
        rollup_run_state.c.stamp.is_(None), rollup_run_state.c.stamp != _run_stamp(),
        Run.status.not_in(FINAL_RUN_STATUSES)))
    rescored = select(RunItem.run_id).join(Score, Score.run_item_id == RunItem.id).where(Score.id > score_mark)
    return sorted(set(conn.execute(stale).scalars()) | set(conn.execute(rescored).scalars()))


def _fold_runs(conn: Connection, run_ids: list[int]) -> None:
    """Recompute the run summaries of `run_ids` from their items and scores."""
    is_guard = Score.scorer_name.startswith("guard_", autoescape=True)
    for chunk in _chunks(run_ids):
        for table in (rollup_run, rollup_score, rollup_run_state):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        guards = (select(Score.run_item_id, func.max(case((Score.passed.is_(False), 1), else_=0)).label("failed"))
                  .join(RunItem, RunItem.id == Score.run_item_id)
                  .where(RunItem.run_id.in_(chunk), is_guard).group_by(Score.run_item_id).subquery())
        blocked = and_(RunItem.status == "blocked", RunItem.error_type == "guardrail")
        keys = [RunItem.run_id, RunItem.prompt_version_id, RunItem.model]
        conn.execute(rollup_run.insert().from_select(
            ["run_id", "prompt_version_id", "model", "items", "finished", "errors", "blocked", "guard_checked",
             "guard_triggered"],
            select(*keys, func.count(),
                   func.sum(case((RunItem.status.in_(("done", "error", "blocked")), 1), else_=0)),
                   func.sum(case((RunItem.status == "error", 1), else_=0)),
                   func.sum(case((RunItem.status == "blocked", 1), else_=0)),
                   func.sum(case((or_(guards.c.run_item_id.is_not(None), blocked), 1), else_=0)),
                   func.sum(case((or_(guards.c.failed == 1, blocked), 1), else_=0)))
            .outerjoin(guards, guards.c.run_item_id == RunItem.id)
            .where(RunItem.run_id.in_(chunk)).group_by(*keys)))
        conn.execute(rollup_score.insert().from_select(
            ["run_id", "prompt_version_id", "model", "scorer_name", "n", "n_value", "sum_value", "n_verdict",
             "n_passed", "n_error"],
            select(*keys, Score.scorer_name, func.count(), func.count(Score.value),
                   func.coalesce(func.sum(Score.value), 0.0), func.count(Score.passed),
                   func.sum(case((Score.passed.is_(True), 1), else_=0)), func.count(Score.error))
            .join(RunItem, RunItem.id == Score.run_item_id)
            .where(RunItem.run_id.in_(chunk)).group_by(*keys, Score.scorer_name)))
        conn.execute(rollup_run_state.insert().from_select(
            ["run_id", "stamp"], select(Run.id, _run_stamp()).where(Run.id.in_(chunk))))


def refresh(engine: Engine) -> int:
    """Bring every rollup up to date; returns the ledger id they now cover (reads use it as a snapshot).

    A read-only look first: when nothing changed (the usual case) no write lock is taken."""
    with engine.connect() as conn:
        marks = dict(conn.execute(select(rollup_state.c.name, rollup_state.c.last_id)).all())
        top_call = conn.execute(select(func.max(call.c.id))).scalar() or 0
        top_score = conn.execute(select(func.max(Score.id))).scalar() or 0
        runs_dirty = top_score > marks["score"] or bool(_dirty_runs(conn, marks["score"]))
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
            top = conn.execute(select(func.max(Score.id))).scalar() or 0
            _fold_runs(conn, _dirty_runs(conn, score_mark))
            conn.execute(update(rollup_state).where(rollup_state.c.name == "score").values(last_id=max(top, score_mark)))
    return mark


def rebuild_model(conn: Connection, model: str) -> None:
    """Recompute one model's spend rollups after its past costs were rewritten, inside the caller's
    transaction (which already holds the write lock through its UPDATE of llm_call)."""
    mark = conn.execute(select(rollup_state.c.last_id).where(rollup_state.c.name == "llm_call")).scalar_one()
    for table in (rollup_call, rollup_version):
        conn.execute(delete(table).where(table.c.model == model))
    _fold_calls(conn, and_(call.c.model == model, call.c.id <= mark), tables=("call", "version"))


# --- what a panel is asked for ------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """Filters in SQL terms. Days are inclusive 'YYYY-MM-DD' (UTC); empty tuples mean "all";
    version_ids None means any version; upto is the ledger id the rollups cover."""

    first_day: str
    last_day: str
    upto: int
    models: tuple = ()
    sources: tuple = ()
    version_ids: tuple | None = None
    run_id: int | None = None

    @property
    def narrow(self) -> bool:
        return self.version_ids is not None or self.run_id is not None

    def bounds(self) -> tuple[datetime, datetime]:
        first = datetime.combine(date.fromisoformat(self.first_day), dtime())
        return first, datetime.combine(date.fromisoformat(self.last_day), dtime()) + timedelta(days=1)


def _keys_where(table, scope: Scope) -> list:
    """Date, model and source conditions on a day rollup."""
    where = [table.c.day >= scope.first_day, table.c.day <= scope.last_day]
    if scope.models:
        where.append(table.c.model.in_(scope.models))
    if scope.sources:
        where.append(table.c.source.in_(scope.sources))
    return where


def ledger_where(scope: Scope) -> list:
    """The same filter on llm_call itself (narrow panels, exact percentiles, the calls table)."""
    first, after = scope.bounds()
    where = [call.c.created_at >= first, call.c.created_at < after, call.c.id <= scope.upto]
    if scope.models:
        where.append(call.c.model.in_(scope.models))
    if scope.sources:
        where.append(call.c.source.in_(scope.sources))
    if scope.version_ids is not None:
        where.append(call.c.prompt_version_id.in_(scope.version_ids))
    if scope.run_id is not None:
        where.append(call.c.run_id == scope.run_id)
    return where


def _calls(scope: Scope):
    """rollup_call's rows for the scope, or the same shape aggregated live for a narrow scope."""
    if not scope.narrow:
        return select(rollup_call).where(*_keys_where(rollup_call, scope)).subquery()
    rows = select(day_of(call.c.created_at).label("day"), call.c.model, call.c.source,
                  func.coalesce(call.c.error_type, "").label("error_type"), call.c.cached, call.c.cost_usd,
                  call.c.input_tokens, call.c.output_tokens).where(*ledger_where(scope)).subquery()
    keys = [rows.c.day, rows.c.model, rows.c.source, rows.c.error_type]
    return select(*keys, func.count().label("calls"), func.sum(case((rows.c.cached, 1), else_=0)).label("cached"),
                  func.count(rows.c.cost_usd).label("priced"),
                  func.coalesce(func.sum(rows.c.cost_usd), 0.0).label("cost_usd"),
                  func.coalesce(func.sum(rows.c.input_tokens), 0).label("input_tokens"),
                  func.coalesce(func.sum(rows.c.output_tokens), 0).label("output_tokens")).group_by(*keys).subquery()


def _versions(scope: Scope):
    if not scope.narrow:
        return select(rollup_version).where(*_keys_where(rollup_version, scope)).subquery()
    rows = select(func.coalesce(call.c.prompt_version_id, 0).label("prompt_version_id"), call.c.model,
                  call.c.cost_usd).where(*ledger_where(scope)).subquery()
    keys = [rows.c.prompt_version_id, rows.c.model]
    return select(*keys, func.count().label("calls"), func.count(rows.c.cost_usd).label("priced"),
                  func.coalesce(func.sum(rows.c.cost_usd), 0.0).label("cost_usd")).group_by(*keys).subquery()


def _latency(scope: Scope):
    if not scope.narrow:
        return select(rollup_latency).where(*_keys_where(rollup_latency, scope)).subquery()
    rows = select(day_of(call.c.created_at).label("day"), call.c.model,
                  bucket_of(call.c.latency_ms).label("bucket")).where(
        *ledger_where(scope), call.c.cached == false(), call.c.latency_ms.is_not(None)).subquery()
    keys = [rows.c.day, rows.c.model, rows.c.bucket]
    return select(*keys, func.count().label("n")).group_by(*keys).subquery()


def _runs(scope: Scope, table):
    """Run summaries for runs created in the scope's days (items are judged by their run's start)."""
    first, after = scope.bounds()
    where = [table.c.run_id == Run.id, Run.created_at >= first, Run.created_at < after]
    if scope.models:
        where.append(table.c.model.in_(scope.models))
    if scope.version_ids is not None:
        where.append(table.c.prompt_version_id.in_(scope.version_ids))
    if scope.run_id is not None:
        where.append(table.c.run_id == scope.run_id)
    if scope.sources and "run" not in scope.sources:
        where.append(false())
    return where


# --- panels -------------------------------------------------------------------------------------

def totals(conn: Connection, scope: Scope) -> dict:
    """Calls, cache hits, errors, priced calls, spend (all and on evals), tokens, and run items."""
    c = _calls(scope)
    ok = c.c.error_type == ""
    row = conn.execute(select(
        func.coalesce(func.sum(c.c.calls), 0), func.coalesce(func.sum(c.c.cached), 0),
        func.coalesce(func.sum(case((ok, 0), else_=c.c.calls)), 0),
        func.coalesce(func.sum(case((ok, c.c.calls - c.c.priced), else_=0)), 0),
        func.coalesce(func.sum(c.c.priced), 0), func.coalesce(func.sum(c.c.cost_usd), 0.0),
        func.coalesce(func.sum(case((c.c.source.in_(EVAL_SOURCES), c.c.cost_usd), else_=0.0)), 0.0),
        func.coalesce(func.sum(c.c.input_tokens), 0), func.coalesce(func.sum(c.c.output_tokens), 0))).one()
    names = ["calls", "cached", "errors", "unpriced", "priced", "cost_usd", "eval_cost_usd", "input_tokens",
             "output_tokens"]
    out = dict(zip(names, row))
    runs = conn.execute(select(
        func.coalesce(func.sum(rollup_run.c.finished), 0), func.coalesce(func.sum(rollup_run.c.blocked), 0),
        func.coalesce(func.sum(rollup_run.c.guard_checked), 0),
        func.coalesce(func.sum(rollup_run.c.guard_triggered), 0)).where(*_runs(scope, rollup_run))).one()
    out.update(zip(["items_finished", "items_blocked", "guard_checked", "guard_triggered"], runs))
    return {k: (float(v) if k.endswith("usd") else int(v)) for k, v in out.items()}


def spend_by_day(conn: Connection, scope: Scope, month: bool = False) -> list[dict]:
    c = _calls(scope)
    period = func.substr(c.c.day, literal_column("1"), literal_column("7")) if month else c.c.day
    query = (select(period.label("period"), c.c.model, func.sum(c.c.cost_usd), func.sum(c.c.calls))
             .group_by(period, c.c.model).order_by(period, c.c.model))
    return [{"period": p, "model": m, "cost_usd": float(cost or 0), "calls": int(n)}
            for p, m, cost, n in conn.execute(query)]


def tokens_by_model(conn: Connection, scope: Scope) -> list[dict]:
    c = _calls(scope)
    query = (select(c.c.model, func.sum(c.c.input_tokens), func.sum(c.c.output_tokens), func.sum(c.c.calls),
                    func.sum(c.c.cost_usd)).group_by(c.c.model).order_by(c.c.model))
    return [{"model": m, "input_tokens": int(i or 0), "output_tokens": int(o or 0), "calls": int(n),
             "cost_usd": float(cost or 0)} for m, i, o, n, cost in conn.execute(query)]


def errors_by_type(conn: Connection, scope: Scope) -> list[dict]:
    c = _calls(scope)
    query = (select(c.c.error_type, c.c.model, func.sum(c.c.calls)).where(c.c.error_type != "")
             .group_by(c.c.error_type, c.c.model).order_by(c.c.error_type, c.c.model))
    return [{"error_type": e, "model": m, "calls": int(n)} for e, m, n in conn.execute(query)]


def cost_by_version(conn: Connection, scope: Scope) -> list[dict]:
    """Spend per prompt version and model, labelled `prompt vN` (version 0 = calls without one)."""
    v = _versions(scope)
    grouped = (select(v.c.prompt_version_id, v.c.model, func.sum(v.c.calls).label("calls"),
                      func.sum(v.c.priced).label("priced"), func.sum(v.c.cost_usd).label("cost_usd"))
               .group_by(v.c.prompt_version_id, v.c.model).subquery())
    query = (select(grouped, Prompt.name, PromptVersion.version)
             .outerjoin(PromptVersion, PromptVersion.id == grouped.c.prompt_version_id)
             .outerjoin(Prompt, Prompt.id == PromptVersion.prompt_id)
             .order_by(grouped.c.prompt_version_id, grouped.c.model))
    return [{"prompt_version_id": r.prompt_version_id, "prompt": r.name, "version": r.version, "model": r.model,
             "calls": int(r.calls), "priced": int(r.priced), "cost_usd": float(r.cost_usd or 0)}
            for r in conn.execute(query)]


def latency_histogram(conn: Connection, scope: Scope) -> list[dict]:
    """The scope's latency histogram with cumulative counts, in bucket order."""
    h = _latency(scope)
    grouped = select(h.c.bucket, func.sum(h.c.n).label("n")).group_by(h.c.bucket).subquery()
    query = (select(grouped.c.bucket, latency_bucket.c.lo, latency_bucket.c.hi, grouped.c.n,
                    func.sum(grouped.c.n).over(order_by=grouped.c.bucket, rows=(None, 0)).label("cum"))
             .join(latency_bucket, latency_bucket.c.bucket == grouped.c.bucket).order_by(grouped.c.bucket))
    return [dict(r._mapping) for r in conn.execute(query)]


def exact_percentiles(conn: Connection, scope: Scope, quantiles=(0.5, 0.95, 0.99)) -> dict:
    """Nearest-rank percentiles (the value at rank ceil(q*N)) of the calls that reached a provider.

    The histogram says which bucket holds that rank and how far into it; one ordered lookup on
    the ledger's latency index reads the row. Both count exactly the same rows (ids <= upto)."""
    buckets = latency_histogram(conn, scope)
    total = int(buckets[-1]["cum"]) if buckets else 0
    out = {}
    for q in quantiles:
        if not total:
            out[q] = None
            continue
        rank = min(total, max(1, math.ceil(q * total - 1e-9)))
        hit = next(b for b in buckets if b["cum"] >= rank)
        offset = rank - (int(hit["cum"]) - int(hit["n"])) - 1
        out[q] = conn.execute(
            select(call.c.latency_ms).where(*ledger_where(scope), call.c.cached == false(),
                                            call.c.latency_ms >= hit["lo"], call.c.latency_ms < hit["hi"])
            .order_by(call.c.latency_ms).limit(1).offset(offset)).scalar()
    return out


def _quantiles_from_histogram(conn: Connection, h, group: list[str], quantiles) -> list[dict]:
    """Quantiles per group from histogram rows (group..., bucket, n), in SQL: cumulative counts by
    window functions, then linear interpolation inside the bucket that holds q*N."""
    cols = [h.c[g] for g in group]
    grouped = select(*cols, h.c.bucket, func.sum(h.c.n).label("n")).group_by(*cols, h.c.bucket).subquery()
    gcols = [grouped.c[g] for g in group]
    cum = select(*gcols, grouped.c.bucket, grouped.c.n,
                 func.sum(grouped.c.n).over(partition_by=gcols, order_by=grouped.c.bucket, rows=(None, 0)).label("cum"),
                 func.sum(grouped.c.n).over(partition_by=gcols).label("total")).subquery()
    qs = union_all(*[select(literal(float(q)).label("q")) for q in quantiles]).subquery()
    target = qs.c.q * cum.c.total
    value = case((cum.c.bucket == LAST_BUCKET, latency_bucket.c.lo),
                 else_=latency_bucket.c.lo + (target - (cum.c.cum - cum.c.n)) * (latency_bucket.c.hi - latency_bucket.c.lo)
                 / cum.c.n)
    ccols = [cum.c[g] for g in group]
    query = (select(*ccols, qs.c.q, value.label("value"), cum.c.total)
             .select_from(cum).join(qs, true()).join(latency_bucket, latency_bucket.c.bucket == cum.c.bucket)
             .where(cum.c.cum >= target, cum.c.cum - cum.c.n < target).order_by(*ccols, qs.c.q))
    return [dict(r._mapping) for r in conn.execute(query)]


def latency_quantiles_by_model(conn: Connection, scope: Scope, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)) -> list[dict]:
    return _quantiles_from_histogram(conn, _latency(scope), ["model"], quantiles)


def latency_quantile_by_day(conn: Connection, scope: Scope, quantile: float = 0.95) -> list[dict]:
    return _quantiles_from_histogram(conn, _latency(scope), ["day", "model"], [quantile])


def run_quality(conn: Connection, scope: Scope) -> list[dict]:
    """Per run (in run order), prompt version and scorer: count, mean score and pass rate."""
    s = rollup_score
    keys = [s.c.run_id, Run.name, Run.created_at, s.c.prompt_version_id, Prompt.name, PromptVersion.version,
            s.c.scorer_name]
    query = (select(*keys, func.sum(s.c.n), func.sum(s.c.n_value), func.sum(s.c.sum_value), func.sum(s.c.n_verdict),
                    func.sum(s.c.n_passed), func.sum(s.c.n_error))
             .select_from(s).join(Run, Run.id == s.c.run_id)
             .join(PromptVersion, PromptVersion.id == s.c.prompt_version_id).join(Prompt, Prompt.id == PromptVersion.prompt_id)
             .where(*_runs(scope, s)).group_by(*keys).order_by(s.c.run_id, s.c.scorer_name, s.c.prompt_version_id))
    out = []
    for run_id, run_name, created, pv_id, prompt, version, scorer, n, n_value, total, n_verdict, n_passed, n_error \
            in conn.execute(query):
        out.append({"run_id": run_id, "run": run_name, "run_created": created, "prompt_version_id": pv_id,
                    "prompt": prompt, "version": version, "scorer": scorer, "n": int(n),
                    "mean": float(total) / n_value if n_value else None,
                    "pass_rate": float(n_passed) / n_verdict if n_verdict else None, "errors": int(n_error)})
    return out


CALL_COLUMNS = ("id", "created_at", "source", "model", "prompt_version_id", "run_id", "latency_ms", "input_tokens",
                "output_tokens", "cost_usd", "cached", "error_type")


def calls_page(conn: Connection, scope: Scope, limit: int, offset: int, model: str | None = None,
               error_type: str | None = None) -> tuple[list[dict], int]:
    """One page of the scope's calls, newest first, and how many there are in all."""
    where = ledger_where(scope)
    if model:
        where.append(call.c.model == model)
    if error_type:
        where.append(call.c.error_type == error_type)
    rows = conn.execute(select(*[call.c[name] for name in CALL_COLUMNS]).where(*where)
                        .order_by(call.c.created_at.desc(), call.c.id.desc()).limit(limit).offset(offset))
    page = [dict(r._mapping) for r in rows]
    if not scope.narrow:
        c = _calls(scope)
        conditions = ([c.c.model == model] if model else []) + ([c.c.error_type == error_type] if error_type else [])
        total = conn.execute(select(func.coalesce(func.sum(c.c.calls), 0)).where(*conditions)).scalar()
    else:
        total = conn.execute(select(func.count()).select_from(call).where(*where)).scalar()
    return page, int(total)


def spend_between(conn: Connection, first_day: str, last_day: str) -> float:
    """All spend on the days first_day..last_day (for budgets: no filters)."""
    return float(conn.execute(select(func.coalesce(func.sum(rollup_call.c.cost_usd), 0.0)).where(
        rollup_call.c.day >= first_day, rollup_call.c.day <= last_day)).scalar())


def prompt_choices(conn: Connection) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    query = (select(Prompt.name, PromptVersion.version).join(PromptVersion, PromptVersion.prompt_id == Prompt.id)
             .order_by(Prompt.name, PromptVersion.version))
    for name, version in conn.execute(query):
        out.setdefault(name, []).append(version)
    return out


def run_choices(conn: Connection, limit: int = 500) -> list[tuple[int, str]]:
    return [(run_id, name) for run_id, name in conn.execute(select(Run.id, Run.name).order_by(Run.id.desc()).limit(limit))]


def known_models(conn: Connection) -> list[str]:
    return list(conn.execute(select(rollup_call.c.model).distinct().order_by(rollup_call.c.model)).scalars())


def version_ids(conn: Connection, prompt: str, version: int | None = None) -> tuple:
    query = select(PromptVersion.id).join(Prompt, Prompt.id == PromptVersion.prompt_id).where(Prompt.name == prompt)
    if version is not None:
        query = query.where(PromptVersion.version == version)
    return tuple(conn.execute(query.order_by(PromptVersion.id)).scalars())
