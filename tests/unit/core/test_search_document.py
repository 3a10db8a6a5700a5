"""What of an entity is searchable and filterable."""

from __future__ import annotations

from services.index.document import (
    MAX_DEFINITION_TEXT,
    build_search_document,
    definition_text,
    name_words,
    normalise_filter_value,
    word_spans,
)


def test_names_split_into_words_whatever_their_case_style() -> None:
    assert name_words("payment-gateway") == ["payment", "gateway"]
    assert name_words("orderService") == ["order", "service"]
    assert name_words("user_profile.v2") == ["user", "profile", "v2"]
    assert name_words("HTTPServer") == ["http", "server"]
    assert name_words("v2Api") == ["v2", "api"]
    assert name_words("naïveCafé") == ["naive", "cafe"]
    assert name_words("1.2.3 team's") == ["1", "2", "3", "team", "s"]


def test_word_spans_point_at_the_words_in_the_original_text() -> None:
    text = "payment-gateway orderService"
    assert [text[s:e] for s, e in word_spans(text)] == ["payment", "gateway", "order", "Service"]


def test_refs_in_spec_are_completed_with_backstage_defaults() -> None:
    doc = build_search_document(
        "component:payments/api",
        {
            "kind": "Component",
            "metadata": {"name": "api", "namespace": "payments"},
            "spec": {"owner": "team-a", "system": "system:other/ledger", "type": "Service"},
        },
        0.0,
    )
    assert doc.owner == "group:payments/team-a"
    assert doc.system == "system:other/ledger"
    assert doc.type == "service"


def test_api_definitions_are_searchable_text() -> None:
    doc = build_search_document(
        "api:default/orders",
        {
            "kind": "API",
            "metadata": {"name": "orders"},
            "spec": {
                "type": "openapi",
                "definition": "paths:\n  /orders/{id}:\n    get:\n      operationId: getOrderById",
            },
        },
        0.0,
    )
    assert doc.definition_text == "/orders/{id} getOrderById"
    assert "getOrderById" not in doc.spec_text


def test_openapi_and_asyncapi_definitions_give_their_names_not_their_structure() -> None:
    openapi = (
        "openapi: 3.0.0\ninfo: {title: Orders, description: Track orders}\n"
        "paths:\n  /orders:\n"
        "    post: {operationId: placeOrder, summary: Place one, tags: [sales]}\n"
        "    get:\n      responses: {'200': {description: the orders}}\n"
        "components:\n  schemas:\n    OrderLine:\n      type: object\n"
        "      properties: {skuCode: {type: string}}\n"
    )
    words = definition_text("openapi", openapi).split()
    for expected in ("Orders", "/orders", "placeOrder", "sales", "OrderLine", "skuCode"):
        assert expected in words
    for noise in ("object", "string", "200", "type"):
        assert noise not in words
    asyncapi = "asyncapi: 2.6.0\nchannels:\n  parcel/sent:\n    publish: {message: {name: Sent}}\n"
    assert definition_text("asyncapi", asyncapi).split() == ["parcel/sent", "Sent"]


def test_other_definitions_and_broken_ones_are_indexed_as_text() -> None:
    graphql = "type Query { cart(id: ID!): Cart }"
    assert definition_text("graphql", graphql) == graphql
    broken = "openapi: [unclosed"
    assert definition_text("openapi", broken) == broken
    assert definition_text("openapi", None) == ""
    assert len(definition_text("grpc", "x" * 1_000_000)) == MAX_DEFINITION_TEXT


def test_only_apis_carry_definition_text() -> None:
    doc = build_search_document(
        "component:default/a",
        {"kind": "Component", "metadata": {"name": "a"}, "spec": {"definition": "x"}},
        0.0,
    )
    assert doc.definition_text == ""


def test_labels_become_facet_values_and_related_names_words() -> None:
    doc = build_search_document(
        "component:default/a",
        {
            "kind": "Component",
            "metadata": {"name": "a", "labels": {"Tier": "1"}},
            "spec": {"owner": "team-pay", "system": "shop", "domain": "commerce"},
        },
        0.0,
    )
    assert doc.label_pairs == ["tier=1"]
    assert doc.related_text == "team-pay shop commerce"
    assert doc.domain == "domain:default/commerce"


def test_filter_values_are_normalised_like_documents() -> None:
    assert normalise_filter_value("owner", "Team-A") == "group:default/team-a"
    assert normalise_filter_value("kind", "Component") == "component"
