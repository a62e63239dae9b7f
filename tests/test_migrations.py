"""Alembic revisions: the same schema as the numbered migrations they replace, the same as the
SQLModel tables, old databases upgraded without loss, safe and cheap at every process start.

tests/fixtures/legacy_migrations.py is storage/migrations.py as it was before Alembic (commit
31e417b), kept to write databases the way that release did; tests/fixtures/release_31e417b.db.gz
is a database that release made (`workbench init`, then a 6-row eval against the fake server).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from storage import db, migrations

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_URL = os.environ.get("WORKBENCH_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not PG_URL, reason="set WORKBENCH_TEST_POSTGRES_URL (a scratch database) to run")


def _legacy():
    spec = importlib.util.spec_from_file_location("legacy_migrations", FIXTURES / "legacy_migrations.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _legacy_database(url: str, upto: int) -> None:
    """A database as the release before Alembic made it, with numbered migrations 1..upto."""
    legacy = _legacy()
    legacy.MIGRATIONS = legacy.MIGRATIONS[:upto]
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        legacy.migrate(conn)
        conn.commit()
    engine.dispose()


def _sqlite_schema(path: Path) -> set[tuple[str, str]]:
    """Every table's and index's CREATE statement, as SQLite stored it (the text written, verbatim)."""
    raw = sqlite3.connect(path)
    try:
        return set(
            raw.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                " AND name NOT IN ('schema_migration', 'alembic_version')"
            )
        )
    finally:
        raw.close()


def _counts(path: Path) -> dict[str, int]:
    raw = sqlite3.connect(path)
    try:
        names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: raw.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        raw.close()


def _fresh_postgres() -> str:
    assert PG_URL
    engine = create_engine(PG_URL, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return PG_URL


def test_head_is_the_last_of_one_line_of_revisions():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations._config())
    assert script.get_heads() == [migrations.HEAD]
    chain = [s.revision for s in reversed(list(script.walk_revisions()))]
    assert chain == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert chain[:5] == ["0001", "0002", "0003", "0004", "0005"]


def test_fresh_database_matches_the_tables(workbench_home):
    engine = db.engine()
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        assert migrations.schema_differences(conn) == []
    assert migrations.migrate(engine) == []


def test_the_comparison_sees_types_not_just_names(workbench_home):
    """A column whose type differs (same name) is reported: the check is not by name only."""
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE prompt ADD COLUMN spare INTEGER"))
        conn.execute(text("CREATE TABLE side (id INTEGER PRIMARY KEY, note VARCHAR(20))"))
    with engine.connect() as conn:
        diffs = migrations.schema_differences(conn)
    assert {d[0] for d in diffs if isinstance(d, tuple)} == {"remove_column", "remove_table"}
    raw = sqlite3.connect(workbench_home / "workbench.db")  # the same column name, another type: REAL, not TEXT
    raw.executescript(
        "ALTER TABLE model_price RENAME COLUMN model TO model_old; ALTER TABLE model_price ADD COLUMN model REAL;"
    )
    raw.close()
    with engine.connect() as conn:
        diffs = migrations.schema_differences(conn)
    modified = [d[0] for d in diffs if isinstance(d, list)]
    assert [m for m in modified if m[0] == "modify_type" and m[2:4] == ("model_price", "model")], diffs


def test_revisions_write_exactly_what_the_numbered_migrations_wrote(workbench_home, tmp_path):
    _legacy_database(f"sqlite:///{tmp_path / 'legacy.db'}", upto=5)
    db.engine()
    legacy = _sqlite_schema(tmp_path / "legacy.db")
    names = {name for name, _ in legacy}  # revisions after 0005 add tables of their own
    assert {(name, sql) for name, sql in _sqlite_schema(workbench_home / "workbench.db") if name in names} == legacy


def test_database_made_by_the_last_release_upgrades_and_keeps_every_row(workbench_home):
    from workbench import prompts

    workbench_home.mkdir(parents=True, exist_ok=True)
    path = workbench_home / "workbench.db"
    path.write_bytes(gzip.decompress((FIXTURES / "release_31e417b.db.gz").read_bytes()))
    before = _counts(path)
    assert before["llm_call"] == 6 and before["score"] == 6 and before["prompt_version"] > 0

    engine = db.engine()
    after = _counts(path)
    assert {name: n for name, n in after.items() if name in before} == before
    assert all(n == 0 for name, n in after.items() if name not in before and name != "alembic_version")  # new tables
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        assert migrations.schema_differences(conn) == []
    assert prompts.save_version("after-upgrade", template="hi {{x}}").version.version == 1  # and it is writable


def test_partly_migrated_database_is_stamped_then_upgraded_with_its_data(workbench_home):
    """Recorded up to migration 3: stamped at 0003, then 0004 and 0005 run (0005 backfills spend)."""
    url = f"sqlite:///{workbench_home / 'workbench.db'}"
    workbench_home.mkdir(parents=True, exist_ok=True)
    _legacy_database(url, upto=3)
    raw = sqlite3.connect(workbench_home / "workbench.db")
    raw.executescript(
        "INSERT INTO run (id, config, status, concurrency, use_cache, repeat, created_at)"
        " VALUES (1, '{}', 'done', 1, 1, 1, '2026-01-01');"
        "INSERT INTO llm_call (created_at, source, model, request_hash, messages, params, cost_usd, cached, run_id)"
        " VALUES ('2026-01-01', 'run', 'm', 'h1', '[]', '{}', 0.25, 0, 1), ('2026-01-01', 'run', 'm', 'h2', '[]', '{}', 0.5, 0, 1);"
    )
    raw.commit()
    raw.close()

    assert migrations.migrate(create_engine(url, poolclass=NullPool))[:2] == ["0004", "0005"]  # then any later ones
    raw = sqlite3.connect(workbench_home / "workbench.db")
    assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.HEAD,)]
    assert raw.execute("SELECT spent_usd FROM run").fetchall() == [(0.75,)]
    assert raw.execute("SELECT attempts FROM llm_call").fetchall() == [(1,), (1,)]
    assert [r[0] for r in raw.execute("SELECT id FROM schema_migration ORDER BY id")] == [1, 2, 3]  # left as it was
    raw.close()


def test_a_failing_revision_leaves_the_database_as_it_was(workbench_home):
    """0005's third statement fails here (the column exists): its table and the stamp roll back too."""
    url = f"sqlite:///{workbench_home / 'workbench.db'}"
    workbench_home.mkdir(parents=True, exist_ok=True)
    _legacy_database(url, upto=4)
    raw = sqlite3.connect(workbench_home / "workbench.db")
    raw.execute("ALTER TABLE run ADD COLUMN reserved_usd REAL")
    raw.commit()
    raw.close()
    schema = _sqlite_schema(workbench_home / "workbench.db")

    with pytest.raises(OperationalError, match="duplicate column"):
        migrations.migrate(create_engine(url, poolclass=NullPool))
    assert _sqlite_schema(workbench_home / "workbench.db") == schema  # no job_lease, no spent_usd
    raw = sqlite3.connect(workbench_home / "workbench.db")
    assert not raw.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchall()
    raw.close()


