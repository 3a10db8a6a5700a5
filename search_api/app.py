"""The read side: search, entities and locations over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from search_api.queries import CatalogQueries
from search_api.schemas import (
    FacetValue,
    LocationEnvelope,
    SearchItem,
    SearchResponse,
    SuggestItem,
    SuggestResponse,
)
from services.index.port import IndexUnavailable, InvalidQuery, SortOrder

FilterValues = Annotated[list[str] | None, Query()]


def create_search_router(queries: CatalogQueries) -> APIRouter:
    router = APIRouter()

    @router.get("/api/search", response_model=SearchResponse, tags=["search"])
    def search(
        q: str = "",
        kind: FilterValues = None,
        type: FilterValues = None,
        lifecycle: FilterValues = None,
        owner: FilterValues = None,
        system: FilterValues = None,
        namespace: FilterValues = None,
        tag: FilterValues = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
        cursor: str | None = None,
        sort: SortOrder = "relevance",
    ) -> SearchResponse:
        filters = {
            name: values
            for name, values in (
                ("kind", kind),
                ("type", type),
                ("lifecycle", lifecycle),
                ("owner", owner),
                ("system", system),
                ("namespace", namespace),
                ("tag", tag),
            )
            if values
        }
        page = queries.search(q, filters, limit, cursor, sort)
        return SearchResponse(
            items=[SearchItem(**vars(hit)) for hit in page.items],
            total=page.total,
            facets={
                name: [FacetValue(value=f.value, count=f.count) for f in counts]
                for name, counts in page.facets.items()
            },
            next_cursor=page.next_cursor,
        )

    @router.get("/api/search/suggest", response_model=SuggestResponse, tags=["search"])
    def suggest(q: str, limit: Annotated[int, Query(ge=1, le=50)] = 10) -> SuggestResponse:
        return SuggestResponse(items=[SuggestItem(**vars(s)) for s in queries.suggest(q, limit)])

    @router.get("/api/catalog/entities/by-name/{kind}/{namespace}/{name}", tags=["catalog"])
    def entity_by_name(kind: str, namespace: str, name: str) -> Any:
        entity = queries.entity_by_name(kind, namespace, name)
        if entity is None:
            return backstage_error(
                404, "NotFoundError", f"No entity named '{kind}:{namespace}/{name}' found"
            )
        return entity

    @router.get("/api/catalog/locations", response_model=list[LocationEnvelope], tags=["catalog"])
    def locations() -> list[LocationEnvelope]:
        return [LocationEnvelope(data=data) for data in queries.locations()]

    return router


def backstage_error(status: int, name: str, message: str) -> JSONResponse:
    """Backstage's error body, so its clients understand Cairn's errors."""
    return JSONResponse(
        status_code=status,
        content={
            "error": {"name": name, "message": message},
            "response": {"statusCode": status},
        },
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidQuery)
    def _invalid(_request: Request, exc: InvalidQuery) -> JSONResponse:
        return JSONResponse(
            status_code=400, content={"error": str(exc), "parameter": exc.parameter}
        )

    @app.exception_handler(IndexUnavailable)
    def _unavailable(_request: Request, exc: IndexUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"error": f"Search is unavailable right now: {exc}"},
            headers={"Retry-After": "5"},
        )
