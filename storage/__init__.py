"""Persistence: the schema (SQLModel tables), its Alembic migrations, the engine and sessions, and the
queries. Imports nothing from `workbench/`."""
