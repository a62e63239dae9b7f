"""Append-only schema migrations, recorded in `schema_migration`.

Never edit a migration that has shipped: add a new one at the end. Each is plain DDL
with a few dialect placeholders so the same list runs on SQLite and PostgreSQL:
{pk} integer primary key, {json} JSON column, {float} double, {ts} timestamp,
{without_rowid} clusters a small keyed table on its primary key where the dialect can.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

DIALECT_TYPES = {
    "sqlite": {
        "pk": "INTEGER PRIMARY KEY",
        "json": "TEXT",
        "float": "REAL",
        "ts": "TIMESTAMP",
        "without_rowid": " WITHOUT ROWID",
    },
    "postgresql": {
        "pk": "SERIAL PRIMARY KEY",
        "json": "JSON",
        "float": "DOUBLE PRECISION",
        "ts": "TIMESTAMP",
        "without_rowid": "",
    },
}

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "prompts, datasets, runs, the call ledger and scores",
        [
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
        ],
    ),
    (
        2,
        "custom prices, settings, comparisons, RAG indexes, dashboard indexes",
        [
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
        ],
    ),
    # Dashboard rollups (see storage/dashboard_queries.py): per-day sums of the ledger and per-day
    # latency histograms, folded in from `rollup_state.last_id` on; per-run item and score summaries,
    # recomputed for a run when its stamp changes. `day` is 'YYYY-MM-DD' (UTC) text on both
    # dialects; prompt_version_id 0 means "no version" (a key column cannot be NULL). Key orders
    # follow the panels' GROUP BYs so SQLite aggregates in key order instead of sorting.
    (
        3,
        "dashboard rollups and the latency index",
        [
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
                + [
                    f"({1 + 8 * k + j}, {2**k * (8 + j) / 8!r}, {2**k * (9 + j) / 8!r})"
                    for k in range(20)
                    for j in range(8)
                ]
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
        ],
    ),
    # Week rows beside the day rows (`day` = 'w' + the week's Monday), so a long date range reads
    # whole weeks; prompt versions become a rollup key for every panel (the version rollup gains
    # error type and cache hits, and a latency histogram per version), a slim version rollup for
    # cost per version, a fine latency histogram for exact percentiles, and an index for the exact
    # percentiles of a version. The rollups are rebuilt from the ledger on the next page load.
    (
        4,
        "week rollups, version rollups and a fine latency histogram",
        [
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
        ],
    ),
    (
        5,
        "job leases, run-wide spend and reservations, retry attempts",
        [
            """CREATE TABLE job_lease (
            key TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until {ts} NOT NULL, claimed_at {ts} NOT NULL,
            heartbeat_at {ts} NOT NULL)""",
            "ALTER TABLE run ADD COLUMN spent_usd {float} NOT NULL DEFAULT 0",
            "ALTER TABLE run ADD COLUMN reserved_usd {float} NOT NULL DEFAULT 0",
            "ALTER TABLE llm_call ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
            "UPDATE run SET spent_usd = (SELECT COALESCE(SUM(cost_usd), 0) FROM llm_call WHERE llm_call.run_id = run.id)",
        ],
    ),
]


def _ensure_ledger(conn: Connection) -> None:
    ts = DIALECT_TYPES[_dialect(conn)]["ts"]
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            f"id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {ts} NOT NULL)"
        )
    )


def _dialect(conn: Connection) -> str:
    name = conn.dialect.name
    if name not in DIALECT_TYPES:
        raise RuntimeError(f"Unsupported database dialect {name!r}: use SQLite or PostgreSQL.")
    return name


def applied(conn: Connection) -> set[int]:
    _ensure_ledger(conn)
    return {row[0] for row in conn.execute(text("SELECT id FROM schema_migration"))}


def migrate(conn: Connection) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; return the ids applied."""
    types = DIALECT_TYPES[_dialect(conn)]
    done = applied(conn)
    conn.commit()
    newly = []
    for number, name, statements in MIGRATIONS:
        if number in done:
            continue
        with conn.begin():
            for statement in statements:
                conn.execute(text(statement.format(**types)))
            conn.execute(
                text("INSERT INTO schema_migration (id, name, applied_at) VALUES (:id, :name, CURRENT_TIMESTAMP)"),
                {"id": number, "name": name},
            )
        newly.append(number)
    return newly
