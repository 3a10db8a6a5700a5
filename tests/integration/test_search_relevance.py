"""What developers type finds what they mean, in the same order on both indexes."""

from __future__ import annotations

from services.index.port import EXACT_NAME_BONUS, WEIGHTS, SearchQuery
from tests.support.search import doc, names, write

ORDERS_OPENAPI = """
openapi: 3.0.0
info:
  title: Orders
  description: Place and track customer orders.
paths:
  /orders/{id}:
    get:
      operationId: getOrderById
      summary: Read one order
  /orders:
    post:
      operationId: placeOrder
components:
  schemas:
    OrderLine:
      type: object
      properties:
        quantity: {type: integer}
        skuCode: {type: string}
"""

CART_GRAPHQL = """
type Query { cart(id: ID!): ShoppingCart }
type ShoppingCart { id: ID!  lineItems: [CartLine!]! }
type Mutation { addToCart(sku: String!): ShoppingCart }
"""

PRICING_PROTO = """
syntax = "proto3";
service PriceQuoter { rpc QuoteBasket (BasketRequest) returns (BasketQuote); }
message BasketRequest { repeated string skus = 1; }
"""

EVENTS_ASYNCAPI = """
asyncapi: 2.6.0
info: {title: Shipment events, version: 1.0.0}
channels:
  shipment/dispatched:
    subscribe:
      message:
        name: ParcelDispatched
        payload: {type: object}
"""


def test_an_exact_name_comes_first_then_name_and_title_then_other_fields(search_index) -> None:
    write(
        search_index,
        1,
        doc("ledger"),
        doc("ledger-reports"),
        doc("books", title="General ledger"),
        doc("tagged", tags=["ledger"]),
        doc("described", description="Keeps the ledger balanced"),
        doc("owned", owner="ledger"),
        doc("specced", kind="API", type_="openapi", definition="paths: {/ledger: {}}"),
    )
    page = search_index.search(SearchQuery(text="ledger"))
    assert [h.name for h in page.items] == [
        "ledger",
        "ledger-reports",
        "books",
        "tagged",
        "described",
        "owned",
        "specced",
    ]
    assert [h.score for h in page.items] == [
        EXACT_NAME_BONUS + WEIGHTS["name"],
        WEIGHTS["name"],
        WEIGHTS["title"],
        WEIGHTS["tags"],
        WEIGHTS["description"],
        WEIGHTS["related"],
        WEIGHTS["spec"],
    ]


def test_the_words_of_a_kebab_camel_or_snake_name_find_it(search_index) -> None:
    write(
        search_index,
        1,
        *(doc(n, type_=None) for n in ("payment-gateway", "orderService", "user_profile")),
        *(doc(n, type_=None) for n in ("HTTPServer", "v2Api")),
    )
    assert names(search_index, "gateway") == ["payment-gateway"]
    assert names(search_index, "gateway payment") == ["payment-gateway"]
    assert names(search_index, "service") == ["orderService"]
    assert names(search_index, "order-service") == ["orderService"]
    assert names(search_index, "profile") == ["user_profile"]
    assert names(search_index, "server") == ["HTTPServer"]
    assert names(search_index, "api") == ["v2Api"]


def test_a_query_spelled_like_the_name_in_another_case_style_is_an_exact_match(
    search_index,
) -> None:
    write(search_index, 1, doc("payment-gateway"), doc("payment-gateway-proxy"))
    page = search_index.search(SearchQuery(text="PaymentGateway"))
    assert [h.name for h in page.items] == ["payment-gateway", "payment-gateway-proxy"]
    assert page.items[0].score > EXACT_NAME_BONUS


def test_every_word_must_match(search_index) -> None:
    write(search_index, 1, doc("payment-gateway"), doc("payment-ledger"))
    assert names(search_index, "payment ledger") == ["payment-ledger"]
    assert names(search_index, "payment nothing") == []


def test_a_word_prefix_finds_names_and_titles_as_you_type(search_index) -> None:
    write(
        search_index,
        1,
        doc("payments"),
        doc("payment-gateway"),
        doc("checkout", title="Pay at the till"),
        doc("ledger", description="payable accounts"),
    )
    assert sorted(names(search_index, "pay")) == ["checkout", "payment-gateway", "payments"]
    assert names(search_index, "gate") == ["payment-gateway"]
    assert names(search_index, "payment gat") == ["payment-gateway"]


