"""Alembic's environment: the schema is `SQLModel.metadata` (storage/tables.py), and the
connection (already in the caller's transaction, holding the migration lock) comes from
storage/migrations.py, the only way migrations are run."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (declares the tables on SQLModel.metadata)
from storage.migrations import include_name, without_sqlite_key_nullability

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `python -m storage.migrations` (or storage.db.engine()), not `alembic`.")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_name=include_name,
    process_revision_directives=without_sqlite_key_nullability,
    compare_type=True,
    compare_server_default=True,
    render_as_batch=True,  # SQLite alters a table by copying it; batch mode writes that for both dialects
)
with context.begin_transaction():
    context.run_migrations()
