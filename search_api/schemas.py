"""Response models of the search API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class SearchItem(BaseModel):
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


class FacetValue(BaseModel):
    value: str
    count: int


class SearchResponse(BaseModel):
    items: list[SearchItem]
    total: int
    facets: dict[str, list[FacetValue]]
    next_cursor: str | None


class SuggestItem(BaseModel):
    ref: str
    name: str
    title: str | None
    kind: str


class SuggestResponse(BaseModel):
    items: list[SuggestItem]


class LocationEnvelope(BaseModel):
    data: dict[str, Any]
