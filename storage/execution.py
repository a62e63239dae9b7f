"""Queries of run execution: a shard's pending items, result batches, spend and reservations.

Everything a worker writes about a run goes through here. Result writes are conditional on the
item still being pending, so an item can be stored once only, whoever else may have called it.
Spend is kept on the run row (`spent_usd`, `reserved_usd`) and changed by atomic increments, so
several worker processes share one budget without reading each other's memory.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import col

from storage.db import engine
from storage.tables import DatasetRow, LlmCall, Run, RunItem, Score, utcnow


def reset_errors(run_id: int) -> int:
    """Make every errored item pending again (`--retry-errors`); returns how many."""
    with engine().begin() as conn:
        return conn.execute(
            update(RunItem)
            .where(col(RunItem.run_id) == run_id, col(RunItem.status) == "error")
            .values(status="pending", error=None, error_type=None, call_id=None, finished_at=None)
        ).rowcount


def status_counts(run_id: int) -> dict[str, int]:
    with engine().connect() as conn:
        rows = conn.execute(
            select(col(RunItem.status), func.count()).where(col(RunItem.run_id) == run_id).group_by(col(RunItem.status))
        ).all()
    return {status: count for status, count in rows}


def pending_items(run_id: int, shard: int = 0, shards: int = 1) -> list[tuple]:
    """(item id, prompt version id, model, dataset row id, repeat) of one shard's pending items."""
    with engine().connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(
                    col(RunItem.id),
                    col(RunItem.prompt_version_id),
                    col(RunItem.model),
                    col(RunItem.dataset_row_id),
                    col(RunItem.repeat),
                )
                .where(
                    col(RunItem.run_id) == run_id, col(RunItem.status) == "pending", (col(RunItem.id) % shards) == shard
                )
                .order_by(col(RunItem.id))
            )
        ]


def dataset_rows(dataset_version_id: int, row_ids: set[int]) -> dict[int, dict]:
    """The data of the given rows of a dataset version, by row id."""
    wanted = sorted(row_ids)
    found: dict[int, dict] = {}
    with engine().connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(
                conn.execute(
                    select(col(DatasetRow.id), col(DatasetRow.data)).where(
                        col(DatasetRow.dataset_version_id) == dataset_version_id, col(DatasetRow.id).in_(chunk)
                    )
                ).all()
            )
    return found


def run_control(run_id: int) -> tuple[str, float, float, float | None]:
    """(status, spent, reserved, budget) of a run."""
    with engine().connect() as conn:
        row = conn.execute(
            select(col(Run.status), col(Run.spent_usd), col(Run.reserved_usd), col(Run.budget_usd)).where(
                col(Run.id) == run_id
            )
        ).one()
    return row.status, float(row.spent_usd or 0.0), float(row.reserved_usd or 0.0), row.budget_usd


def beat(run_id: int) -> str:
    """Record that the run's executor is alive; returns the run's status (to notice a cancel)."""
    with engine().begin() as conn:
        conn.execute(update(Run).where(col(Run.id) == run_id).values(heartbeat_at=utcnow()))
        return conn.execute(select(col(Run.status)).where(col(Run.id) == run_id)).scalar_one()


def reserve(run_id: int, amount: float) -> bool:
    """Reserve `amount` USD of the run's budget for a call about to start; False when that would
    pass the budget (nothing is reserved then). Runs without a budget always get it."""
    with engine().begin() as conn:
        return bool(
            conn.execute(
                update(Run)
                .where(
                    col(Run.id) == run_id,
                    (col(Run.budget_usd).is_(None))
                    | (col(Run.spent_usd) + col(Run.reserved_usd) + amount <= col(Run.budget_usd)),
                )
                .values(reserved_usd=col(Run.reserved_usd) + amount)
            ).rowcount
        )


def settle(run_id: int, reserved: float, spent: float) -> None:
    """A reserved call finished: give back its reservation and count what it really cost."""
    with engine().begin() as conn:
        conn.execute(
            update(Run)
            .where(col(Run.id) == run_id)
            .values(reserved_usd=col(Run.reserved_usd) - reserved, spent_usd=col(Run.spent_usd) + spent)
        )


def clear_reservations(run_id: int) -> None:
    """Forget reservations of calls that can no longer settle (their executor died)."""
    with engine().begin() as conn:
        conn.execute(update(Run).where(col(Run.id) == run_id).values(reserved_usd=0.0))


def write_results(run_id: int, calls: list[dict], owners: list[int | None], items: list[dict], scores: list[dict]):
    """One transaction for a batch of finished items.

    `calls` are ledger rows (main and judge calls); `owners[i]` is the index into `items` of the
    item whose call `calls[i]` is, or None for judge calls. `items` are dicts with id, status,
    error_type, error; `scores` carry `item_index` instead of the run item id. An item that is no
    longer pending (stored by another executor) is left alone, and so are its scores. Returns the
    ids of the items written."""
    now = utcnow()
    with engine().begin() as conn:
        call_ids: dict[int, int] = {}
        if calls:
            ids = conn.execute(
                insert(LlmCall).returning(col(LlmCall.id), sort_by_parameter_order=True), calls
            ).scalars()
            call_ids = {owner: int(call_id) for owner, call_id in zip(owners, ids) if owner is not None and call_id}
        written = []
        for index, item in enumerate(items):
            changed = conn.execute(
                update(RunItem)
                .where(col(RunItem.id) == bindparam("b_id"), col(RunItem.status) == "pending")
                .values(
                    status=bindparam("b_status"),
                    call_id=bindparam("b_call"),
                    error_type=bindparam("b_type"),
                    error=bindparam("b_error"),
                    finished_at=bindparam("b_at"),
                ),
                {
                    "b_id": item["id"],
                    "b_status": item["status"],
                    "b_call": call_ids.get(index),
                    "b_type": item.get("error_type"),
                    "b_error": item.get("error"),
                    "b_at": now,
                },
            ).rowcount
            if changed:
                written.append(index)
        keep = set(written)
        rows = [
            {**{k: v for k, v in s.items() if k != "item_index"}, "run_item_id": items[s["item_index"]]["id"]}
            | {"created_at": now}
            for s in scores
            if s["item_index"] in keep
        ]
        if rows:
            conn.execute(insert(Score), rows)
    return [items[i]["id"] for i in written]
