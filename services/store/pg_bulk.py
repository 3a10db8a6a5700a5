"""PostgreSQL bulk writes: one `INSERT ... SELECT FROM jsonb_to_recordset(<the rows>)` per
batch. The statement is the same whatever the row count (parsed once) and the rows travel
as one JSON document, encoded by the json module's C code: several times faster than
executemany, a multi-row VALUES list or per-column arrays (whose text escaping cost more
than the database's work). Rows are inserted in the order given."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Table, text
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeDecorator

_RECORD_TYPES: tuple[tuple[type[Any], str], ...] = (
    (sqltypes.Boolean, "boolean"),
    (sqltypes.BigInteger, "bigint"),
    (sqltypes.Integer, "integer"),
    (sqltypes.DateTime, "timestamptz"),
    (sqltypes.JSON, "jsonb"),
    (sqltypes.String, "text"),
)


def replace_on_conflict(keys: Sequence[str], columns: Iterable[str]) -> str:
    """The clause that, when a row with the same `keys` exists, sets its other `columns` to
    the proposed row's (PostgreSQL refuses a statement that proposes one key twice)."""
    conflict = ", ".join(f'"{name}"' for name in keys)
    replaced = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in columns if name not in keys)
    return f"ON CONFLICT ({conflict}) DO UPDATE SET {replaced}"


def insert_rows(
    session: Session,
    row_class: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    suffix: str = "",
) -> list[Any]:
    """Insert `rows` (dicts of column values, all with the same keys) into `row_class`'s
    table; returns the rows of the suffix's RETURNING clause, if any."""
    if not rows:
        return []
    table = row_class.__table__
    assert isinstance(table, Table)
    statement = _statement(table, tuple(rows[0]), suffix)
    encoded = json.dumps(rows, default=_json_value, separators=(",", ":"))
    result = session.execute(statement, {"rows": encoded})
    return [tuple(row) for row in result] if "RETURNING" in suffix else []


def upsert_rows(
    session: Session,
    row_class: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    key: str,
    where: str = "",
) -> list[tuple[str, bool]]:
    """Insert `rows` or replace the rows with their `key` (each key once), a row only when
    `where` (SQL on the table and EXCLUDED) holds for it; returns (key, inserted) for each
    row written, inserted False when it replaced one (docs/architecture.md, decision 26)."""
    suffix = replace_on_conflict([key], rows[0]) + (f" WHERE {where}" if where else "")
    # xmax is 0 only on a row version this statement inserted: an ON CONFLICT update first
    # locks the row it replaces, and the new version keeps that lock in its xmax.
    return insert_rows(session, row_class, rows, f'{suffix} RETURNING "{key}", xmax = 0')


def _record_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    for python_type, name in _RECORD_TYPES:
        if isinstance(kind, python_type):
            return name
    raise TypeError(f"No PostgreSQL record type for column {column} ({kind!r}).")


@functools.cache
def _statement(table: Table, columns: tuple[str, ...], suffix: str) -> TextClause:
    named = ", ".join(f'"{name}"' for name in columns)
    record = ", ".join(f'"{name}" {_record_type(table.c[name])}' for name in columns)
    return text(
        f'INSERT INTO "{table.name}" ({named}) SELECT {named} '
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record}) {suffix}"
    )


def _json_value(value: object) -> str:
    if isinstance(value, datetime):  # a naive time is UTC, as UtcDateTime reads it
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"Cannot write {type(value).__name__} into a PostgreSQL row.")
