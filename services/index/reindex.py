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

Deployments: the deployments store holds every entity's environments but not the
`cairn.deployments` offset that last changed them, so they are written at `STORE_VERSION`
(below every offset): they fill in what an index lacks (a new OpenSearch index, a lost FTS5
file) and never replace what the deployments projection wrote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from services.index.document import build_search_document, deployed_environment
from services.index.port import (
    STORE_VERSION,
    DeploymentIndex,
    DeploymentRebuild,
    DeploymentsWrite,
    IndexWrite,
    RebuildableIndex,
    SearchIndex,
)
from services.model.catalog import StoredEntity
from services.model.ci_events import EnvironmentState
from services.store.port import CatalogStore

log = logging.getLogger("cairn.index.reindex")

Progress = Callable[[int], None]
W = TypeVar("W")


class EnvironmentStates(Protocol):
    """Where the environments of every entity are kept (the deployments store)."""

    def iter_environment_states(
        self, batch_size: int = 1000
    ) -> Iterator[tuple[str, list[EnvironmentState]]]: ...


@dataclass(frozen=True)
class ReindexResult:
    documents: int
    seconds: float
    description: str
    deployments: int = 0  # entities whose environments were written from the store


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch; a naive time (SQLite drops the zone) is UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def store_writes(entities: Iterable[StoredEntity]) -> Iterator[IndexWrite]:
    """The index write the projection made for each stored entity, with its version."""
    for entity in entities:
        document = build_search_document(entity.ref, entity.body, epoch_seconds(entity.updated_at))
        yield IndexWrite(ref=entity.ref, version=entity.version, document=document)


def store_deployment_writes(
    states: EnvironmentStates, batch_size: int
) -> Iterator[DeploymentsWrite]:
    """Each entity's environments as the store holds them, at `STORE_VERSION`."""
    for ref_key, environments in states.iter_environment_states(batch_size):
        yield DeploymentsWrite(
            ref=ref_key,
            version=STORE_VERSION,
            environments=[deployed_environment(state) for state in environments],
        )


def _batches(writes: Iterator[W], size: int) -> Iterator[list[W]]:
    batch: list[W] = []
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
    deployments: EnvironmentStates | None = None,
) -> ReindexResult:
    """Rebuild `index` from `store` (and its deployments from `deployments`, when the index
    keeps them); searches and the projection go on meanwhile."""
    started = time.monotonic()
    rebuild = index.begin_rebuild()
    written = deployed = 0
    try:
        for batch in _batches(store_writes(store.iter_entities(batch_size)), batch_size):
            rebuild.write(batch)
            written += len(batch)
            if progress is not None:
                progress(written)
        if deployments is not None and isinstance(rebuild, DeploymentRebuild):
            for writes in _batches(store_deployment_writes(deployments, batch_size), batch_size):
                rebuild.write_deployments(writes)
                deployed += len(writes)
        description = rebuild.finish()
    except BaseException:
        rebuild.abort()
        raise
    return ReindexResult(written, time.monotonic() - started, description, deployed)


def fill_if_empty(
    store: CatalogStore,
    index: SearchIndex,
    batch_size: int = 1000,
    deployments: EnvironmentStates | None = None,
) -> int:
    """Fill an empty index from the store (a new cluster, or an index of an older layout),
    with the entities' environments from `deployments` when the index keeps them.

    Plain version-guarded `apply`s: idempotent, and safe beside the projection and beside
    another process doing the same. Returns how many entities were written.
    """
    if index.count() > 0 or store.count_entities() == 0:
        return 0
    written = 0
    for batch in _batches(store_writes(store.iter_entities(batch_size)), batch_size):
        index.apply(batch)
        written += len(batch)
    deployed = 0
    if deployments is not None and isinstance(index, DeploymentIndex):
        for writes in _batches(store_deployment_writes(deployments, batch_size), batch_size):
            index.apply_deployments(writes)
            deployed += len(writes)
    log.info(
        "filled the empty search index with %d entities (%d with deployments) from the store",
        written,
        deployed,
    )
    return written
