"""Cost, latency and quality dashboards over the call ledger, and the spend budget.

Every figure here is aggregated in SQL (storage/dashboard_queries.py, which also explains the
rollups that keep this fast at a million calls); this module turns filters into a scope, asks
for each panel and shapes the small, already aggregated results into DataFrames for a page.
Days are UTC. Percentiles: the headline p50/p95/p99 are exact (nearest rank); per-model boxes
and p95 per day are read off latency histograms, within one bucket (12.5%) of exact.
"""

from __future__ import annotations

import calendar
import io
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from storage import app_settings, ledger
from storage import dashboard_queries as q
from workbench.errors import WorkbenchError

SOURCES = ("playground", "run", "judge", "rag")
BUDGET_KEY = "budget"
BUDGET_PERIODS = ("day", "month")
MONTHLY_AFTER_DAYS = 92  # spend over time by month beyond this range


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Filters:
    """What the user picked. Empty tuples mean all; prompt without version means all its versions."""

    start: date
    end: date
    models: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    prompt: str | None = None
    version: int | None = None
    run_id: int | None = None

    @classmethod
    def last(cls, days: int = 30, today: date | None = None, **kw) -> Filters:
        today = today or utc_today()
        return cls(start=today - timedelta(days=days - 1), end=today, **kw)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The period of equal length just before, with the same other filters."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))


def _scope(conn, filters: Filters, upto: int) -> q.Scope:
    if filters.end < filters.start:
        raise WorkbenchError("The date range ends before it starts.")
    unknown = sorted(set(filters.sources) - set(SOURCES))
    if unknown:
        raise WorkbenchError(f"Unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}.")
    versions = q.version_ids(conn, filters.prompt, filters.version) if filters.prompt else None
    return q.rollups_for(
        q.Scope(
            first_day=filters.start.isoformat(),
            last_day=filters.end.isoformat(),
            upto=upto,
            models=tuple(filters.models),
            sources=tuple(filters.sources),
            version_ids=versions,
            run_id=filters.run_id,
        )
    )


def data_stamp() -> tuple:
    """Changes whenever any dashboard figure can: what pages key their cached reads on."""
    return ledger.stamp()


def refresh_rollups() -> int:
    """Fold new ledger rows and changed runs into the stored rollups; returns the ledger id they hold.

    The one dashboard function that writes. The worker calls it after a run's writes and
    `workbench serve` now and then; reads never do (they stay exact without it, only slower)."""
    return q.refresh()


@contextmanager
def reading(filters: Filters, previous: bool = True):
    """Yield a connection, the filters' scope and (if asked) the previous period's, at one snapshot,
    without writing to the database.

    A narrow scope (a run, or a prompt with a source) first folds its own ledger rows, both periods
    at once, into temporary rollups on this connection. Any other scope reads the stored rollups,
    plus, while they are behind (calls or runs since the last `refresh_rollups`), temporary rollups
    of just the newer ledger rows and the changed runs: exact figures, and only TEMPORARY tables are
    written, which takes no lock on the database."""
    with q.snapshot() as conn:
        behind = q.pending(conn)
        scope = _scope(conn, filters, behind.top)
        before = _scope(conn, filters.previous(), behind.top) if previous else None
        if scope.narrow:
            built = q.build_narrow(conn, replace(scope, first_day=(before or scope).first_day), behind.runs)
        elif behind.stale:
            built = q.build_delta(conn, scope, behind)
        else:
            built = scope
        scope = replace(scope, rollups=built.rollups)
        before = before and replace(before, rollups=built.rollups)
        yield conn, scope, before


# --- headline figures ---------------------------------------------------------------------------

HEADLINE = (  # key, label, unit (usd | count | ms | rate)
    ("calls", "Calls", "count"),
    ("spend", "Spend", "usd"),
    ("cost_per_call", "Mean cost / call", "usd"),
    ("cost_per_1k_rows", "Eval cost / 1 000 rows", "usd"),
    ("p50", "p50 latency", "ms"),
    ("p95", "p95 latency", "ms"),
    ("p99", "p99 latency", "ms"),
    ("error_rate", "Error rate", "rate"),
    ("cache_rate", "Cache hit rate", "rate"),
    ("guard_rate", "Guardrail trigger rate", "rate"),
)


