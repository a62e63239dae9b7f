"""Dashboard rollups and the latency index.

Migration 3 of the numbered migrations that came before Alembic, its DDL unchanged so that a
database made by either is the same (`{pk}`, `{json}`, ... are storage.migrations.DIALECT_TYPES).
A database whose `schema_migration` ledger ends at 3 is stamped at this revision.

Dashboard rollups (see storage/dashboard_queries.py): per-day sums of the ledger and per-day
latency histograms, folded in from `rollup_state.last_id` on; per-run item and score summaries,
recomputed for a run when its stamp changes. `day` is 'YYYY-MM-DD' (UTC) text on both
dialects; prompt_version_id 0 means "no version" (a key column cannot be NULL). Key orders
follow the panels' GROUP BYs so SQLite aggregates in key order instead of sorting.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from storage.migrations import run_ddl

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

STATEMENTS = [
    "CREATE INDEX ix_llm_call_latency ON llm_call (latency_ms, created_at, model, source, cached)",
    "CREATE INDEX ix_llm_call_version_created ON llm_call (prompt_version_id, created_at)",
    """CREATE TABLE rollup_state (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL, updated_at {ts} NOT NULL)""",
    """INSERT INTO rollup_state (name, last_id, updated_at)
            VALUES ('llm_call', 0, CURRENT_TIMESTAMP), ('score', 0, CURRENT_TIMESTAMP)""",
    """CREATE TABLE rollup_call (
            day TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL, error_type TEXT NOT NULL,
            calls INTEGER NOT NULL, cached INTEGER NOT NULL, priced INTEGER NOT NULL, cost_usd {float} NOT NULL,
            input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            PRIMARY KEY (day, model, source, error_type)){without_rowid}""",
    """CREATE TABLE rollup_version (
            prompt_version_id INTEGER NOT NULL, model TEXT NOT NULL, day TEXT NOT NULL, source TEXT NOT NULL,
            calls INTEGER NOT NULL, priced INTEGER NOT NULL, cost_usd {float} NOT NULL,
            input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            PRIMARY KEY (prompt_version_id, model, day, source)){without_rowid}""",
    """CREATE TABLE latency_bucket (bucket INTEGER PRIMARY KEY, lo {float} NOT NULL, hi {float} NOT NULL)""",
    # 0: [0, 1) ms; then 8 equal steps per power of two from 1 ms to 2^20 ms; then one open bucket.
    "INSERT INTO latency_bucket (bucket, lo, hi) VALUES "
    + ", ".join(
        ["(0, 0, 1)"]
        + [f"({1 + 8 * k + j}, {2**k * (8 + j) / 8!r}, {2**k * (9 + j) / 8!r})" for k in range(20) for j in range(8)]
        + [f"(161, {2.0**20!r}, 1e300)"]
    ),
    """CREATE TABLE rollup_latency (
            day TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL, bucket INTEGER NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (day, model, source, bucket)){without_rowid}""",
    # All sources together, with each (day, model) histogram's running count: a quantile per day
    # and model is then one range read, with no window function over the histogram.
    """CREATE TABLE rollup_latency_cum (
            day TEXT NOT NULL, model TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
            cum INTEGER NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (day, model, bucket)){without_rowid}""",
    "CREATE INDEX ix_rollup_latency_cum_model ON rollup_latency_cum (model, bucket, day, n)",
    """CREATE TABLE rollup_run (
            run_id INTEGER NOT NULL, prompt_version_id INTEGER NOT NULL, model TEXT NOT NULL,
            items INTEGER NOT NULL, finished INTEGER NOT NULL, errors INTEGER NOT NULL, blocked INTEGER NOT NULL,
            guard_checked INTEGER NOT NULL, guard_triggered INTEGER NOT NULL,
            PRIMARY KEY (run_id, prompt_version_id, model)){without_rowid}""",
    """CREATE TABLE rollup_score (
            run_id INTEGER NOT NULL, prompt_version_id INTEGER NOT NULL, model TEXT NOT NULL, scorer_name TEXT NOT NULL,
            n INTEGER NOT NULL, n_value INTEGER NOT NULL, sum_value {float} NOT NULL, n_verdict INTEGER NOT NULL,
            n_passed INTEGER NOT NULL, n_error INTEGER NOT NULL,
            PRIMARY KEY (run_id, prompt_version_id, model, scorer_name)){without_rowid}""",
    """CREATE TABLE rollup_run_state (run_id INTEGER PRIMARY KEY, stamp TEXT NOT NULL)""",
]


def upgrade() -> None:
    run_ddl(STATEMENTS)


def downgrade() -> None:
    raise NotImplementedError("The revisions made before Alembic have no downgrade: restore a backup instead.")
