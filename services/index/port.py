"""The search-index port.

Contract every adapter keeps:
- `apply` writes documents and deletions with a version each (the change's log offset); a
  write whose version is not newer than the one the index holds for that ref is ignored,
  deletions included, so late or repeated changes never overwrite newer ones.
- `apply` returns once the batch is searchable or durably queued for it; if it raises,
  nothing in the batch may be assumed written and the caller retries the whole batch.
- `search` answers the same `SearchQuery` the same way on every adapter: filters are ORed
  within a field and ANDed across fields, `total` is exact, facets count the filtered hits.
- An unreachable backend raises `IndexUnavailable`; a bad query raises `InvalidQuery`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from services.index.document import SearchDocument

FACET_FIELDS = ("kind", "type", "lifecycle", "owner", "system", "namespace", "tag")

SortOrder = Literal["relevance", "name", "updated"]


class IndexUnavailable(RuntimeError):
    """The search backend cannot be reached now."""


class InvalidQuery(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class IndexWrite:
    ref: str
    version: int
    document: SearchDocument | None  # None deletes


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    limit: int = 20
    cursor: str | None = None
    sort: SortOrder = "relevance"


@dataclass(frozen=True)
class SearchHit:
    ref: str
    kind: str
    namespace: str
    name: str
    title: str | None
    description: str | None
    owner: str | None
    system: str | None
    type: str | None
    lifecycle: str | None
    tags: list[str]
    score: float


@dataclass(frozen=True)
class FacetCount:
    value: str
    count: int


@dataclass(frozen=True)
class SearchPage:
    items: list[SearchHit]
    total: int
    facets: dict[str, list[FacetCount]]
    next_cursor: str | None


@dataclass(frozen=True)
class Suggestion:
    ref: str
    name: str
    title: str | None
    kind: str


class SearchIndex(Protocol):
    def ensure_ready(self) -> None:
        """Create what the index needs (tables, templates, aliases); idempotent."""
        ...

    def apply(self, writes: Sequence[IndexWrite]) -> None: ...

    def search(self, query: SearchQuery) -> SearchPage: ...

    def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...
