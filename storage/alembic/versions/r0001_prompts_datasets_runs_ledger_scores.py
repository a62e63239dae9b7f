"""Prompts, datasets, runs, the call ledger and scores.

Migration 1 of the numbered migrations that came before Alembic, its DDL unchanged so that a
database made by either is the same (`{pk}`, `{json}`, ... are storage.migrations.DIALECT_TYPES).
A database whose `schema_migration` ledger ends at 1 is stamped at this revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from storage.migrations import run_ddl

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE prompt (
            id {pk}, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
            created_at {ts} NOT NULL)""",
    """CREATE TABLE prompt_version (
            id {pk}, prompt_id INTEGER NOT NULL REFERENCES prompt(id),
            version INTEGER NOT NULL, kind TEXT NOT NULL, template TEXT, messages {json},
            variables {json} NOT NULL, model TEXT NOT NULL, params {json} NOT NULL,
            content_hash TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', author TEXT NOT NULL DEFAULT '',
            created_at {ts} NOT NULL, UNIQUE (prompt_id, version))""",
    """CREATE TABLE prompt_label (
            id {pk}, prompt_id INTEGER NOT NULL REFERENCES prompt(id), label TEXT NOT NULL,
            version_id INTEGER NOT NULL REFERENCES prompt_version(id), updated_at {ts} NOT NULL,
            UNIQUE (prompt_id, label))""",
    """CREATE TABLE label_event (
            id {pk}, prompt_id INTEGER NOT NULL REFERENCES prompt(id), label TEXT NOT NULL,
            from_version_id INTEGER REFERENCES prompt_version(id),
            to_version_id INTEGER NOT NULL REFERENCES prompt_version(id),
            author TEXT NOT NULL DEFAULT '', evidence TEXT NOT NULL DEFAULT '', created_at {ts} NOT NULL)""",
    """CREATE TABLE dataset (
            id {pk}, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '', created_at {ts} NOT NULL)""",
    """CREATE TABLE dataset_version (
            id {pk}, dataset_id INTEGER NOT NULL REFERENCES dataset(id), version INTEGER NOT NULL,
            columns {json} NOT NULL, column_types {json} NOT NULL, row_count INTEGER NOT NULL,
            content_hash TEXT NOT NULL, source_filename TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '', author TEXT NOT NULL DEFAULT '', created_at {ts} NOT NULL,
            UNIQUE (dataset_id, version))""",
    """CREATE TABLE dataset_row (
            id {pk}, dataset_version_id INTEGER NOT NULL REFERENCES dataset_version(id),
            position INTEGER NOT NULL, row_key TEXT NOT NULL, data {json} NOT NULL,
            UNIQUE (dataset_version_id, row_key))""",
    """CREATE TABLE run (
            id {pk}, name TEXT NOT NULL DEFAULT '', config {json} NOT NULL, status TEXT NOT NULL,
            dataset_version_id INTEGER REFERENCES dataset_version(id), concurrency INTEGER NOT NULL,
            budget_usd {float}, use_cache BOOLEAN NOT NULL, repeat INTEGER NOT NULL,
            created_at {ts} NOT NULL, started_at {ts}, finished_at {ts}, heartbeat_at {ts},
            worker TEXT NOT NULL DEFAULT '', error TEXT)""",
    """CREATE TABLE llm_call (
            id {pk}, created_at {ts} NOT NULL, source TEXT NOT NULL, model TEXT NOT NULL, api_base TEXT,
            request_hash TEXT NOT NULL, messages {json} NOT NULL, params {json} NOT NULL, output TEXT,
            latency_ms {float}, input_tokens INTEGER, output_tokens INTEGER, cost_usd {float},
            error_type TEXT, error TEXT, cached BOOLEAN NOT NULL,
            prompt_version_id INTEGER REFERENCES prompt_version(id), run_id INTEGER REFERENCES run(id))""",
    "CREATE INDEX ix_llm_call_request_hash ON llm_call (request_hash)",
    "CREATE INDEX ix_llm_call_created_at ON llm_call (created_at)",
    "CREATE INDEX ix_llm_call_model_created ON llm_call (model, created_at)",
    "CREATE INDEX ix_llm_call_run ON llm_call (run_id)",
    """CREATE TABLE run_item (
            id {pk}, run_id INTEGER NOT NULL REFERENCES run(id),
            prompt_version_id INTEGER NOT NULL REFERENCES prompt_version(id), model TEXT NOT NULL,
            dataset_row_id INTEGER NOT NULL REFERENCES dataset_row(id), repeat INTEGER NOT NULL,
            status TEXT NOT NULL, call_id INTEGER REFERENCES llm_call(id), error_type TEXT, error TEXT,
            finished_at {ts}, UNIQUE (run_id, prompt_version_id, model, dataset_row_id, repeat))""",
    "CREATE INDEX ix_run_item_run_status ON run_item (run_id, status)",
    """CREATE TABLE scorer (
            id {pk}, name TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
            config {json} NOT NULL, note TEXT NOT NULL DEFAULT '', created_at {ts} NOT NULL,
            UNIQUE (name, version))""",
    """CREATE TABLE score (
            id {pk}, run_item_id INTEGER NOT NULL REFERENCES run_item(id), scorer_name TEXT NOT NULL,
            scorer_version_id INTEGER REFERENCES scorer(id), value {float}, passed BOOLEAN,
            reason TEXT NOT NULL DEFAULT '', error TEXT, created_at {ts} NOT NULL,
            UNIQUE (run_item_id, scorer_name))""",
]


def upgrade() -> None:
    run_ddl(STATEMENTS)


def downgrade() -> None:
    raise NotImplementedError("The revisions made before Alembic have no downgrade: restore a backup instead.")
