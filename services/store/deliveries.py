"""The delivery ledger of the Kafka log as the catalog database's `deliveries` table.

See services/bus/delivery_ledger.py for the contract; this adapter lives here because its
rows do (services/store/tables.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, bindparam, create_engine, delete, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from services.bus.port import LogUnavailable
from services.store.tables import DeliveryRow


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


class SqlDeliveryLedger:
    """The ledger as the `deliveries` table of the catalog database (PostgreSQL or SQLite)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sqlite = url.startswith("sqlite")
        self._engine = (
            _sqlite_engine(url)
            if self._sqlite
            else create_engine(
                url,
                # Each statement is its own transaction: a check or a record is one round trip,
                # not BEGIN, the statement, then COMMIT (or the pool's ROLLBACK on return).
                isolation_level="AUTOCOMMIT",
                # Connections kept open for the receivers' concurrent statements (at most
                # kafka_log._LEDGER_THREADS at once), so a burst does not open and close a
                # PostgreSQL backend per webhook.
                pool_size=10,
                max_overflow=10,
                # No pre-ping: it would add a round trip to every webhook; a connection that
                # a database restart broke fails one request (503) and the pool is refreshed.
            )
        )
        self._table: Table = DeliveryRow.__table__  # type: ignore[assignment]
        # Built once: building a statement costs more CPU than running its cached form.
        self._lookup = select(DeliveryRow.offset).where(
            DeliveryRow.delivery_id == bindparam("delivery_id")
        )
        self._insert = (sqlite.insert if self._sqlite else postgresql.insert)(
            self._table
        ).on_conflict_do_nothing(index_elements=["delivery_id"])

    def create_schema(self) -> None:
        """Make sure the `deliveries` table exists: on PostgreSQL by applying the catalog's
        migrations (as the store does), on SQLite by creating it if it is missing."""
        if self._sqlite:
            self._table.create(self._engine, checkfirst=True)
        else:
            from services.store import schema

            # Its own engine: migrating needs a transaction (it holds an advisory lock).
            schema.upgrade(self._url)

    def recorded(self, delivery_id: str) -> int | None:
        try:
            with self._engine.connect() as connection:
                offset = connection.execute(
                    self._lookup, {"delivery_id": delivery_id}
                ).scalar_one_or_none()
        except OperationalError as exc:
            raise LogUnavailable(f"The delivery ledger's database is unreachable: {exc}") from exc
        return int(offset) if offset is not None else None

    def record(self, delivery_id: str, topic: str, partition: int, offset: int) -> None:
        row = {
            "delivery_id": delivery_id,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "recorded_at": datetime.now(UTC),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(self._insert, row)
        except OperationalError as exc:
            # The record is on the log but not marked: the sender's retry is published again.
            raise LogUnavailable(f"The delivery ledger's database is unreachable: {exc}") from exc

    def forget_older_than(self, age: timedelta) -> int:
        """Drop ids recorded longer ago than `age` (senders stop redelivering after days)."""
        cutoff = datetime.now(UTC) - age
        with self._engine.begin() as connection:
            result = connection.execute(delete(self._table).where(DeliveryRow.recorded_at < cutoff))
        return int(result.rowcount or 0)

    def close(self) -> None:
        self._engine.dispose()
