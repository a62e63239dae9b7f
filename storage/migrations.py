"""Bring a database to the current schema: the Alembic revisions in storage/alembic/versions.

`storage.db.engine()` calls `migrate()` whenever a process first opens a database, so the
common case, a database already at the head revision, is one SELECT of `alembic_version`
and no alembic import. Otherwise the upgrade runs in one transaction that first takes a
lock, so two processes starting at once (two workers, the UI and a CLI) do not both
migrate: the second waits, finds the head, and goes on. SQLite takes the lock with
BEGIN IMMEDIATE (its write lock, and its DDL is transactional once pysqlite stops
managing transactions), PostgreSQL with a transaction-scoped advisory lock. A failing
revision rolls back all of the upgrade: nothing is half-migrated.

Before Alembic, numbered migrations 1-5 were recorded in `schema_migration`; revisions
0001-0005 are the same DDL (written with the `DIALECT_TYPES` placeholders by
`run_ddl`), and a database recorded there is stamped at the matching revision before it
is upgraded. The old ledger table is left in place (and out of the schema comparison).

New revisions: change storage/tables.py, then `python -m storage.migrations revision
"what changed"` writes the next revision from the difference between the head and the
tables (review it: autogenerate cannot see renames or data moves).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"
REVISION_FILE = re.compile(r"r(\d{4})_\w+\.py")
LEGACY_TABLE = "schema_migration"
# pg_advisory_xact_lock key: any constant; this one is b"wbschema"
PG_LOCK_KEY = int.from_bytes(b"wbschema", "big") & 0x7FFFFFFFFFFFFFFF
SQLITE_LOCK_WAIT_S = 600  # a process waiting for another's upgrade has nothing better to do

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


def _revisions() -> list[str]:
    """The revision ids, in order, from the file names (rNNNN_slug.py): no alembic import."""
    return sorted(m.group(1) for p in (ALEMBIC_DIR / "versions").iterdir() if (m := REVISION_FILE.fullmatch(p.name)))


HEAD = _revisions()[-1]


def _dialect(name: str) -> str:
    if name not in DIALECT_TYPES:
        raise RuntimeError(f"Unsupported database dialect {name!r}: use SQLite or PostgreSQL.")
    return name


def run_ddl(statements: Sequence[str]) -> None:
    """Run the pre-Alembic migrations' DDL in a revision, placeholders filled for the dialect."""
    from alembic import op

    types = DIALECT_TYPES[_dialect(op.get_bind().dialect.name)]
    for statement in statements:
        op.execute(statement.format(**types))


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """What Alembic compares: everything but the pre-Alembic ledger."""
    return not (type_ == "table" and name == LEGACY_TABLE)


def without_sqlite_key_nullability(context: Any, _revision: Any, directives: list[Any]) -> None:
    """Alembic's process_revision_directives hook: SQLite reads a single-column PRIMARY KEY that
    was declared without NOT NULL back as nullable (an INTEGER one cannot hold NULL, being the
    rowid; a TEXT one could, a SQLite quirk no code relies on), which autogenerate would "fix"
    with a table copy on every revision. Drop those changes."""
    if context.dialect.name != "sqlite":
        return
    from alembic.operations import ops
    from sqlmodel import SQLModel

    import storage.tables  # noqa: F401

    keys = {(t.name, c.name) for t in SQLModel.metadata.tables.values() for c in t.primary_key.columns}
    for container in (directives[0].upgrade_ops, directives[0].downgrade_ops):
        for table_ops in container.ops:
            if isinstance(table_ops, ops.ModifyTableOps):
                for op in table_ops.ops:
                    if isinstance(op, ops.AlterColumnOp) and (op.table_name, op.column_name) in keys:
                        op.modify_nullable = None
                table_ops.ops = [
                    op for op in table_ops.ops if not isinstance(op, ops.AlterColumnOp) or op.has_changes()
                ]
        container.ops = [t for t in container.ops if not (isinstance(t, ops.ModifyTableOps) and t.is_empty())]


