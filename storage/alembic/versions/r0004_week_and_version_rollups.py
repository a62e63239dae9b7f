"""Week rollups, version rollups and a fine latency histogram.

Migration 4 of the numbered migrations that came before Alembic, its DDL unchanged so that a
database made by either is the same (`{pk}`, `{json}`, ... are storage.migrations.DIALECT_TYPES).
A database whose `schema_migration` ledger ends at 4 is stamped at this revision.

Week rows beside the day rows (`day` = 'w' + the week's Monday), so a long date range reads
whole weeks; prompt versions become a rollup key for every panel (the version rollup gains
error type and cache hits, and a latency histogram per version), a slim version rollup for
cost per version, a fine latency histogram for exact percentiles, and an index for the exact
percentiles of a version. The rollups are rebuilt from the ledger on the next page load.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from storage.migrations import run_ddl

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

STATEMENTS = [
    "DROP TABLE rollup_version",
    """CREATE TABLE rollup_version (
            prompt_version_id INTEGER NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL,
            error_type TEXT NOT NULL, calls INTEGER NOT NULL, cached INTEGER NOT NULL, priced INTEGER NOT NULL,
            cost_usd {float} NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            PRIMARY KEY (prompt_version_id, day, model, source, error_type)){without_rowid}""",
    """CREATE TABLE rollup_version_model (
            day TEXT NOT NULL, prompt_version_id INTEGER NOT NULL, model TEXT NOT NULL, calls INTEGER NOT NULL,
            priced INTEGER NOT NULL, cost_usd {float} NOT NULL,
            PRIMARY KEY (day, prompt_version_id, model)){without_rowid}""",
    """CREATE TABLE rollup_latency_version (
            prompt_version_id INTEGER NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL, bucket INTEGER NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (prompt_version_id, day, model, bucket)){without_rowid}""",
    """CREATE TABLE rollup_latency_fine (
            day TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, bucket)){without_rowid}""",
    # Keyed by version first; folding rewrites the current week's rows, found by day.
    "CREATE INDEX ix_rollup_version_day ON rollup_version (day)",
    "CREATE INDEX ix_rollup_latency_version_day ON rollup_latency_version (day)",
    "CREATE INDEX ix_llm_call_version_latency ON llm_call (prompt_version_id, cached, latency_ms, created_at)",
    "DELETE FROM rollup_call",
    "DELETE FROM rollup_latency",
    "DELETE FROM rollup_latency_cum",
    "UPDATE rollup_state SET last_id = 0 WHERE name = 'llm_call'",
]


def upgrade() -> None:
    run_ddl(STATEMENTS)


def downgrade() -> None:
    raise NotImplementedError("The revisions made before Alembic have no downgrade: restore a backup instead.")
