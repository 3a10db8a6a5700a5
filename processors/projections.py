"""The store and index projections of `cairn.entity.changes`.

Both take a batch of log records and apply it with the record's offset as the version, so
replays and redeliveries change nothing and a late change never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.bus.port import LogRecord
from services.index.document import build_search_document
from services.index.port import IndexWrite, SearchIndex
from services.model.events import EntityChanged
from services.store.port import CatalogStore, VersionedChange


def decode_entity_change(record: LogRecord) -> EntityChanged | None:
    if record.value is None:
        return None
    return EntityChanged.model_validate_json(record.value)


def project_to_store(store: CatalogStore, records: Sequence[LogRecord]) -> int:
    changes = [
        VersionedChange(ref=record.key, version=record.offset, change=decode_entity_change(record))
        for record in records
    ]
    return store.apply_entity_changes(changes)


def index_write(ref: str, version: int, change: EntityChanged | None) -> IndexWrite:
    if change is None:
        return IndexWrite(ref=ref, version=version, document=None)
    document = build_search_document(change.ref, change.entity, change.changed_at.timestamp())
    return IndexWrite(ref=change.ref, version=version, document=document)


def project_to_index(index: SearchIndex, records: Sequence[LogRecord]) -> None:
    index.apply([index_write(r.key, r.offset, decode_entity_change(r)) for r in records])