def _ratio(a, b):
    return a / b if b else None


def _figures(totals: dict, latency: dict) -> dict:
    return {
        "calls": totals["calls"],
        "spend": totals["cost_usd"],
        "cost_per_call": _ratio(totals["cost_usd"], totals["priced"]),
        "cost_per_1k_rows": _ratio(1000 * totals["eval_cost_usd"], totals["items_finished"]),
        "p50": latency[0.5],
        "p95": latency[0.95],
        "p99": latency[0.99],
        "error_rate": _ratio(totals["errors"], totals["calls"]),
        "cache_rate": _ratio(totals["cached"], totals["calls"]),
        "guard_rate": _ratio(totals["guard_triggered"], totals["guard_checked"]),
    }


def change(value, previous, unit: str):
    """Rates change in points (0.02 = +2 points); everything else relatively (0.5 = +50%)."""
    if value is None or previous is None:
        return None
    if unit == "rate":
        return value - previous
    return (value - previous) / previous if previous else None


def headline(conn, scope: q.Scope, previous: q.Scope) -> dict:
    now, before = q.totals(conn, scope, previous)
    latency_now, latency_before = q.exact_percentiles(conn, scope, previous)
    cur, old = _figures(now, latency_now), _figures(before, latency_before)
    out = {
        key: {
            "label": label,
            "unit": unit,
            "value": cur[key],
            "previous": old[key],
            "change": change(cur[key], old[key], unit),
        }
        for key, label, unit in HEADLINE
    }
    return {"figures": out, "totals": now, "previous_totals": before}


# --- the whole page -----------------------------------------------------------------------------


@dataclass
class Dashboard:
    filters: Filters
    figures: dict
    totals: dict
    spend: pd.DataFrame
    tokens: pd.DataFrame
    versions: pd.DataFrame
    latency_models: pd.DataFrame
    latency_days: pd.DataFrame
    quality: pd.DataFrame
    errors: pd.DataFrame
    models: list[str] = field(default_factory=list)  # every model in the ledger: stable colours


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def view(filters: Filters) -> Dashboard:
    """Every panel of the Dashboard page for these filters, at one snapshot of the ledger."""
    with reading(filters) as (conn, scope, previous):
        top = headline(conn, scope, previous)
        spend = q.spend_by_day(conn, scope, month=filters.days > MONTHLY_AFTER_DAYS)
        boxes = q.latency_quantiles_by_model(conn, scope)
        by_model: dict[str, dict] = {}
        for row in boxes:
            by_model.setdefault(row["model"], {"model": row["model"], "calls": int(row["total"])})[
                f"p{round(row['q'] * 100)}"
            ] = row["value"]
        days = q.latency_quantile_by_day(conn, scope, 0.95)
        return Dashboard(
            filters=filters,
            figures=top["figures"],
            totals=top["totals"],
            spend=_frame(spend, ["period", "model", "cost_usd", "calls"]),
            tokens=_frame(
                q.tokens_by_model(conn, scope),
                ["model", "input_tokens", "output_tokens", "calls", "priced", "cost_usd"],
            ),
            versions=_version_frame(q.cost_by_version(conn, scope)),
            latency_models=_frame(list(by_model.values()), ["model", "calls", "p5", "p25", "p50", "p75", "p95"]),
            latency_days=_frame(
                [{"day": r["day"], "model": r["model"], "p95_ms": r["value"], "calls": int(r["total"])} for r in days],
                ["day", "model", "p95_ms", "calls"],
            ),
            quality=_quality_frame(q.run_quality(conn, scope)),
            errors=_frame(q.errors_by_type(conn, scope), ["error_type", "model", "calls"]),
            models=q.known_models(conn, q.pending(conn).mark),
        )


def _version_frame(rows: list[dict]) -> pd.DataFrame:
    for row in rows:
        row["prompt_version"] = f"{row['prompt']} v{row['version']}" if row["prompt"] else "(no version)"
    return _frame(
        rows, ["prompt_version", "prompt_version_id", "prompt", "version", "model", "calls", "priced", "cost_usd"]
    )