def test_unknown_newer_revision_is_refused_with_a_clear_message(workbench_home):
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RuntimeError, match="newer Prompt Workbench"):
        migrations.migrate(engine)


def _python(code: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_at_head_a_process_start_is_a_version_check_without_alembic(workbench_home):
    db.engine()
    code = (
        "import sys, time\n"
        "from storage import db\n"
        "t = time.perf_counter(); db.engine(); ms = (time.perf_counter() - t) * 1000\n"
        "print('alembic' in sys.modules, round(ms, 2))\n"
    )
    proc = _python(code, {"WORKBENCH_HOME": str(workbench_home)})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    imported, ms = out.split()
    assert imported == "False"
    print(f"engine() at head: {ms} ms")


def _start_together(url_env: dict[str, str], tmp_path: Path, processes: int = 3) -> None:
    """Processes that all wait for one file, then open the database: whichever migrates, the
    others wait for its lock and find the head (or find it already there)."""
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
        "from storage import db, migrations\n"
        "eng = db.engine()\n"
        "with eng.connect() as conn: print(migrations.current(conn))\n"
    )
    procs = [_python(code, url_env) for _ in range(processes)]
    go.write_text("")
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == migrations.HEAD


def test_processes_starting_together_on_a_new_database(workbench_home, tmp_path):
    _start_together({"WORKBENCH_HOME": str(workbench_home)}, tmp_path)
    with db.engine().connect() as conn:
        assert migrations.schema_differences(conn) == []
        assert conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM rollup_state")).scalar() == 2  # 0003's rows, once


