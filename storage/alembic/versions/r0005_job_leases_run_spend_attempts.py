"""Job leases, run-wide spend and reservations, retry attempts.

Migration 5 of the numbered migrations that came before Alembic, its DDL unchanged so that a
database made by either is the same (`{pk}`, `{json}`, ... are storage.migrations.DIALECT_TYPES).
A database whose `schema_migration` ledger ends at 5 is stamped at this revision.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from storage.migrations import run_ddl

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE job_lease (
            key TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until {ts} NOT NULL, claimed_at {ts} NOT NULL,
            heartbeat_at {ts} NOT NULL)""",
    "ALTER TABLE run ADD COLUMN spent_usd {float} NOT NULL DEFAULT 0",
    "ALTER TABLE run ADD COLUMN reserved_usd {float} NOT NULL DEFAULT 0",
    "ALTER TABLE llm_call ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
    "UPDATE run SET spent_usd = (SELECT COALESCE(SUM(cost_usd), 0) FROM llm_call WHERE llm_call.run_id = run.id)",
]


def upgrade() -> None:
    run_ddl(STATEMENTS)


def downgrade() -> None:
    raise NotImplementedError("The revisions made before Alembic have no downgrade: restore a backup instead.")
