"""What of an entity is searchable and filterable."""

from __future__ import annotations

from services.index.document import build_search_document, name_words, normalise_filter_value


def test_names_split_into_words_whatever_their_case_style() -> None:
    assert name_words("payment-gateway") == ["payment", "gateway"]
    assert name_words("orderService") == ["order", "service"]
    assert name_words("user_profile.v2") == ["user", "profile", "v2"]
    assert name_words("HTTPServer") == ["http", "server"]


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
    assert "getOrderById" in doc.spec_text


def test_filter_values_are_normalised_like_documents() -> None:
    assert normalise_filter_value("owner", "Team-A") == "group:default/team-a"
    assert normalise_filter_value("kind", "Component") == "component"
