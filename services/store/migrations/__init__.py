"""Alembic migrations of the catalog store; run them with `cairn db upgrade`."""
