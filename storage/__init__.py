"""Persistence: SQLModel tables, the engine and sessions, and append-only migrations."""
