"""The catalog store's schema on PostgreSQL: Alembic migrations, applied and inspected.

`upgrade(url)` brings a database to the newest migration; `current_revision(url)` says
where it is. Both take a URL or an Engine. Migrations run in one transaction under a
PostgreSQL advisory lock, so processes that start together (several `cairn processors`,
an api and the `cairn db upgrade` job) migrate once and the others wait, then find the
schema at head. The migration scripts are in services/store/migrations/ (no alembic.ini).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Table, create_engine, event, inspect, literal, make_url, text
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateColumn

from services.store.port import StoreUnavailable
from services.store.tables import Base

MIGRATIONS = Path(__file__).parent / "migrations"

# pg_advisory_xact_lock(namespace, key): the namespace keeps Cairn's locks apart from
# anything else using advisory locks on the same database.
LOCK_NAMESPACE = 0x43414952  # "CAIR"
MIGRATION_LOCK = 0


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError(f"No migration found under {MIGRATIONS}.")
    return head


def known_revisions() -> set[str]:
    """Every revision the shipped migrations define."""
    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    return {script.revision for script in scripts}


def upgrade(target: str | Engine, revision: str = "head") -> str | None:
    """Apply the migrations up to `revision`; returns the revision the database is now at."""
    with _connection(target) as connection:
        if connection.dialect.name == "postgresql":
            # Transaction-scoped: released by the commit below (or the rollback on error).
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": LOCK_NAMESPACE, "key": MIGRATION_LOCK},
            )
        at = MigrationContext.configure(connection).get_current_revision()
        if at is not None and at not in known_revisions():
            where = connection.engine.url.render_as_string(hide_password=True)
            raise ValueError(
                f"The database at {where} is at schema revision {at}, which this version of "
                "Cairn does not know: a newer Cairn migrated it. Run that version (schema "
                "changes are not undone)."
            )
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        now = MigrationContext.configure(connection).get_current_revision()
        connection.commit()
        return now


def current_revision(target: str | Engine) -> str | None:
    """The revision the database is at, or None when no migration was ever applied."""
    with _connection(target) as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _connection(target: str | Engine) -> Iterator[Connection]:
    engine = (
        target
        if isinstance(target, Engine)
        else create_engine(database_url(target), poolclass=NullPool)
    )
    if engine is not target:
        map_connection_errors(engine)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        if engine is not target:
            engine.dispose()


def database_url(raw: str) -> str:
    """A database URL as SQLAlchemy takes it; `postgres://` and `postgresql://` (as hosting
    providers and Kubernetes secrets often write them) are read with psycopg 3.

    Raises ValueError, naming the setting, when `raw` is not a database URL.
    """
    try:
        parsed = make_url(raw.strip())
    except ArgumentError:
        raise ValueError(
            "CAIRN_DATABASE_URL is not a database URL; write it as "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL as it may be shown: the password masked."""
    return make_url(database_url(url)).render_as_string(hide_password=True)


def map_connection_errors(engine: Engine) -> None:
    """Turn "cannot connect" and "connection lost" errors into `StoreUnavailable`.

    Statement errors (a constraint, a missing table) stay as they are; so do the failures
    of a pool pre-ping, which SQLAlchemy answers by reconnecting.
    """
    where = safe_url(engine.url.render_as_string(hide_password=False))

    @event.listens_for(engine, "handle_error")
    def _unreachable(context: ExceptionContext) -> None:
        if context.is_pre_ping:
            return
        if context.connection is not None and not context.is_disconnect:
            return
        error = context.original_exception
        lines = str(error).strip().splitlines()
        reason = lines[0].strip().rstrip(".") if lines else type(error).__name__
        raise StoreUnavailable(
            f"The catalog store's database at {where} cannot be used ({reason}); check "
            "CAIRN_DATABASE_URL and that PostgreSQL is running and accepts this login."
        ) from context.sqlalchemy_exception


def upgrade_embedded(engine: Engine, tables: Sequence[Table] | None = None) -> None:
    """SQLite (the embedded store has no migration history): create the tables and indexes
    tables.py declares that the file lacks, and add the columns added to existing tables
    since the file was made, so a data dir from an older Cairn keeps working. A new column
    needs a default (tables.py's scalar one is written into the ALTER)."""
    chosen = list(tables) if tables is not None else Base.metadata.sorted_tables
    Base.metadata.create_all(engine, tables=chosen)
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table in chosen:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    connection.execute(text(_add_column(table, column, engine)))
    for table in chosen:
        # create_all skips the indexes of tables that exist: add those added since.
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def _add_column(table: Table, column: Column[Any], engine: Engine) -> str:
    ddl = str(CreateColumn(column).compile(dialect=engine.dialect))
    if column.server_default is None and column.default is not None:
        value = getattr(column.default, "arg", None)
        if not getattr(column.default, "is_scalar", False):
            raise ValueError(f"{table.name}.{column.name} needs a scalar default to be added.")
        literal_value = literal(value).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        ddl += f" DEFAULT {literal_value}"
    elif column.server_default is None and not column.nullable:
        raise ValueError(f"{table.name}.{column.name} is NOT NULL without a default.")
    return f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}'


def differences(target: str | Engine) -> list[str]:
    """How the database's schema differs from tables.py, one line per difference (empty
    when they agree). A table or column added to tables.py without a migration shows here.
    """
    with _connection(target) as connection:
        dialect = connection.dialect.name
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": _exists_on(dialect)},
        )
        return [_describe(diff) for diff in compare_metadata(context, Base.metadata)]


def _exists_on(dialect: str) -> Any:
    """Alembic's `include_object` filter: an index built with a PostgreSQL access method
    (a trigram GIN index) exists only on PostgreSQL (tables.py creates it there only)."""

    def include(item: Any, _name: Any, kind: str, _reflected: bool, _compare_to: Any) -> bool:
        if kind != "index" or dialect == "postgresql":
            return True
        return not item.dialect_options["postgresql"].get("using")

    return include


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe(item) for item in diff)
    operation, *details = diff
    if operation in ("add_table", "remove_table"):
        return f"{operation} {details[0].name}"
    if operation in ("add_index", "remove_index"):
        index = details[0]
        return f"{operation} {index.name} on {index.table.name}"
    if operation in ("add_column", "remove_column"):
        return f"{operation} {details[1]}.{details[2].name}"
    if operation.startswith("modify_"):
        _schema, table, column, _info, old, new = details
        return f"{operation} {table}.{column}: {old!r} in the database, {new!r} in tables.py"
    return f"{operation} {details}"