def test_one_typo_in_a_name_word_still_finds_it(search_index) -> None:
    write(
        search_index,
        1,
        *(doc(n, type_=None) for n in ("payment-gateway", "inventory", "ledger", "release-2024")),
    )
    assert names(search_index, "paymnet") == ["payment-gateway"]  # swapped letters
    assert names(search_index, "gatway") == ["payment-gateway"]  # a letter missing
    assert names(search_index, "inventoory") == ["inventory"]  # a letter too many
    assert names(search_index, "ledgar") == ["ledger"]  # a letter changed
    assert names(search_index, "invntry") == []  # two typos
    assert names(search_index, "ldgr") == []  # short words must be exact or a prefix
    assert names(search_index, "2025") == []  # numbers are never one typo away
    assert names(search_index, "2024") == ["release-2024"]


def test_an_exact_word_outranks_a_typo(search_index) -> None:
    write(search_index, 1, doc("ledger"), doc("ledges"))
    assert names(search_index, "ledges") == ["ledges", "ledger"]


def test_an_api_is_found_by_an_operation_schema_type_or_message_of_its_definition(
    search_index,
) -> None:
    write(
        search_index,
        1,
        doc("orders-api", kind="API", type_="openapi", definition=ORDERS_OPENAPI),
        doc("cart-api", kind="API", type_="graphql", definition=CART_GRAPHQL),
        doc("pricing-api", kind="API", type_="grpc", definition=PRICING_PROTO),
        doc("shipments", kind="API", type_="asyncapi", definition=EVENTS_ASYNCAPI),
        doc("orders-ui", kind="Component", type_="website"),
    )
    assert names(search_index, "getOrderById") == ["orders-api"]
    assert names(search_index, "place order") == ["orders-api"]
    assert names(search_index, "OrderLine") == ["orders-api"]
    assert names(search_index, "skuCode") == ["orders-api"]
    assert names(search_index, "ShoppingCart") == ["cart-api"]
    assert names(search_index, "add to cart") == ["cart-api"]
    assert names(search_index, "QuoteBasket") == ["pricing-api"]
    assert names(search_index, "ParcelDispatched") == ["shipments"]
    assert names(search_index, "orders") == ["orders-api", "orders-ui"]


def test_highlights_mark_the_matched_words_of_each_field(search_index) -> None:
    write(
        search_index,
        1,
        doc(
            "payment-gateway",
            title="Payment Gateway",
            description="Takes card <payments> for the shop",
            tags=["payments", "java"],
        ),
        doc("orders-api", kind="API", type_="openapi", definition=ORDERS_OPENAPI),
    )
    [hit] = search_index.search(SearchQuery(text="payments", highlight=True)).items
    assert hit.highlights["name"] == ["<em>payment</em>-gateway"]
    assert hit.highlights["title"] == ["<em>Payment</em> Gateway"]
    assert hit.highlights["description"] == ["Takes card &lt;<em>payments</em>&gt; for the shop"]
    assert hit.highlights["tags"] == ["<em>payments</em>"]
    [api] = search_index.search(SearchQuery(text="getOrderById", highlight=True)).items
    assert "<em>" in api.highlights["definition"][0]
    assert "getOrderById" in api.highlights["definition"][0].replace("<em>", "").replace(
        "</em>", ""
    )
    [plain] = search_index.search(SearchQuery(text="payments")).items
    assert plain.highlights == {}


def test_suggest_completes_names_then_words_of_names_and_titles_shortest_first(
    search_index,
) -> None:
    write(
        search_index,
        1,
        doc("payment-gateway"),
        doc("payments"),
        doc("payroll"),
        doc("shop-payments"),
        doc("checkout", title="Payment page"),
        doc("ledger"),
    )
    assert [s.name for s in search_index.suggest("pay")] == [
        "payroll",
        "payments",
        "payment-gateway",
        "checkout",
        "shop-payments",
    ]
    assert [s.name for s in search_index.suggest("payment g")] == ["payment-gateway"]
    assert [s.name for s in search_index.suggest("Pay", limit=2)] == ["payroll", "payments"]
    assert search_index.suggest("  ") == []


def test_sorts_by_name_and_by_last_change(search_index) -> None:
    write(
        search_index,
        1,
        doc("b-svc", updated_at=300.0),
        doc("a-svc", updated_at=100.0),
        doc("c-svc", updated_at=200.0),
    )
    assert names(search_index, "svc", sort="name") == ["a-svc", "b-svc", "c-svc"]
    assert names(search_index, "svc", sort="updated") == ["b-svc", "c-svc", "a-svc"]
    assert names(search_index, sort="updated") == ["b-svc", "c-svc", "a-svc"]