def test_processes_starting_together_on_a_legacy_database(workbench_home, tmp_path):
    workbench_home.mkdir(parents=True, exist_ok=True)
    _legacy_database(f"sqlite:///{workbench_home / 'workbench.db'}", upto=2)
    _start_together({"WORKBENCH_HOME": str(workbench_home)}, tmp_path)
    with db.engine().connect() as conn:
        assert migrations.schema_differences(conn) == []


@needs_postgres
def test_postgresql_revisions_match_the_tables_and_the_numbered_migrations(monkeypatch):
    url = _fresh_postgres()
    engine = db.engine(url)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        assert migrations.schema_differences(conn) == []
    fresh = _pg_columns(url)
    db.dispose_all()

    _fresh_postgres()
    _legacy_database(url, upto=5)
    legacy = _pg_columns(url)
    tables = {column[0] for column in legacy}  # revisions after 0005 add tables of their own
    assert legacy == {c for c in fresh if c[0] in tables}  # what the numbered migrations made, column for column
    engine = db.engine(url)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        assert migrations.schema_differences(conn) == []


@needs_postgres
def test_postgresql_processes_starting_together_on_a_legacy_database(tmp_path):
    url = _fresh_postgres()
    _legacy_database(url, upto=3)
    _start_together({"WORKBENCH_DATABASE_URL": url}, tmp_path)
    with db.engine(url).connect() as conn:
        assert migrations.schema_differences(conn) == []


def _pg_columns(url: str) -> set[tuple]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        columns = set(
            conn.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_nullable, column_default"
                    " FROM information_schema.columns WHERE table_schema = 'public'"
                    " AND table_name NOT IN ('schema_migration', 'alembic_version')"
                )
            )
        )
        indexes = set(
            conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                    " AND tablename NOT IN ('schema_migration', 'alembic_version')"
                )
            )
        )
    engine.dispose()
    return columns | indexes


def test_new_revision_holds_what_the_tables_add_and_nothing_else(tmp_path, monkeypatch):
    """`python -m storage.migrations revision` against a copy of the revisions: an unchanged schema
    gives an empty revision (no spurious SQLite key changes); a new table gives its create_table."""
    from sqlalchemy import Column, Integer, Table, Text

    from storage.tables import SQLModel

    shutil.copytree(migrations.ALEMBIC_DIR, tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrations, "ALEMBIC_DIR", tmp_path / "alembic")
    nothing = migrations.new_revision("nothing changed")
    assert nothing.name == f"r{int(migrations.HEAD) + 1:04d}_nothing_changed.py"
    body = nothing.read_text()
    assert f"down_revision: str | None = {migrations.HEAD!r}" in body
    assert "def upgrade() -> None:\n    # ### commands auto generated by Alembic - please adjust! ###\n    pass" in body
    nothing.unlink()

    scratch = Table("scratch_note", SQLModel.metadata, Column("id", Integer, primary_key=True), Column("note", Text))
    try:
        body = migrations.new_revision("scratch note").read_text()
    finally:
        SQLModel.metadata.remove(scratch)
    assert "op.create_table(" in body and "'scratch_note'" in body
    assert "alter_column" not in body and "batch_alter_table" not in body
