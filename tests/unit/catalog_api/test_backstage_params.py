"""Fields, order, pagination and cursors of Backstage's catalog API requests."""

from __future__ import annotations

import base64
import json

import pytest

from search_api.backstage_errors import InputError
from search_api.backstage_params import (
    QueryState,
    decode_cursor,
    encode_after,
    encode_cursor,
    parse_facets,
    parse_fields,
    parse_order,
    parse_pagination,
    parse_query_body,
    parse_query_params,
    parse_refs_body,
)
from services.store.catalog_query import FieldMatch, FullTextFilter, OrderField

ENTITY = {
    "kind": "Component",
    "metadata": {"name": "a", "annotations": {"x": "1"}, "tags": ["java"]},
    "spec": {"type": "service", "owner": "team-a"},
    "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}],
}


def test_fields_keep_the_named_subtrees_only() -> None:
    transform = parse_fields(["metadata.name,spec", "kind", " ", "metadata.nope"])
    assert transform is not None
    assert transform(ENTITY) == {
        "metadata": {"name": "a"},
        "spec": {"type": "service", "owner": "team-a"},
        "kind": "Component",
    }
    assert parse_fields(["", ","]) is None
    with pytest.raises(InputError, match="array type fields are not supported"):
        parse_fields(["relations[0]"])


def test_order_is_direction_colon_field() -> None:
    assert parse_order({"order": ["asc:metadata.Name", "desc:spec.type"]}) == (
        OrderField("metadata.name", "asc"),
        OrderField("spec.type", "desc"),
    )
    with pytest.raises(InputError, match='Invalid order parameter "up:kind"'):
        parse_order({"order": ["up:kind"]})


def test_pagination_checks_its_numbers_and_reads_after_cursors() -> None:
    assert parse_pagination({}) is None
    page = parse_pagination({"limit": ["5"], "offset": ["10"]})
    assert page is not None and (page.limit, page.offset) == (5, 10)
    after = parse_pagination({"after": [encode_after(7, 21)]})
    assert after is not None and (after.limit, after.offset) == (7, 21)
    for params, message in (
        ({"limit": ["0"]}, "Invalid limit, must be greater than zero"),
        ({"offset": ["-1"]}, "Invalid offset, must be zero or greater"),
        ({"limit": ["5x"]}, "Invalid limit, not an integer"),
        ({"after": [""]}, "Invalid after, must not be empty"),
        ({"after": ["%%%"]}, "Malformed after cursor"),
    ):
        with pytest.raises(InputError, match=message):
            parse_pagination(params)


def test_a_first_query_page_reads_filters_order_and_full_text() -> None:
    query = parse_query_params(
        {
            "filter": ["kind=component"],
            "orderField": ["metadata.name,desc", "kind,asc"],
            "fullTextFilterTerm": [" Pay "],
            "fullTextFilterFields": ["metadata.name,metadata.title"],
            "limit": ["50"],
            "fields": ["metadata.name"],
        }
    )
    request = query.state.page_request(query.limit, query.offset)
    assert request.order == OrderField("metadata.name", "desc")
    assert request.full_text == FullTextFilter("pay", ("metadata.name", "metadata.title"))
    assert request.limit == 50 and request.count and request.after is None
    assert parse_query_params({}).limit == 200


def test_full_text_defaults_to_the_sort_field_or_the_uid() -> None:
    plain = parse_query_params({"fullTextFilterTerm": ["x"]})
    assert plain.state.page_request(10).full_text == FullTextFilter("x", ("metadata.uid",))
    ordered = parse_query_params({"fullTextFilterTerm": ["x"], "orderField": ["metadata.name"]})
    assert ordered.state.page_request(10).full_text == FullTextFilter("x", ("metadata.name",))


def test_a_cursor_carries_the_whole_query_and_only_predicate_ones_say_query() -> None:
    state = QueryState(
        filter_strings=["kind=component"],
        query=None,
        predicate_based=False,
        order=OrderField("metadata.name", "asc"),
        full_text_term="pay",
        full_text_fields=None,
        total=12,
        skip_total=False,
        position=["b", "uid-2"],
        first=["a", "uid-1"],
    )
    encoded = encode_cursor(state)
    assert "query" not in json.loads(base64.b64decode(encoded))
    decoded = decode_cursor(encoded)
    assert decoded == state
    request = decoded.page_request(5)
    assert request.after == ("b", "uid-2") and not request.count
    assert request.filter is not None
    predicate = parse_query_body(
        {"query": {"kind": "api"}, "orderBy": [{"field": "metadata.name"}]}
    )
    raw = json.loads(base64.b64decode(encode_cursor(predicate.state)))
    assert raw["query"] == {"kind": "api"}
    with pytest.raises(InputError, match="Malformed cursor"):
        decode_cursor("not a cursor")


def test_the_post_body_takes_order_by_or_order_field_and_predicates() -> None:
    body = parse_query_body(
        {
            "query": {"kind": "component"},
            "orderBy": [{"field": "metadata.name", "order": "desc"}],
            "fullTextFilter": {"term": "x", "fields": ["metadata.name"]},
            "limit": 3,
            "offset": 2,
            "fields": ["kind"],
            "totalItems": "exclude",
        }
    )
    request = body.state.page_request(body.limit, body.offset)
    assert request.order == OrderField("metadata.name", "desc")
    assert request.offset == 2 and request.limit == 3 and not request.count
    legacy = parse_query_body({"orderField": ["metadata.name,asc"]})
    assert legacy.state.order == OrderField("metadata.name", "asc")
    with pytest.raises(InputError):
        parse_query_body({"limit": -1})


def test_facets_and_by_refs_bodies_are_checked() -> None:
    assert parse_facets(["", "spec.type"]) == ["spec.type"]
    with pytest.raises(InputError, match="Missing facet parameter"):
        parse_facets([""])
    refs = parse_refs_body({"entityRefs": ["component:default/a"], "fields": ["kind"]})
    assert refs.entity_refs == ["component:default/a"] and refs.fields == ["kind"]
    with pytest.raises(InputError, match="Malformed request body"):
        parse_refs_body({"entityRefs": "component:default/a"})


def test_field_matches_are_lower_cased_from_filters() -> None:
    query = parse_query_params({"filter": ["Metadata.Tags.Java"]})
    assert query.state.entity_filter() is not None
    assert FieldMatch("metadata.tags.java") in query.state.entity_filter().items[0].items  # type: ignore[union-attr]
