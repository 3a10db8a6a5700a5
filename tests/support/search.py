"""Entities and index writes for the search-index tests."""

from __future__ import annotations

from typing import Any

from services.index.document import SearchDocument, build_search_document
from services.index.port import IndexWrite, SearchIndex, SearchQuery


def entity(
    name: str,
    *,
    kind: str = "Component",
    namespace: str = "default",
    owner: str | None = "team-a",
    type_: str | None = "service",
    lifecycle: str = "production",
    tags: list[str] | None = None,
    labels: dict[str, str] | None = None,
    description: str | None = None,
    title: str | None = None,
    system: str | None = None,
    domain: str | None = None,
    definition: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "tags": tags or []}
    if description is not None:
        metadata["description"] = description
    if title is not None:
        metadata["title"] = title
    if labels:
        metadata["labels"] = labels
    spec: dict[str, Any] = {"lifecycle": lifecycle}
    if owner is not None:
        spec["owner"] = owner
    if type_ is not None:
        spec["type"] = type_
    if system is not None:
        spec["system"] = system
    if domain is not None:
        spec["domain"] = domain
    if definition is not None:
        spec["definition"] = definition
    return {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def ref_of(body: dict[str, Any]) -> str:
    metadata = body["metadata"]
    return f"{body['kind'].lower()}:{metadata.get('namespace', 'default')}/{metadata['name']}"


def doc(name: str, updated_at: float = 1.0, **fields: Any) -> SearchDocument:
    body = entity(name, **fields)
    return build_search_document(ref_of(body), body, updated_at)


def write(index: SearchIndex, version: int, *docs: SearchDocument) -> None:
    index.apply([IndexWrite(d.ref, version, d) for d in docs])


def names(index: SearchIndex, text: str = "", **options: Any) -> list[str]:
    return [hit.name for hit in index.search(SearchQuery(text=text, **options)).items]


def everything(index: SearchIndex, **options: Any) -> list[str]:
    """Every ref the index finds for a query, page by page."""
    refs: list[str] = []
    cursor = None
    while True:
        page = index.search(SearchQuery(limit=100, cursor=cursor, **options))
        refs.extend(hit.ref for hit in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return refs
