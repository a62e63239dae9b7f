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
        assert migrations.current(conn) == migrations.HEAD
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_migrating_twice_changes_nothing(workbench_home):
    engine = db.engine()
    assert migrations.migrate(engine) == []


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


def test_storage_imports_nothing_from_workbench():
    """storage/ is the lower layer: no module in it imports workbench, directly or on import."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    modules = []
    for path in sorted((root / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not [n for n in names if n == "workbench" or n.startswith("workbench.")], path
        if "alembic" not in path.parts:
            modules.append(".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"))
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n" + (
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'workbench'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
