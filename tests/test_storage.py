import sqlite3

from sqlalchemy import inspect, text

from storage import db, migrations
from storage.tables import SQLModel


def test_fresh_database_is_migrated_and_matches_the_models(workbench_home):
    engine = db.engine()
    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM schema_migration ORDER BY id"))]
        assert ids == [m[0] for m in migrations.MIGRATIONS]
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_migrating_twice_changes_nothing(workbench_home):
    engine = db.engine()
    with engine.connect() as conn:
        assert migrations.migrate(conn) == []


def test_existing_database_upgrades_without_loss(workbench_home, monkeypatch):
    """A database made by an older release (only migration 1) keeps its rows when upgraded."""
    from workbench import prompts

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    prompts.save_version("kept", template="hello {{x}}")
    db.dispose_all()
    monkeypatch.undo()
    monkeypatch.setenv("WORKBENCH_HOME", str(workbench_home))
    extra = (999, "test-only: add a column", ["ALTER TABLE prompt ADD COLUMN test_extra TEXT"])
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [extra])
    db.engine()
    raw = sqlite3.connect(workbench_home / "workbench.db")
    assert raw.execute("SELECT name FROM prompt").fetchall() == [("kept",)]
    assert "test_extra" in [r[1] for r in raw.execute("PRAGMA table_info(prompt)")]
    assert 999 in [r[0] for r in raw.execute("SELECT id FROM schema_migration")]


def test_foreign_keys_are_enforced(workbench_home):
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with db.engine().begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO prompt_label (prompt_id, label, version_id, updated_at) "
                    "VALUES (42, 'production', 42, CURRENT_TIMESTAMP)"
                )
            )
