"""The store and index projections of `cairn.entity.changes`.

Both take a batch of log records and apply it with the record's offset as the version, so
replays and redeliveries change nothing and a late change never overwrites a newer one.

The index projection's drivers (the embedded runner, the faust agent) call
`project_to_index_with_retry`: an unreachable or overloaded index is retried with backoff
until it takes the batch (nothing is dropped, offsets are not committed meanwhile), and the
documents the index rejects come back to be put on the dead-letter topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from services.bus.port import LogRecord
from services.index.document import build_search_document
from services.index.port import IndexUnavailable, IndexWrite, SearchIndex, WritesRejected
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


log = logging.getLogger("cairn.processors.index")


@dataclass(frozen=True)
class Backoff:
    """Growing pauses between retries of a batch: first, first*factor, ... up to limit."""

    first: float = 0.2
    factor: float = 2.0
    limit: float = 10.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(self.limit, delay * self.factor)


class ProjectionStopped(Exception):
    """The driver is stopping while a batch still waits for the index: commit nothing."""


class DocumentRejected(Exception):
    """The index refused this record's document; the reason is the index's own."""


@dataclass(frozen=True)
class RejectedRecord:
    record: LogRecord
    error: DocumentRejected


def project_to_index_with_retry(
    index: SearchIndex,
    records: Sequence[LogRecord],
    *,
    backoff: Backoff | None = None,
    stopping: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], object] = time.sleep,
) -> list[RejectedRecord]:
    """Apply the records to the index, retrying while it is unavailable.

    Returns the records whose documents the index rejected (every other record is applied),
    for the dead-letter topic. Raises ProjectionStopped if `stopping()` turns true while
    waiting; the caller must then not commit the batch.
    """
    writes = [index_write(r.key, r.offset, decode_entity_change(r)) for r in records]
    delays = (backoff or Backoff()).delays()
    failures = 0
    while True:
        try:
            index.apply(writes)
            if failures:
                log.warning("index projection: the index took the batch after %d retries", failures)
            return []
        except WritesRejected as exc:
            by_write = {(w.ref.lower(), w.version): r for w, r in zip(writes, records, strict=True)}
            rejected: list[RejectedRecord] = []
            for refused in exc.rejected:
                record = by_write.get((refused.ref.lower(), refused.version))
                if record is not None:
                    rejected.append(RejectedRecord(record, DocumentRejected(refused.reason)))
            return rejected
        except IndexUnavailable as exc:
            failures += 1
            delay = next(delays)
            log.warning(
                "index projection: %s; retrying %d record(s) in %.1fs (attempt %d)",
                exc,
                len(records),
                delay,
                failures,
            )
            if stopping():
                raise ProjectionStopped(str(exc)) from exc
            sleep(delay)
            if stopping():
                raise ProjectionStopped(str(exc)) from exc
