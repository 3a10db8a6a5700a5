"""The log offset is the version: a late or repeated change never overwrites a newer one."""

from __future__ import annotations

from services.index.port import IndexWrite, SearchQuery
from tests.support.search import doc


def _descriptions(index) -> dict[str, str | None]:
    return {h.name: h.description for h in index.search(SearchQuery(limit=100)).items}


def test_changes_arriving_out_of_order_leave_the_newest(search_index) -> None:
    v = {n: doc("svc", description=f"v{n}") for n in (3, 5, 9)}
    search_index.apply([IndexWrite(v[5].ref, 5, v[5])])
    search_index.apply([IndexWrite(v[9].ref, 9, v[9]), IndexWrite(v[3].ref, 3, v[3])])
    search_index.apply([IndexWrite(v[5].ref, 5, v[5])])  # a redelivery
    assert _descriptions(search_index) == {"svc": "v9"}


def test_one_batch_holding_several_versions_of_an_entity_keeps_the_newest(search_index) -> None:
    a, b, c = (doc("svc", description=d) for d in ("a", "b", "c"))
    search_index.apply([IndexWrite(a.ref, 4, a), IndexWrite(c.ref, 6, c), IndexWrite(b.ref, 5, b)])
    assert _descriptions(search_index) == {"svc": "c"}


def test_an_equal_version_is_a_repeat_and_changes_nothing(search_index) -> None:
    first, other = doc("svc", description="first"), doc("svc", description="other")
    search_index.apply([IndexWrite(first.ref, 4, first)])
    search_index.apply([IndexWrite(other.ref, 4, other)])
    assert _descriptions(search_index) == {"svc": "first"}


def test_a_deletion_is_not_undone_by_an_older_write_arriving_late(search_index) -> None:
    old = doc("svc", description="old")
    search_index.apply([IndexWrite(old.ref, 2, old)])
    search_index.apply([IndexWrite(old.ref, 8, None)])
    search_index.apply([IndexWrite(old.ref, 5, old)])
    assert search_index.search(SearchQuery(text="svc")).total == 0
    assert search_index.suggest("svc") == []
    assert search_index.count() == 0
    newer = doc("svc", description="back")
    search_index.apply([IndexWrite(newer.ref, 9, newer)])
    assert _descriptions(search_index) == {"svc": "back"}
    assert search_index.count() == 1


def test_a_deletion_arriving_before_the_write_it_deletes_wins(search_index) -> None:
    late = doc("svc")
    search_index.apply([IndexWrite(late.ref, 7, None)])
    search_index.apply([IndexWrite(late.ref, 6, late)])
    assert search_index.search(SearchQuery()).total == 0
