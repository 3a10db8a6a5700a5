"""Alembic's environment for the catalog store.

Migrations are run by services/store/schema.py (`cairn db upgrade`, or the store's
`create_schema()` on PostgreSQL), which opens the connection, takes the migration lock and
hands the connection over in `config.attributes["connection"]`; no alembic.ini is read.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from services.store.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "The catalog store's migrations run through `cairn db upgrade` (or "
        "services.store.schema.upgrade(url)), which provides the database connection."
    )
if context.is_offline_mode():
    raise RuntimeError("The catalog store's migrations do not support offline (--sql) mode.")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    # SQLite cannot ALTER most things: later migrations rewrite its tables in batches.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
