"""Every read the search API makes, through the store and index ports only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from services.index.port import SearchIndex, SearchPage, SearchQuery, SortOrder, Suggestion
from services.model.catalog import EntityDocument, LocationRecord, StoredEntity
from services.model.entity import Entity, ProcessingError, Relation
from services.store.catalog_query import (
    EntityFilter,
    EntityList,
    EntityListRequest,
    EntityPage,
    EntityPageRequest,
    FacetCount,
)
from services.store.port import CatalogStore, RepositoryState


class CatalogQueries:
    def __init__(self, store: CatalogStore, index: SearchIndex) -> None:
        self._store = store
        self._index = index
        # What other read modules add to a single entity's answer (deployments_api.py:
        # its environments and links to its deployments and pipeline runs).
        self.entity_decorators: list[Callable[[dict[str, Any]], dict[str, Any]]] = []

    def decorate_entity(self, entity: dict[str, Any]) -> dict[str, Any]:
        for decorate in self.entity_decorators:
            entity = decorate(entity)
        return entity

    def search(
        self,
        text: str,
        filters: dict[str, list[str]],
        limit: int,
        cursor: str | None,
        sort: SortOrder,
        *,
        highlight: bool = False,
    ) -> SearchPage:
        return self._index.search(
            SearchQuery(
                text=text,
                filters=filters,
                limit=limit,
                cursor=cursor,
                sort=sort,
                highlight=highlight,
            )
        )

    def suggest(self, prefix: str, limit: int) -> list[Suggestion]:
        return self._index.suggest(prefix, limit)

    def entity_by_name(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        stored = self._store.get_entity(f"{kind}:{namespace}/{name}")
        return backstage_entity(stored) if stored is not None else None

    def locations(self) -> list[dict[str, Any]]:
        return [location_data(location) for location in self._store.list_locations()]

    def ready(self) -> bool:
        self._store.count_entities()
        self._index.count()
        return True

    # --- the Backstage-compatible catalog API (search_api/catalog_api.py) -------------

    def stored_entity(self, ref: str) -> StoredEntity | None:
        return self._store.get_entity(ref)

    def stored_entity_by_uid(self, uid: str) -> StoredEntity | None:
        return self._store.get_entity_by_uid(uid)

    def list_entities(self, request: EntityListRequest) -> EntityList:
        return self._store.list_entities(request)

    def stream_entities(self, request: EntityListRequest) -> Iterator[EntityDocument]:
        return self._store.stream_entities(request)

    def query_entities(self, request: EntityPageRequest) -> EntityPage:
        return self._store.query_entities(request)

    def entities_by_refs(
        self, refs: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, EntityDocument]:
        return self._store.get_entities(refs, entity_filter)

    def entity_facets(
        self, facets: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, list[FacetCount]]:
        return self._store.entity_facets(facets, entity_filter)

    def location_records(self) -> list[LocationRecord]:
        return self._store.list_locations()

    def location_record(self, location_id: str) -> LocationRecord | None:
        return self._store.get_location(location_id)

    def repository(self, key: str) -> RepositoryState | None:
        return self._store.get_repository(key)


def backstage_entity(stored: StoredEntity) -> dict[str, Any]:
    entity = Entity.model_validate(stored.body)
    relations = [Relation(type=r.type, target_ref=r.target_ref) for r in stored.relations]
    errors = [
        ProcessingError(
            message=e.message, location=e.location, entity_ref=e.entity_ref, path=e.path
        )
        for e in stored.errors
    ]
    return entity.to_backstage(relations=relations, errors=errors)


def location_data(location: LocationRecord) -> dict[str, Any]:
    return {
        "id": location.id,
        "type": location.type,
        "target": location.target,
        "repository": location.repository_key,
        "path": location.path,
        "status": location.status,
        "commit": location.commit,
        "processedAt": location.processed_at.isoformat() if location.processed_at else None,
        "entityRefs": location.entity_refs,
        "entityRef": generated_location_ref(location.type, location.target),
        "errors": [e.model_dump(mode="json", exclude_none=True) for e in location.errors],
    }


def generated_location_ref(location_type: str, target: str) -> str:
    """The ref Backstage gives a registered location's own Location entity."""
    digest = hashlib.sha1(f"{location_type}:{target}".encode()).hexdigest()
    return f"location:default/generated-{digest}"
