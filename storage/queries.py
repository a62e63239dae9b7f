"""Aggregations in SQL (never by loading every row into Python)."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlmodel import col

from storage.db import engine
from storage.tables import RunItem, Score


def score_summary(run_id: int) -> list[dict]:
    """Per scorer: count, mean score, pass rate (over rows with a verdict), errors."""
    passed_as_number = case((col(Score.passed).is_(True), 1.0), (col(Score.passed).is_(False), 0.0), else_=None)
    query = (
        select(
            col(Score.scorer_name),
            func.count(col(Score.id)),
            func.avg(col(Score.value)),
            func.avg(passed_as_number),
            func.sum(case((col(Score.error).is_not(None), 1), else_=0)),
            func.count(passed_as_number),
        )
        .join(RunItem, col(RunItem.id) == col(Score.run_item_id))
        .where(col(RunItem.run_id) == run_id)
        .group_by(col(Score.scorer_name))
        .order_by(col(Score.scorer_name))
    )
    with engine().connect() as conn:
        return [
            {"scorer": name, "n": n, "mean": mean, "pass_rate": pass_rate, "errors": int(errors or 0), "judged": judged}
            for name, n, mean, pass_rate, errors, judged in conn.execute(query).all()
        ]


def overall_pass_rate(run_id: int) -> float | None:
    passed_as_number = case((col(Score.passed).is_(True), 1.0), (col(Score.passed).is_(False), 0.0), else_=None)
    query = (
        select(func.avg(passed_as_number))
        .join(RunItem, col(RunItem.id) == col(Score.run_item_id))
        .where(col(RunItem.run_id) == run_id)
    )
    with engine().connect() as conn:
        return conn.execute(query).scalar()
