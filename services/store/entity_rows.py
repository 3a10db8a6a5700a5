"""Entities read from their rows with SQLAlchemy Core: the rows in one query per batch, their
relations in one more. No ORM objects are built: a page of entities is read, not tracked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, bindparam, select

from services.model.catalog import StoredEntity
from services.model.events import ErrorRecord, RelationRecord
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


# Built once: a statement object keeps its cache key, so reading a page builds no SQL.
_BY_KEYS = live_entities().where(EntityRow.ref_key.in_(bindparam("keys", expanding=True)))
_RELATIONS = select(
    RelationRow.source_key,
    RelationRow.type,
    RelationRow.target_key,
    RelationRow.source_ref,
    RelationRow.target_ref,
).where(RelationRow.source_key.in_(bindparam("keys", expanding=True)))


def relations_of(connection: Connection, keys: Sequence[str]) -> dict[str, list[RelationRecord]]:
    """Each entity's outgoing relations (whatever change produced them), once per type and
    target, ordered by type then target ref."""
    found: dict[str, dict[tuple[str, str], RelationRecord]] = {}
    rows = connection.execute(_RELATIONS, {"keys": list(keys)}).all()
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


def load_entities(
    connection: Connection, keys: Sequence[str], condition: ColumnElement[bool] | None = None
) -> dict[str, StoredEntity]:
    """The live entities among `keys` (ref keys) that meet `condition`, by ref key."""
    found: dict[str, StoredEntity] = {}
    unique = list(dict.fromkeys(keys))
    stmt = _BY_KEYS if condition is None else _BY_KEYS.where(condition)
    for start in range(0, len(unique), LOAD_BATCH):
        rows = connection.execute(stmt, {"keys": unique[start : start + LOAD_BATCH]}).all()
        for row, entity in zip(rows, to_entities(connection, rows), strict=True):
            found[row.ref_key] = entity
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
