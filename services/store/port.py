"""The catalog-store port.

Contract:
- `apply_entity_changes` is the projection of `cairn.entity.changes`: a change is applied
  only if its version (the log offset) is newer than what the store holds for that ref, so
  redelivery, replay and reordering leave the store as the newest change says. A batch is
  one transaction.
- The descriptor processor's state (repositories, locations, entity owners) is written
  only through `reconcile_repository`, which runs the ownership plan and the caller's
  `emit` in one transaction: state is saved only if the changes were published.
- Readers get `StoredEntity`/`EntityDocument`/`LocationRecord` values, never rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.model.catalog import (
    DesiredLocation,
    EntityDocument,
    LocationRecord,
    OwnershipPlan,
    StoredEntity,
)
from services.model.events import EntityChanged, Repository
from services.store.catalog_query import (
    EntityFilter,
    EntityList,
    EntityListRequest,
    EntityPage,
    EntityPageRequest,
    FacetCount,
)


@dataclass(frozen=True)
class VersionedChange:
    ref: str
    version: int
    change: EntityChanged | None  # None is the tombstone


@dataclass(frozen=True)
class RepositoryState:
    key: str
    clone_url: str
    html_url: str
    default_branch: str
    provider: str
    status: str
    commit: str | None
    processed_at: datetime | None


class StoreUnavailable(ConnectionError):
    """The store's database cannot be reached (refused, timed out, login or database
    rejected, or the connection dropped). The message names the database (without its
    password) and says what to check; the caller may retry later."""


class CatalogStore(Protocol):
    def create_schema(self) -> None: ...

    def apply_entity_changes(self, changes: Sequence[VersionedChange]) -> int: ...

    def get_entity(self, ref: str) -> StoredEntity | None: ...

    def get_entity_by_uid(self, uid: str) -> StoredEntity | None: ...

    def iter_entities(self, batch_size: int = 1000) -> Iterator[StoredEntity]: ...

    def count_entities(self) -> int: ...

    # The Backstage-compatible catalog API's reads (services/store/catalog_query.py says
    # what each request means). Filters match the search rows written with each entity.

    def list_entities(self, request: EntityListRequest) -> EntityList: ...

    def stream_entities(self, request: EntityListRequest) -> Iterator[EntityDocument]:
        """Every match of `request` in its order, read in batches (no limit)."""
        ...

    def query_entities(self, request: EntityPageRequest) -> EntityPage: ...

    def get_entities(
        self, refs: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, EntityDocument]:
        """The entities of these refs that exist (and match), keyed by lower-cased ref."""
        ...

    def entity_facets(
        self, facets: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, list[FacetCount]]:
        """Per lower-cased facet key: its values with counts, most frequent first."""
        ...

    def list_locations(self) -> list[LocationRecord]: ...

    def get_location(self, location_id: str) -> LocationRecord | None: ...

    def get_repository(self, key: str) -> RepositoryState | None: ...

    def list_repositories(self) -> list[RepositoryState]: ...

    def repositories_in_conflict_over(self, refs: list[str]) -> list[RepositoryState]:
        """Repositories with a location that recorded a conflict on one of these refs."""
        ...

    def reconcile_repository(
        self,
        repository: Repository,
        status: str,
        commit: str | None,
        desired: list[DesiredLocation],
        keep: set[str],
        emit: Callable[[OwnershipPlan], None],
        previous_key: str | None = None,
    ) -> OwnershipPlan: ...

    def close(self) -> None: ...
