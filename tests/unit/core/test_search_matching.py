"""Typo distance and highlighting shared by the index adapters."""

from __future__ import annotations

from services.index.cursor import cursor_key, keyset_cursor
from services.index.matching import deletions, excerpt, highlight, within_one_edit
from services.index.port import SearchQuery


def test_one_edit_is_an_insertion_deletion_substitution_or_swap() -> None:
    assert within_one_edit("payment", "paymnet")
    assert within_one_edit("payment", "payments")
    assert within_one_edit("payment", "paymet")
    assert within_one_edit("payment", "paymant")
    assert not within_one_edit("payment", "pymnet")
    assert not within_one_edit("payment", "tnemyap")


def test_words_one_edit_apart_share_a_deletion() -> None:
    for typo in ("paymnet", "payments", "paymet", "paymant"):
        assert deletions("payment") & deletions(typo)


def test_highlight_marks_whole_words_and_escapes_the_rest() -> None:
    assert highlight("payment-gateway <v2>", ["gateway"], loose=False) == (
        "payment-<em>gateway</em> &lt;v2&gt;"
    )
    assert highlight("orderService", ["service"], loose=False) == "order<em>Service</em>"
    assert highlight("payments", ["pay"], loose=True) == "<em>payments</em>"
    assert highlight("payments", ["pay"], loose=False) is None
    assert highlight("ledger", ["ledgar"], loose=True) == "<em>ledger</em>"


def test_an_excerpt_keeps_the_first_mark_and_whole_words() -> None:
    marked = "word " * 100 + "<em>hit</em> " + "tail " * 100
    cut = excerpt(marked, width=60)
    assert "<em>hit</em>" in cut and cut.startswith("…") and cut.endswith("…")
    assert len(cut) < 90


def test_a_cursor_carries_the_sort_key_for_its_own_query_only() -> None:
    query = SearchQuery(text="pay", sort="name")
    cursor = keyset_cursor(query, ["payments", "component:default/payments"])
    assert cursor_key(SearchQuery(text="pay", sort="name", cursor=cursor)) == [
        "payments",
        "component:default/payments",
    ]
