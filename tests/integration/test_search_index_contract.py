"""The search-index port's contract, held against every adapter."""

from __future__ import annotations

import pytest

from services.index.document import build_search_document
from services.index.port import IndexWrite, InvalidQuery, SearchQuery


def _doc(
    name: str,
    *,
    kind: str = "Component",
    owner: str = "team-a",
    type_: str = "service",
    tags: list[str] | None = None,
    description: str = "",
    system: str | None = None,
    title: str | None = None,
):
    metadata = {"name": name, "tags": tags or [], "description": description}
    if title:
        metadata["title"] = title
    spec = {"type": type_, "owner": owner, "lifecycle": "production"}
    if system:
        spec["system"] = system
    ref = f"{kind.lower()}:default/{name}"
    return build_search_document(ref, {"kind": kind, "metadata": metadata, "spec": spec}, 1.0)


def _write(index, version: int, *docs) -> None:
    index.apply([IndexWrite(d.ref, version, d) for d in docs])


def test_an_exact_name_match_comes_first(search_index) -> None:
    _write(
        search_index,
        1,
        _doc("payments", description="payments payments payments"),
        _doc("payments-api", description="the payments API for payments"),
        _doc("ledger", description="records payments"),
    )
    page = search_index.search(SearchQuery(text="payments"))
    assert page.items[0].name == "payments"
    assert page.total == 3


def test_kebab_and_camel_case_names_are_found_by_their_words(search_index) -> None:
    _write(search_index, 1, _doc("payment-gateway"), _doc("orderService"), _doc("user_profile"))
    assert [i.name for i in search_index.search(SearchQuery(text="gateway")).items] == [
        "payment-gateway"
    ]
    assert [i.name for i in search_index.search(SearchQuery(text="order service")).items] == [
        "orderService"
    ]
    assert [i.name for i in search_index.search(SearchQuery(text="profile")).items] == [
        "user_profile"
    ]


def test_filters_or_within_a_field_and_and_across_fields(search_index) -> None:
    _write(
        search_index,
        1,
        _doc("a", owner="team-a", type_="service"),
        _doc("b", owner="team-b", type_="service"),
        _doc("c", owner="team-b", type_="website"),
        _doc("d", owner="team-c", type_="service"),
    )
    page = search_index.search(
        SearchQuery(filters={"owner": ["team-a", "group:default/team-b"], "type": ["service"]})
    )
    assert sorted(i.name for i in page.items) == ["a", "b"]
    assert page.total == 2
    assert {f.value: f.count for f in page.facets["owner"]} == {
        "group:default/team-a": 1,
        "group:default/team-b": 1,
    }


def test_an_empty_query_matches_everything_with_an_exact_total_and_cursor(search_index) -> None:
    _write(search_index, 1, *[_doc(f"svc-{i:02d}") for i in range(25)])
    seen: list[str] = []
    cursor = None
    while True:
        page = search_index.search(SearchQuery(limit=10, cursor=cursor, sort="name"))
        assert page.total == 25
        seen.extend(i.name for i in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"svc-{i:02d}" for i in range(25)]


def test_tags_filter_and_facet(search_index) -> None:
    _write(search_index, 1, _doc("a", tags=["java", "grpc"]), _doc("b", tags=["java"]), _doc("c"))
    page = search_index.search(SearchQuery(filters={"tag": ["java"]}))
    assert page.total == 2
    assert {f.value: f.count for f in page.facets["tag"]} == {"java": 2, "grpc": 1}


def test_an_older_version_never_overwrites_a_newer_one(search_index) -> None:
    new = _doc("svc", description="new")
    old = _doc("svc", description="old")
    search_index.apply([IndexWrite(new.ref, 7, new)])
    search_index.apply([IndexWrite(old.ref, 3, old)])
    assert search_index.search(SearchQuery(text="svc")).items[0].description == "new"
    search_index.apply([IndexWrite(new.ref, 8, None)])
    search_index.apply([IndexWrite(old.ref, 5, old)])
    assert search_index.search(SearchQuery(text="svc")).total == 0


def test_suggest_completes_name_prefixes(search_index) -> None:
    _write(search_index, 1, _doc("payments"), _doc("payment-gateway"), _doc("ledger"))
    names = [s.name for s in search_index.suggest("pay")]
    assert sorted(names) == ["payment-gateway", "payments"]


def test_a_bad_cursor_or_filter_is_an_invalid_query(search_index) -> None:
    with pytest.raises(InvalidQuery) as caught:
        search_index.search(SearchQuery(cursor="not-a-cursor!"))
    assert caught.value.parameter == "cursor"
    with pytest.raises(InvalidQuery):
        search_index.search(SearchQuery(filters={"colour": ["blue"]}))


def test_query_text_with_search_syntax_is_taken_literally(search_index) -> None:
    _write(search_index, 1, _doc("svc"))
    for text in ['"', "AND OR NOT", "svc*", "a:b", "(svc", "-"]:
        search_index.search(SearchQuery(text=text))
