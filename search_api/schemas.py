"""Response models of the search API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class DeployedEnvironmentItem(BaseModel):
    """What an entity runs in one environment (times are Unix seconds)."""

    model_config = ConfigDict(from_attributes=True)

    environment: str
    version: str | None
    deployed_at: float | None
    last_status: str
    last_version: str | None
    last_at: float


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
    updated_at: float = 0.0
    # With `highlight=true`: per field (name, title, description, tags, definition),
    # HTML-escaped text with the matched words in <em>...</em>.
    highlights: dict[str, list[str]] = {}
    # Per environment: the version running there and how its newest deployment went.
    deployments: list[DeployedEnvironmentItem] = []


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
