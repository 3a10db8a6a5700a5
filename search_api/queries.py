"""Every read the search API makes, through the store and index ports only."""

from __future__ import annotations

from typing import Any

from services.index.port import SearchIndex, SearchPage, SearchQuery, SortOrder, Suggestion
from services.model.catalog import LocationRecord, StoredEntity
from services.model.entity import Entity, ProcessingError, Relation
from services.store.port import CatalogStore


class CatalogQueries:
    def __init__(self, store: CatalogStore, index: SearchIndex) -> None:
        self._store = store
        self._index = index

    def search(
        self,
        text: str,
        filters: dict[str, list[str]],
        limit: int,
        cursor: str | None,
        sort: SortOrder,
    ) -> SearchPage:
        return self._index.search(
            SearchQuery(text=text, filters=filters, limit=limit, cursor=cursor, sort=sort)
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
        "errors": [e.model_dump(mode="json", exclude_none=True) for e in location.errors],
    }
