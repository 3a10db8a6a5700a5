"""Facets count what the query finds; filters narrow it, OR within a field, AND across."""

from __future__ import annotations

import pytest

from services.index.port import FACET_FIELDS, InvalidQuery, SearchQuery
from tests.support.search import doc, write


def _counts(page, facet: str) -> dict[str, int]:
    return {f.value: f.count for f in page.facets[facet]}


@pytest.fixture
def catalog(search_index):
    write(
        search_index,
        1,
        doc(
            "checkout",
            owner="team-shop",
            system="shop",
            domain="commerce",
            tags=["java", "tier-1"],
            labels={"tier": "1"},
            description="checkout payments",
        ),
        doc(
            "cart",
            owner="team-shop",
            system="shop",
            domain="commerce",
            tags=["java"],
            labels={"tier": "2"},
        ),
        doc(
            "payments",
            owner="team-pay",
            system="payments",
            domain="commerce",
            tags=["go", "tier-1"],
            labels={"tier": "1"},
            lifecycle="experimental",
        ),
        doc("docs-site", owner="team-docs", type_="website", tags=["hugo"]),
        doc("payments-api", kind="API", owner="team-pay", type_="openapi", system="payments"),
        doc("team-pay", kind="Group", owner=None, type_="team"),
    )
    return search_index


def test_every_facet_is_counted_for_the_whole_catalog(catalog) -> None:
    page = catalog.search(SearchQuery())
    assert set(page.facets) == set(FACET_FIELDS)
    assert page.total == 6
    assert _counts(page, "kind") == {"component": 4, "api": 1, "group": 1}
    assert _counts(page, "type") == {"service": 3, "openapi": 1, "team": 1, "website": 1}
    assert _counts(page, "owner") == {
        "group:default/team-pay": 2,
        "group:default/team-shop": 2,
        "group:default/team-docs": 1,
    }
    assert _counts(page, "system") == {"system:default/payments": 2, "system:default/shop": 2}
    assert _counts(page, "domain") == {"domain:default/commerce": 3}
    assert _counts(page, "tag") == {"java": 2, "tier-1": 2, "go": 1, "hugo": 1}
    assert _counts(page, "label") == {"tier=1": 2, "tier=2": 1}
    assert _counts(page, "lifecycle") == {"production": 5, "experimental": 1}
    assert _counts(page, "namespace") == {"default": 6}
    # most frequent first, ties by value
    assert [f.value for f in page.facets["type"]] == ["service", "openapi", "team", "website"]


def test_facets_count_the_hits_of_the_current_query(catalog) -> None:
    page = catalog.search(SearchQuery(text="payments"))
    assert sorted(h.name for h in page.items) == ["checkout", "payments", "payments-api"]
    assert _counts(page, "kind") == {"component": 2, "api": 1}
    assert _counts(page, "owner") == {"group:default/team-pay": 2, "group:default/team-shop": 1}


def test_filters_are_ored_within_a_field_and_anded_across_fields(catalog) -> None:
    page = catalog.search(
        SearchQuery(filters={"tag": ["java", "go"], "label": ["tier=1"], "kind": ["Component"]})
    )
    assert sorted(h.name for h in page.items) == ["checkout", "payments"]
    assert page.total == 2
    assert _counts(page, "tag") == {"tier-1": 2, "go": 1, "java": 1}
    by_system = catalog.search(
        SearchQuery(filters={"system": ["payments"], "domain": ["commerce"]})
    )
    assert [h.name for h in by_system.items] == ["payments"]
    by_owner = catalog.search(
        SearchQuery(text="payments", filters={"owner": ["group:default/team-pay"]})
    )
    assert sorted(h.name for h in by_owner.items) == ["payments", "payments-api"]


def test_a_filter_matching_nothing_finds_nothing_with_empty_facets(catalog) -> None:
    page = catalog.search(SearchQuery(filters={"owner": ["nobody"]}))
    assert page.total == 0 and page.items == [] and page.next_cursor is None
    assert all(counts == [] for counts in page.facets.values())


def test_an_unknown_filter_names_itself(catalog) -> None:
    with pytest.raises(InvalidQuery) as caught:
        catalog.search(SearchQuery(filters={"colour": ["blue"]}))
    assert caught.value.parameter == "colour"
