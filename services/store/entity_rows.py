"""Entities read from their rows with SQLAlchemy Core. No ORM objects are built: a page of
entities is read, not tracked.

Two shapes: StoredEntity (bodies parsed, relations read in a second query; for the
processors and single reads) and EntityDocument (bodies left as the stored JSON text,
relations aggregated into JSON by the same query; for the catalog API's lists, which write
most of them out again unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on

from services.model.catalog import EntityDocument, StoredEntity
from services.model.events import ErrorRecord, RelationRecord
from services.store.collation import ENTITY_KEY
from services.store.tables import EntityRow, RelationRow

LOAD_BATCH = 500

_ENTITY_COLUMNS = (
    EntityRow.ref_key,
    EntityRow.ref,
    EntityRow.kind,
    EntityRow.namespace,
    EntityRow.name,
    EntityRow.uid,
    EntityRow.etag,
    EntityRow.body,
    EntityRow.errors,
    EntityRow.location_id,
    EntityRow.location_target,
    EntityRow.version,
    EntityRow.updated_at,
)


def live_entities() -> Select[Any]:
    """The columns a StoredEntity is built from, of entities that are not tombstones."""
    return select(*_ENTITY_COLUMNS).where(EntityRow.deleted.is_(False))


def _by_keys(stmt: Any, column: Any) -> dict[str, Any]:
    """`stmt` for the rows whose `column` is in the `keys` parameter (a list), by dialect
    name. SQLite: an expanding IN. PostgreSQL: `= ANY` of one array parameter, so that the
    SQL text is the same for every list and psycopg prepares it once (an IN list of 100 keys
    is new SQL to parse, plan and send for every page)."""
    return {
        "sqlite": stmt.where(column.in_(bindparam("keys", expanding=True))),
        "postgresql": stmt.where(column == any_(bindparam("keys", type_=ARRAY(String)))),
    }


# Built once: a statement object keeps its cache key, so reading a page builds no SQL.
_RELATIONS = _by_keys(
    select(
        RelationRow.source_key,
        RelationRow.type,
        RelationRow.target_key,
        RelationRow.source_ref,
        RelationRow.target_ref,
    ),
    RelationRow.source_key,
)


def _relations_json(dialect: str) -> Any:
    """Per entity row, its outgoing relations as Backstage's JSON array (`[{"type",
    "targetRef"}]`): once per type and target, ordered by type then target ref, as
    relations_of orders them. Built by the database, so a page of documents needs no second
    query and no Python per relation."""
    edges = select(RelationRow.type, RelationRow.target_ref).where(
        RelationRow.source_key == ENTITY_KEY
    )
    if dialect == "postgresql":
        one = edges.ext(distinct_on(RelationRow.type, RelationRow.target_key)).order_by(
            RelationRow.type, RelationRow.target_key
        )
        row = one.correlate(EntityRow).subquery("edges")
        relation = func.json_build_object("type", row.c.type, "targetRef", row.c.target_ref)
        bytewise = (row.c.type.collate("C"), row.c.target_ref.collate("C"))
        ordered = aggregate_order_by(relation, *bytewise)
        array = func.coalesce(func.json_agg(ordered), literal_column("'[]'::json"))
        return select(cast(array, Text)).scalar_subquery()
    one = edges.group_by(RelationRow.type, RelationRow.target_key).order_by(
        RelationRow.type, RelationRow.target_ref
    )
    row = one.correlate(EntityRow).subquery("edges")
    relation = func.json_object("type", row.c.type, "targetRef", row.c.target_ref)
    return select(func.json_group_array(relation)).scalar_subquery()


def _document_columns(dialect: str) -> tuple[Any, ...]:
    return (
        EntityRow.ref,
        EntityRow.kind,
        EntityRow.namespace,
        EntityRow.name,
        EntityRow.uid,
        cast(EntityRow.body, Text).label("body_json"),
        cast(EntityRow.errors, Text).label("errors_json"),
        _relations_json(dialect).label("relations_json"),
    )


_DOCUMENT_COLUMNS = {dialect: _document_columns(dialect) for dialect in ("sqlite", "postgresql")}


def document_columns(dialect: str) -> tuple[Any, ...]:
    """What to_document builds an EntityDocument from, in a query over the entities table: the
    body and errors as the JSON text the database holds (CAST is a no-op on SQLite's text; on
    PostgreSQL it prints the JSONB), and the relations as _relations_json makes them. Built
    once per dialect: every page's statement reuses them."""
    return _DOCUMENT_COLUMNS[dialect]


def to_document(row: Row[Any]) -> EntityDocument:
    return EntityDocument(
        ref=row.ref,
        kind=row.kind,
        namespace=row.namespace,
        name=row.name,
        uid=row.uid,
        body_json=row.body_json,
        errors_json=row.errors_json,
        relations_json=row.relations_json,
    )


_DOCUMENTS_BY_KEYS = {
    dialect: _by_keys(
        select(EntityRow.ref_key, *document_columns(dialect)).where(EntityRow.deleted.is_(False)),
        EntityRow.ref_key,
    )[dialect]
    for dialect in ("sqlite", "postgresql")
}


def relations_of(connection: Connection, keys: Sequence[str]) -> dict[str, list[RelationRecord]]:
    """Each entity's outgoing relations (whatever change produced them), once per type and
    target, ordered by type then target ref."""
    found: dict[str, dict[tuple[str, str], RelationRecord]] = {}
    stmt = _RELATIONS[connection.dialect.name]
    rows = connection.execute(stmt, {"keys": list(keys)}).all()
    for source_key, relation_type, target_key, source_ref, target_ref in rows:
        found.setdefault(source_key, {})[(relation_type, target_key)] = (
            RelationRecord.model_construct(
                source_ref=source_ref, type=relation_type, target_ref=target_ref
            )
        )
    return {
        key: sorted(edges.values(), key=lambda r: (r.type, r.target_ref))
        for key, edges in found.items()
    }


def to_entities(connection: Connection, rows: Sequence[Row[Any]]) -> list[StoredEntity]:
    """Rows of `live_entities()` as StoredEntity values, with their relations."""
    if not rows:
        return []
    relations = relations_of(connection, [row.ref_key for row in rows])
    return [_to_entity(row, relations.get(row.ref_key, [])) for row in rows]


def load_documents(
    connection: Connection, keys: Sequence[str], condition: ColumnElement[bool] | None = None
) -> dict[str, EntityDocument]:
    """The live entities among `keys` (ref keys) that meet `condition`, by ref key, as
    documents."""
    found: dict[str, EntityDocument] = {}
    unique = list(dict.fromkeys(keys))
    stmt = _DOCUMENTS_BY_KEYS[connection.dialect.name]
    if condition is not None:
        stmt = stmt.where(condition)
    for start in range(0, len(unique), LOAD_BATCH):
        rows = connection.execute(stmt, {"keys": unique[start : start + LOAD_BATCH]}).all()
        for row in rows:
            found[row.ref_key] = to_document(row)
    return found


def _to_entity(row: Row[Any], relations: list[RelationRecord]) -> StoredEntity:
    return StoredEntity(
        ref=row.ref,
        kind=row.kind,
        namespace=row.namespace,
        name=row.name,
        uid=row.uid,
        etag=row.etag,
        body=row.body,
        location_id=row.location_id,
        location_target=row.location_target,
        version=row.version,
        updated_at=row.updated_at,
        errors=[ErrorRecord.model_validate(e) for e in row.errors or []],
        relations=relations,
    )
