"""What comparing runs reads (variants, items with their calls, scores) and saved comparisons."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import engine, session
from storage.tables import (
    Comparison,
    Dataset,
    DatasetRow,
    DatasetVersion,
    LlmCall,
    Prompt,
    PromptVersion,
    Run,
    RunItem,
    Score,
)


def variants(run_ids: list[int]) -> list[tuple]:
    """(run id, prompt version id, model, prompt name, version, the version's model, dataset version id,
    dataset name, dataset version, items) for every combination in these runs."""
    columns = (
        col(RunItem.run_id),
        col(RunItem.prompt_version_id),
        col(RunItem.model),
        col(Prompt.name),
        col(PromptVersion.version),
        col(PromptVersion.model),
        col(Run.dataset_version_id),
        col(Dataset.name),
        col(DatasetVersion.version),
    )
    query = (
        select(*columns, func.count(col(RunItem.id)))
        .join(PromptVersion, col(PromptVersion.id) == col(RunItem.prompt_version_id))
        .join(Prompt, col(Prompt.id) == col(PromptVersion.prompt_id))
        .join(Run, col(Run.id) == col(RunItem.run_id))
        .join(DatasetVersion, col(DatasetVersion.id) == col(Run.dataset_version_id), isouter=True)
        .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id), isouter=True)
        .where(col(RunItem.run_id).in_(run_ids))
        .group_by(*columns)
    )
    with engine().connect() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def items(run_ids: list[int]) -> list[tuple]:
    """Per item, in run, row position, repeat order: (id, run id, prompt version id, model, repeat,
    status, error, row key, row data, dataset version id, call model, output, latency, cost, cached,
    input tokens, output tokens, call error)."""
    query = (
        select(
            col(RunItem.id),
            col(RunItem.run_id),
            col(RunItem.prompt_version_id),
            col(RunItem.model),
            col(RunItem.repeat),
            col(RunItem.status),
            col(RunItem.error),
            col(DatasetRow.row_key),
            col(DatasetRow.data),
            col(DatasetRow.dataset_version_id),
            col(LlmCall.model),
            col(LlmCall.output),
            col(LlmCall.latency_ms),
            col(LlmCall.cost_usd),
            col(LlmCall.cached),
            col(LlmCall.input_tokens),
            col(LlmCall.output_tokens),
            col(LlmCall.error),
        )
        .join(DatasetRow, col(DatasetRow.id) == col(RunItem.dataset_row_id))
        .join(LlmCall, col(LlmCall.id) == col(RunItem.call_id), isouter=True)
        .where(col(RunItem.run_id).in_(run_ids))
        .order_by(col(RunItem.run_id), col(DatasetRow.position), col(RunItem.repeat), col(RunItem.id))
    )
    with engine().connect() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def scores(run_ids: list[int]) -> list[tuple]:
    """(item id, scorer, value, passed, error) of these runs' items, oldest first."""
    query = (
        select(col(Score.run_item_id), col(Score.scorer_name), col(Score.value), col(Score.passed), col(Score.error))
        .join(RunItem, col(RunItem.id) == col(Score.run_item_id))
        .where(col(RunItem.run_id).in_(run_ids))
        .order_by(col(Score.id))
    )
    with engine().connect() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def save(name: str, run_ids: list[int], baseline: str, summary: dict) -> int:
    with session() as s:
        row = Comparison(name=name, run_ids=run_ids, baseline=baseline, summary=summary)
        s.add(row)
        s.flush()
        assert row.id is not None
        return row.id


def get(comparison_id: int) -> Comparison | None:
    with session() as s:
        return s.get(Comparison, comparison_id)


def latest(limit: int) -> list[Comparison]:
    with session() as s:
        return list(s.exec(select(Comparison).order_by(col(Comparison.id).desc()).limit(limit)).scalars())
