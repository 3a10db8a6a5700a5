"""The read side: search, entities and locations over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from search_api.queries import CatalogQueries
from search_api.schemas import (
    FacetValue,
    SearchItem,
    SearchResponse,
    SuggestItem,
    SuggestResponse,
)
from services.index.port import (
    DEPLOYMENT_FILTERS,
    FACET_FIELDS,
    IndexUnavailable,
    InvalidQuery,
    SortOrder,
)
from services.store.port import StoreUnavailable

FilterValues = Annotated[list[str] | None, Query(description="repeat for OR")]
MAX_QUERY_LENGTH = 500
MAX_FILTER_VALUE_LENGTH = 300
SEARCH_PARAMETERS = frozenset(
    {"q", "limit", "cursor", "sort", "highlight", *FACET_FIELDS, *DEPLOYMENT_FILTERS}
)


def check_search_parameters(request: Request) -> None:
    """A parameter `/api/search` does not know is a 400 naming it, never silently ignored."""
    for name in request.query_params:
        if name not in SEARCH_PARAMETERS:
            raise InvalidQuery(
                name,
                f"Unknown parameter {name!r}: /api/search takes q, limit, cursor, sort, "
                f"highlight and the filters {', '.join((*FACET_FIELDS, *DEPLOYMENT_FILTERS))}.",
            )


def check_filters(filters: dict[str, list[str]]) -> None:
    for name, values in filters.items():
        for value in values:
            if not value.strip() or len(value) > MAX_FILTER_VALUE_LENGTH:
                raise InvalidQuery(
                    name,
                    f"Filter {name!r} needs a value of 1 to {MAX_FILTER_VALUE_LENGTH} characters.",
                )
            if name == "label" and "=" not in value:
                raise InvalidQuery(name, f"Filter 'label' is key=value, not {value!r}.")


def create_search_router(queries: CatalogQueries) -> APIRouter:
    router = APIRouter()

    @router.get("/api/search", response_model=SearchResponse, tags=["search"])
    def search(
        request: Request,
        q: Annotated[str, Query(max_length=MAX_QUERY_LENGTH)] = "",
        kind: FilterValues = None,
        type: FilterValues = None,
        lifecycle: FilterValues = None,
        owner: FilterValues = None,
        system: FilterValues = None,
        domain: FilterValues = None,
        namespace: FilterValues = None,
        tag: FilterValues = None,
        label: Annotated[list[str] | None, Query(description="`key=value`; repeat for OR")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
        sort: SortOrder = "relevance",
        highlight: Annotated[
            bool, Query(description="mark the matched words in <em> per field")
        ] = False,
        deployed_to: Annotated[
            list[str] | None, Query(description="environments running a version; OR")
        ] = None,
        deployed_since: Annotated[
            str | None, Query(description="e.g. 24h, 7d or an ISO 8601 time", max_length=100)
        ] = None,
        last_deploy_status: Annotated[
            list[str] | None, Query(description="outcome of the newest deployment; OR")
        ] = None,
    ) -> SearchResponse:
        check_search_parameters(request)
        filters = {
            name: values
            for name, values in (
                ("kind", kind),
                ("type", type),
                ("lifecycle", lifecycle),
                ("owner", owner),
                ("system", system),
                ("domain", domain),
                ("namespace", namespace),
                ("tag", tag),
                ("label", label),
                ("deployed_to", deployed_to),
                ("deployed_since", [deployed_since] if deployed_since else None),
                ("last_deploy_status", last_deploy_status),
            )
            if values
        }
        check_filters(filters)
        page = queries.search(q, filters, limit, cursor, sort, highlight=highlight)
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
    def suggest(
        q: Annotated[str, Query(max_length=200)], limit: Annotated[int, Query(ge=1, le=50)] = 10
    ) -> SuggestResponse:
        return SuggestResponse(items=[SuggestItem(**vars(s)) for s in queries.suggest(q, limit)])

    # /api/catalog/... (entities, locations, facets, ...) is served by catalog_api.py.
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

    @app.exception_handler(StoreUnavailable)
    def _store_unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"error": f"The catalog store is unavailable right now: {exc}"},
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(IndexUnavailable)
    def _unavailable(_request: Request, exc: IndexUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"error": f"Search is unavailable right now: {exc}"},
            headers={"Retry-After": "5"},
        )
