"""`/api/search` over HTTP: parameters, 400s naming the parameter, 503 when search is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from search_api.app import create_search_router, install_error_handlers
from search_api.queries import CatalogQueries
from services.index.opensearch_index import OpenSearchIndex
from services.index.port import SearchIndex
from services.store.sql_store import SqlCatalogStore
from services.wiring import create_http_app
from tests.support import opensearch
from tests.support.search import doc, write
from tests.support.server import free_port


def _client(store: SqlCatalogStore, index: SearchIndex) -> TestClient:
    queries = CatalogQueries(store, index)
    app = create_http_app(
        "test",
        [lambda app: app.include_router(create_search_router(queries)), install_error_handlers],
        ready=queries.ready,
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlCatalogStore]:
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def api(search_index, store) -> TestClient:
    write(
        search_index,
        1,
        doc("payment-gateway", description="Takes card payments", tags=["java"]),
        doc("payments-api", kind="API", type_="openapi", labels={"tier": "1"}),
        doc("ledger", domain="finance"),
    )
    return _client(store, search_index)


def test_search_answers_with_items_facets_highlights_and_a_cursor(api) -> None:
    answer = api.get("/api/search", params={"q": "payment", "limit": 1, "highlight": "true"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 2 and len(body["items"]) == 1 and body["next_cursor"]
    assert body["items"][0]["highlights"]["name"][0].startswith("<em>payment</em>")
    assert {f["value"] for f in body["facets"]["kind"]} == {"component", "api"}
    more = api.get(
        "/api/search",
        params={"q": "payment", "limit": 1, "highlight": "true", "cursor": body["next_cursor"]},
    ).json()
    assert more["next_cursor"] is None
    assert {body["items"][0]["name"], more["items"][0]["name"]} == {
        "payment-gateway",
        "payments-api",
    }


def test_filters_sort_and_suggest_over_http(api) -> None:
    by_label = api.get("/api/search", params=[("label", "tier=1"), ("label", "tier=2")]).json()
    assert [i["name"] for i in by_label["items"]] == ["payments-api"]
    by_domain = api.get("/api/search", params={"domain": "finance"}).json()
    assert [i["name"] for i in by_domain["items"]] == ["ledger"]
    by_name = api.get("/api/search", params={"sort": "name"}).json()
    assert [i["name"] for i in by_name["items"]] == ["ledger", "payment-gateway", "payments-api"]
    suggested = api.get("/api/search/suggest", params={"q": "pay"}).json()
    assert [s["name"] for s in suggested["items"]] == ["payments-api", "payment-gateway"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"q": "x" * 501}, "q"),
        ({"sort": "size"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-ours"}, "cursor"),
        ({"owners": "team-a"}, "owners"),
        ({"label": "tier"}, "label"),
        ({"tag": ""}, "tag"),
        ({"highlight": "maybe"}, "highlight"),
    ],
)
def test_a_malformed_query_or_filter_is_a_400_naming_the_parameter(
    api, params: dict[str, str], parameter: str
) -> None:
    answer = api.get("/api/search", params=params)
    assert answer.status_code == 400
    assert answer.json()["parameter"] == parameter
    assert parameter in answer.json()["error"]


def test_an_unreachable_opensearch_is_a_503_not_a_500(store) -> None:
    dead = OpenSearchIndex(f"http://127.0.0.1:{free_port()}", opensearch.fresh_alias())
    client = _client(store, dead)
    for path in ("/api/search?q=payment", "/api/search/suggest?q=pay"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert "cannot be reached" in answer.json()["error"]
        assert answer.headers["Retry-After"]
    assert client.get("/readyz").status_code == 503
    dead.close()
