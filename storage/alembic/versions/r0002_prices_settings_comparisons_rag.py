"""Custom prices, settings, comparisons, RAG indexes, dashboard indexes.

Migration 2 of the numbered migrations that came before Alembic, its DDL unchanged so that a
database made by either is the same (`{pk}`, `{json}`, ... are storage.migrations.DIALECT_TYPES).
A database whose `schema_migration` ledger ends at 2 is stamped at this revision.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from storage.migrations import run_ddl

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE model_price (
            id {pk}, model TEXT NOT NULL UNIQUE, input_per_million {float} NOT NULL,
            output_per_million {float} NOT NULL, updated_at {ts} NOT NULL)""",
    """CREATE TABLE app_setting (key TEXT PRIMARY KEY, value {json}, updated_at {ts} NOT NULL)""",
    """CREATE TABLE comparison (
            id {pk}, name TEXT NOT NULL DEFAULT '', run_ids {json} NOT NULL, baseline TEXT NOT NULL DEFAULT '',
            summary {json} NOT NULL, created_at {ts} NOT NULL)""",
    """CREATE TABLE rag_index (
            id {pk}, name TEXT NOT NULL UNIQUE, created_at {ts} NOT NULL)""",
    """CREATE TABLE rag_index_version (
            id {pk}, index_id INTEGER NOT NULL REFERENCES rag_index(id), version INTEGER NOT NULL,
            config {json} NOT NULL, collection TEXT NOT NULL, documents {json} NOT NULL,
            chunk_count INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, error TEXT,
            created_at {ts} NOT NULL, UNIQUE (index_id, version))""",
    "CREATE INDEX ix_llm_call_source_created ON llm_call (source, created_at)",
    "CREATE INDEX ix_llm_call_prompt_version ON llm_call (prompt_version_id)",
]


def upgrade() -> None:
    run_ddl(STATEMENTS)


def downgrade() -> None:
    raise NotImplementedError("The revisions made before Alembic have no downgrade: restore a backup instead.")
