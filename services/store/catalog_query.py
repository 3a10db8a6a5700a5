"""What the Backstage-compatible catalog API asks the store: filters, order, pages, facets.

Plain values, no SQL: the API parses Backstage's parameters into these, the store answers
them (services/store/catalog_queries.py). Keys and values of conditions are lower-cased by
their constructors' callers, as Backstage compares them case-insensitively.

A filter is a tree: `FieldMatch` tests one search key (see entity_search.py; keys starting
with `relations.` test the entity's relations of that type), `AllOf`/`AnyOf` combine (an
empty `AllOf` is true, an empty `AnyOf` false) and `Not` negates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.model.catalog import EntityDocument

Direction = Literal["asc", "desc"]


@dataclass(frozen=True)
class FieldMatch:
    """The key exists (`values` None), has one of `values`, or starts with `prefix`."""

    key: str
    values: tuple[str, ...] | None = None
    prefix: str | None = None


@dataclass(frozen=True)
class AllOf:
    items: tuple[EntityFilter, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[EntityFilter, ...]


@dataclass(frozen=True)
class Not:
    item: EntityFilter


EntityFilter = FieldMatch | AllOf | AnyOf | Not


@dataclass(frozen=True)
class OrderField:
    field: str  # a search key, lower-cased
    order: Direction = "asc"


@dataclass(frozen=True)
class EntityListRequest:
    """`GET /entities`: every match in `order` (then by uid); by ref when paginated unordered.

    `limit` None means all. The store reads one row more than `limit` to tell whether there
    is a next page.
    """

    filter: EntityFilter | None = None
    order: tuple[OrderField, ...] = ()
    offset: int = 0
    limit: int | None = None
    by_ref: bool = False  # default order: entity ref (paginated) instead of uid


@dataclass(frozen=True)
class EntityList:
    entities: list[EntityDocument]
    has_more: bool


@dataclass(frozen=True)
class FullTextFilter:
    term: str  # lower-cased, trimmed, not empty
    fields: tuple[str, ...]  # lower-cased search keys


# The position of an entity in a page's order: (the sort field's value or None, uid). Without
# a sort field the order is by uid alone and the first part is ignored.
SortValues = tuple[str | None, str]


@dataclass(frozen=True)
class EntityPageRequest:
    """One page of `queryEntities`: keyset-paginated on (sort value, uid), nulls last.

    `after` is the position to continue from (exclusive); with `backwards` the page is the
    one before it. Positions are values, not offsets, so a cursor stays valid while the
    catalog changes. `offset` applies to the first page only.
    """

    filter: EntityFilter | None = None
    order: OrderField | None = None
    full_text: FullTextFilter | None = None
    limit: int = 200
    offset: int = 0
    after: SortValues | None = None
    backwards: bool = False
    count: bool = True
    known_total: int | None = None  # the count of an earlier page, to plan this one


@dataclass(frozen=True)
class EntityPage:
    entities: list[EntityDocument]
    positions: list[SortValues]  # the sort values of each entity, for the next cursor
    total: int | None  # None when not counted
    has_more: bool = False


@dataclass(frozen=True)
class FacetCount:
    value: str
    count: int