def schema_differences(conn: Connection) -> list[Any]:
    """What autogenerate would write for this database against storage/tables.py: tables,
    columns, types, nullability, server defaults, keys and indexes. Empty when they agree."""
    from alembic.autogenerate import produce_migrations
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import storage.tables  # noqa: F401

    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True, "include_name": include_name}
    )
    script = produce_migrations(context, SQLModel.metadata)
    without_sqlite_key_nullability(context, None, [script])
    return script.upgrade_ops.as_diffs() if script.upgrade_ops else []


def current(conn: Connection) -> str | None:
    """The database's revision, or None (no `alembic_version` yet)."""
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        conn.rollback()  # PostgreSQL refuses further statements in a failed transaction
        return None


def migrate(engine: Engine) -> list[str]:
    """Upgrade the database to HEAD; return the revisions applied (none when already there)."""
    with engine.connect() as conn:
        if current(conn) == HEAD:
            return []
    _dialect(engine.dialect.name)
    if engine.dialect.name == "sqlite":
        if engine.url.database in (None, "", ":memory:"):
            raise RuntimeError("An in-memory SQLite database cannot be migrated (each connection is another database).")
        migrator = _sqlite_migrator(engine.url)
        try:
            return _upgrade(migrator)
        finally:
            migrator.dispose()
    return _upgrade(engine)


def _sqlite_migrator(url: URL) -> Engine:
    """A connection where BEGIN means BEGIN IMMEDIATE and pysqlite leaves transactions to us,
    so that CREATE/ALTER/DROP join the upgrade's transaction (pysqlite runs DDL outside one)."""
    migrator = create_engine(url, poolclass=NullPool, connect_args={"timeout": SQLITE_LOCK_WAIT_S})

    @event.listens_for(migrator, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(migrator, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return migrator


def _upgrade(engine: Engine) -> list[str]:
    from alembic import command

    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" in tables:
            start = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        elif LEGACY_TABLE in tables:
            start = _legacy_revision(conn)
        else:
            start = None
        stamped = "alembic_version" in tables
        if start == HEAD and stamped:
            return []  # another process upgraded it while this one waited for the lock
        known = _revisions()
        if start is not None and start not in known:
            raise RuntimeError(
                f"The database is at schema revision {start}, which this release does not know "
                f"(its newest is {HEAD}): it was made by a newer Prompt Workbench. Upgrade this one."
            )
        cfg = _config(conn)
        if start is not None and not stamped:
            command.stamp(cfg, start)
        command.upgrade(cfg, "head")
        return known[known.index(start) + 1 :] if start else known


def _legacy_revision(conn: Connection) -> str | None:
    """The revision matching what the numbered migrations recorded (they ran in order)."""
    ids = sorted(row[0] for row in conn.execute(text(f"SELECT id FROM {LEGACY_TABLE}")))
    if not ids:
        return None
    if ids != list(range(1, len(ids) + 1)) or len(ids) > 5:
        raise RuntimeError(f"{LEGACY_TABLE} records migrations {ids}; expected 1..n with n <= 5. Not upgrading.")
    return f"{ids[-1]:04d}"


def _config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = conn
    return cfg


def new_revision(message: str) -> Path:
    """Write the next revision: what differs between a scratch database at HEAD and storage/tables.py."""
    from alembic import command

    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/head.db", poolclass=NullPool)
        migrate(engine)
        with engine.connect() as conn:
            cfg = _config(conn)
            script = command.revision(cfg, message, autogenerate=True, rev_id=f"{int(HEAD) + 1:04d}")
            conn.commit()
        engine.dispose()
    return Path(script.path)  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.migrations", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="upgrade a database to the head revision")
    up.add_argument("url", nargs="?", help="database URL (default: WORKBENCH_DATABASE_URL or WORKBENCH_HOME's)")
    sub.add_parser("revision", help="write the next revision from the tables").add_argument("message")
    args = parser.parse_args(argv)
    if args.command == "revision":
        print(f"wrote {new_revision(args.message)}: review it before committing")
        return 0
    from storage import settings

    engine = create_engine(args.url or settings.database_url(), poolclass=NullPool)
    applied = migrate(engine)
    print(f"applied {', '.join(applied)}" if applied else f"already at {HEAD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