def _quality_frame(rows: list[dict]) -> pd.DataFrame:
    frame = _frame(
        rows, ["run_id", "run", "prompt_version_id", "prompt", "version", "scorer", "n", "mean", "pass_rate", "errors"]
    )
    frame.insert(0, "prompt_version", [f"{p} v{v}" for p, v in zip(frame["prompt"], frame["version"])])
    # What a quality chart plots: the pass rate where the scorer gives verdicts, else its mean score.
    frame["metric"] = ["pass rate" if pd.notna(rate) else "mean" for rate in frame["pass_rate"]]
    frame["value"] = frame["pass_rate"].where(frame["pass_rate"].notna(), frame["mean"])
    return frame


def calls_table(
    filters: Filters,
    page: int = 1,
    page_size: int = 50,
    day: date | None = None,
    model: str | None = None,
    error_type: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """One page (1-based) of the calls behind the filters, optionally one day / model / error type."""
    if day is not None:
        filters = replace(filters, start=day, end=day)
    with reading(filters, previous=False) as (conn, scope, _):
        rows, total = q.calls_page(conn, scope, page_size, (max(1, page) - 1) * page_size, model, error_type)
    return _frame(rows, list(q.CALL_COLUMNS)), total


def filter_options() -> dict:
    """What the filters offer: models seen in the ledger, sources, prompts with versions, recent runs."""
    with q.connection() as conn:
        return {
            "models": q.known_models(conn, q.pending(conn).mark),
            "sources": list(SOURCES),
            "prompts": q.prompt_choices(conn),
            "runs": q.run_choices(conn),
        }


def to_csv(frame: pd.DataFrame) -> bytes:
    """A panel's data as CSV (what a chart shows, already aggregated); prompt and model names are
    user text, so cells are neutralised like every CSV export (workbench.csv_safe)."""
    from workbench import csv_safe

    buffer = io.StringIO()
    csv_safe.frame(frame).to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


# --- budget -------------------------------------------------------------------------------------


def get_budget() -> dict | None:
    return app_settings.get(BUDGET_KEY) or None


def set_budget(usd: float | None, period: str = "month") -> None:
    """A spend limit per UTC day or calendar month; None (or 0) removes it."""
    if period not in BUDGET_PERIODS:
        raise WorkbenchError(f"Budget period must be one of {', '.join(BUDGET_PERIODS)}.")
    if usd is not None and float(usd) < 0:
        raise WorkbenchError("A budget cannot be negative.")
    value = {"usd": float(usd), "period": period} if usd else None
    app_settings.put(BUDGET_KEY, value)


def budget_status(now: datetime | None = None) -> dict | None:
    """Spend against the budget, and the month's spend projected from the last 7 days' pace.

    None when no budget is set (then nothing is queried beyond the setting)."""
    budget = get_budget()
    if not budget:
        return None
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    today = now.date()
    month_start = today.replace(day=1)
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    elapsed_today = (now - datetime.combine(today, datetime.min.time())).total_seconds() / 86400
    week_start = today - timedelta(days=6)
    with q.connection() as conn:  # the rollups as they are, plus the ledger rows they do not hold yet
        mark = q.pending(conn).mark
        spent_today = q.spend_between(conn, today.isoformat(), today.isoformat(), mark)
        month_to_date = q.spend_between(conn, month_start.isoformat(), today.isoformat(), mark)
        last_week = q.spend_between(conn, week_start.isoformat(), today.isoformat(), mark)
    pace = last_week / (6 + elapsed_today)  # USD per day over the last 7 days (today partly)
    remaining = days_in_month - (today.day - 1) - elapsed_today
    limit = float(budget["usd"])
    spent = spent_today if budget["period"] == "day" else month_to_date
    month_limit = limit * days_in_month if budget["period"] == "day" else limit
    projected = month_to_date + pace * remaining
    return {
        "period": budget["period"],
        "limit": limit,
        "spent": spent,
        "exceeded": spent > limit,
        "fraction": spent / limit if limit else None,
        "month_to_date": month_to_date,
        "projected_month": projected,
        "month_limit": month_limit,
        "projected_over": projected > month_limit,
        "pace_per_day": pace,
    }
