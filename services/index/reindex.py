"""Rebuilding the search index from the catalog store (`cairn reindex`).

The store holds every live entity with the log offset that wrote it, which is the version
the index projection uses; rebuilding is therefore a version-guarded copy, safe to run while
the projection keeps applying changes:

- OpenSearch builds a new physical index behind the aliases and swaps them atomically
  (see OpenSearchRebuild: the projection writes to both indexes meanwhile, and a catch-up
  pass merges what the old index holds at newer versions than the store);
- FTS5 re-derives every document in place, batch by batch (see Fts5Rebuild).

Either way searches keep answering throughout and no change applied before the rebuild
finished is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from services.index.document import build_search_document
from services.index.port import IndexWrite, RebuildableIndex, SearchIndex
from services.model.catalog import StoredEntity
from services.store.port import CatalogStore

log = logging.getLogger("cairn.index.reindex")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ReindexResult:
    documents: int
    seconds: float
    description: str


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch; a naive time (SQLite drops the zone) is UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def store_writes(entities: Iterable[StoredEntity]) -> Iterator[IndexWrite]:
    """The index write the projection made for each stored entity, with its version."""
    for entity in entities:
        document = build_search_document(entity.ref, entity.body, epoch_seconds(entity.updated_at))
        yield IndexWrite(ref=entity.ref, version=entity.version, document=document)


def _batches(writes: Iterator[IndexWrite], size: int) -> Iterator[list[IndexWrite]]:
    batch: list[IndexWrite] = []
    for write in writes:
        batch.append(write)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def reindex(
    store: CatalogStore,
    index: RebuildableIndex,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> ReindexResult:
    """Rebuild `index` from `store`; searches and the projection go on meanwhile."""
    started = time.monotonic()
    rebuild = index.begin_rebuild()
    written = 0
    try:
        for batch in _batches(store_writes(store.iter_entities(batch_size)), batch_size):
            rebuild.write(batch)
            written += len(batch)
            if progress is not None:
                progress(written)
        description = rebuild.finish()
    except BaseException:
        rebuild.abort()
        raise
    return ReindexResult(written, time.monotonic() - started, description)


def fill_if_empty(store: CatalogStore, index: SearchIndex, batch_size: int = 1000) -> int:
    """Fill an empty index from the store (a new cluster, or an index of an older layout).

    Plain version-guarded `apply`s: idempotent, and safe beside the projection and beside
    another process doing the same. Returns how many entities were written.
    """
    if index.count() > 0 or store.count_entities() == 0:
        return 0
    written = 0
    for batch in _batches(store_writes(store.iter_entities(batch_size)), batch_size):
        index.apply(batch)
        written += len(batch)
    log.info("filled the empty search index with %d entities from the store", written)
    return written
