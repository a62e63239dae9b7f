"""Runs, their planned items, progress counts over items, per-item results and scores."""

from __future__ import annotations

from sqlalchemy import case, delete, func, insert, select, update
from sqlmodel import col

from storage.db import engine, session
from storage.tables import DatasetRow, LlmCall, Prompt, PromptVersion, Run, RunItem, Score, utcnow

BATCH = 5000


def create(run: Run, items: list[dict]) -> int:
    """Write the run and its items (each a dict of RunItem columns without run_id) in one transaction."""
    with session() as s:
        s.add(run)
        s.flush()
        payload = [{**item, "run_id": run.id} for item in items]
        for start in range(0, len(payload), BATCH):
            s.execute(insert(RunItem), payload[start : start + BATCH])
        assert run.id is not None
        return run.id


def get(run_id: int) -> Run | None:
    with session() as s:
        return s.get(Run, run_id)


def existing_ids(run_ids: list[int]) -> set[int]:
    with engine().connect() as conn:
        found = conn.execute(select(col(Run.id)).where(col(Run.id).in_(run_ids))).scalars()
        return {run_id for run_id in found if run_id is not None}


def configs(run_ids: list[int]) -> list[dict]:
    with engine().connect() as conn:
        return list(conn.execute(select(col(Run.config)).where(col(Run.id).in_(run_ids))).scalars())


def update_fields(run_id: int, **fields) -> None:
    with engine().begin() as conn:
        conn.execute(update(Run).where(col(Run.id) == run_id).values(**fields))


def request_cancel(run_id: int, interrupted) -> bool:
    """`pending`/`running` become `cancelling`; an interrupted (`interrupted(run)`) or cancelling run
    becomes `cancelled`. False when there is no such run."""
    with session() as s:
        run = s.get(Run, run_id)
        if run is None:
            return False
        if run.status in ("pending", "running"):
            run.status = "cancelling"
        elif run.status == "cancelling" or interrupted(run):
            run.status = "cancelled"
        s.add(run)
        return True


def _item_counts(run_ids: list[int]) -> dict[int, dict[str, int]]:
    with engine().connect() as conn:
        rows = conn.execute(
            select(col(RunItem.run_id), col(RunItem.status), func.count())
            .where(col(RunItem.run_id).in_(run_ids))
            .group_by(col(RunItem.run_id), col(RunItem.status))
        ).all()
    out: dict[int, dict[str, int]] = {run_id: {} for run_id in run_ids}
    for run_id, status, n in rows:
        out[run_id][status] = n
    return out


def _call_totals(run_ids: list[int]) -> dict[int, tuple]:
    """(calls, cached, cost, input tokens, output tokens, first, last) per run."""
    with engine().connect() as conn:
        rows = conn.execute(
            select(
                col(LlmCall.run_id),
                func.count(),
                func.sum(case((col(LlmCall.cached), 1), else_=0)),
                func.coalesce(func.sum(col(LlmCall.cost_usd)), 0.0),
                func.coalesce(func.sum(col(LlmCall.input_tokens)), 0),
                func.coalesce(func.sum(col(LlmCall.output_tokens)), 0),
                func.min(col(LlmCall.created_at)),
                func.max(col(LlmCall.created_at)),
            )
            .where(col(LlmCall.run_id).in_(run_ids))
            .group_by(col(LlmCall.run_id))
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def progress_counts(run_ids: list[int]) -> dict[int, dict]:
    """Per run: item counts by status and its calls' totals, in two grouped queries for all runs."""
    items, calls = _item_counts(run_ids), _call_totals(run_ids)
    return {
        run_id: {"items": items[run_id], "calls": calls.get(run_id, (0, 0, 0.0, 0, 0, None, None))}
        for run_id in run_ids
    }


def latest(limit: int) -> list[Run]:
    with session() as s:
        return list(s.exec(select(Run).order_by(col(Run.id).desc()).limit(limit)).scalars())


def results(
    run_id: int, limit: int | None = 200, offset: int = 0, status: str | None = None, search: str | None = None
) -> list[tuple]:
    """(item, row, version, prompt name, call or None, {scorer: score}) per item, in item order."""
    query = (
        select(RunItem, DatasetRow, PromptVersion, col(Prompt.name), LlmCall)
        .join(DatasetRow, col(DatasetRow.id) == col(RunItem.dataset_row_id))
        .join(PromptVersion, col(PromptVersion.id) == col(RunItem.prompt_version_id))
        .join(Prompt, col(Prompt.id) == col(PromptVersion.prompt_id))
        .join(LlmCall, col(LlmCall.id) == col(RunItem.call_id), isouter=True)
        .where(col(RunItem.run_id) == run_id)
        .order_by(col(RunItem.id))
    )
    if status:
        query = query.where(col(RunItem.status) == status)
    if search:
        query = query.where(col(LlmCall.output).contains(search))
    if limit:
        query = query.limit(limit).offset(offset)
    with session() as s:
        rows = s.exec(query).all()
        item_ids = [item.id for item, *_ in rows]
        scores: dict[int, dict[str, Score]] = {}
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            for score in s.exec(
                select(Score).where(col(Score.run_item_id).in_(chunk)).order_by(col(Score.id))
            ).scalars():
                scores.setdefault(score.run_item_id, {})[score.scorer_name] = score
    return [(item, row, version, name, call, scores.get(item.id, {})) for item, row, version, name, call in rows]


def done_items_with_calls(run_id: int, limit: int | None = None) -> list:
    """The finished items of a run with their row data and call (what scorers read), in item order."""
    query = (
        select(
            col(RunItem.id),
            col(RunItem.prompt_version_id),
            col(DatasetRow.data),
            col(LlmCall.output),
            col(LlmCall.latency_ms),
            col(LlmCall.cost_usd),
            col(LlmCall.input_tokens),
            col(LlmCall.output_tokens),
            col(LlmCall.messages),
        )
        .select_from(RunItem)
        .join(DatasetRow, col(DatasetRow.id) == col(RunItem.dataset_row_id))
        .join(LlmCall, col(LlmCall.id) == col(RunItem.call_id))
        .where(col(RunItem.run_id) == run_id, col(RunItem.status) == "done")
        .order_by(col(RunItem.id))
    )
    if limit is not None:
        query = query.limit(limit)
    with engine().connect() as conn:
        return list(conn.execute(query).all())


def replace_scores(
    run_id: int, item_ids: list[int], names: list[str], scores: list[dict], calls: list[dict], new_config
) -> None:
    """In one transaction: drop the items' scores by `names`, insert `scores` (Score columns), record
    the judge `calls` (LlmCall columns) and store `new_config(the run's config)` as the run's config."""
    now = utcnow()
    with engine().begin() as conn:
        for start in range(0, len(item_ids), 500):
            conn.execute(
                delete(Score).where(
                    col(Score.run_item_id).in_(item_ids[start : start + 500]), col(Score.scorer_name).in_(names)
                )
            )
        if scores:
            conn.execute(insert(Score), [{**row, "created_at": row.get("created_at", now)} for row in scores])
        for values in calls:
            conn.execute(insert(LlmCall).values(**values))
        config = conn.execute(select(col(Run.config)).where(col(Run.id) == run_id)).scalar_one()
        conn.execute(update(Run).where(col(Run.id) == run_id).values(config=new_config(config)))
