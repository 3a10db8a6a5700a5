"""Keyset cursors: paging while the index changes never repeats or skips a document."""

from __future__ import annotations

import random

import pytest

from services.index.port import IndexWrite, InvalidQuery, SearchQuery
from tests.support.search import doc, write


@pytest.mark.parametrize(
    ("text", "sort"),
    [("", "name"), ("svc", "relevance"), ("svc", "updated")],
)
def test_paging_while_documents_are_written_and_deleted_sees_each_stable_one_once(
    search_index, text: str, sort: str
) -> None:
    rng = random.Random(7)
    # Relevance varies by document: some have "svc" in the title too, some as a tag.
    stable = [
        doc(
            f"svc-{i:03d}",
            updated_at=float(rng.randrange(1, 50)),
            title="svc" if i % 3 == 0 else None,
            tags=["svc"] if i % 5 == 0 else [],
        )
        for i in range(60)
    ]
    churn = [doc(f"svc-churn-{i:03d}", updated_at=float(i)) for i in range(40)]
    write(search_index, 1, *stable, *churn[:20])
    version = 2
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = search_index.search(SearchQuery(text=text, limit=7, cursor=cursor, sort=sort))
        seen.extend(h.ref for h in page.items)
        pages += 1
        # Between pages: new documents all over the order, deletions, and updates of the
        # churning ones (new last-change times move them in the "updated" order).
        new = churn[20 + pages] if 20 + pages < len(churn) else None
        changes = [IndexWrite(churn[rng.randrange(20)].ref, version, None)]
        moved = churn[rng.randrange(20)]
        changes.append(
            IndexWrite(moved.ref, version, doc(moved.name, updated_at=float(rng.randrange(50))))
        )
        if new is not None:
            changes.append(IndexWrite(new.ref, version, new))
        search_index.apply(changes)
        version += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    stable_refs = [d.ref for d in stable]
    assert len(seen) == len(set(seen)), "a document was returned twice"
    assert set(stable_refs) <= set(seen), "a document that never changed was skipped"


def test_the_last_page_has_no_cursor_and_totals_are_exact(search_index) -> None:
    write(search_index, 1, *[doc(f"svc-{i:02d}") for i in range(10)])
    first = search_index.search(SearchQuery(limit=4, sort="name"))
    assert first.total == 10 and len(first.items) == 4
    cursor = first.next_cursor
    for _ in range(2):
        page = search_index.search(SearchQuery(limit=4, sort="name", cursor=cursor))
        cursor = page.next_cursor
    assert page.total == 10 and [h.name for h in page.items] == ["svc-08", "svc-09"]
    assert cursor is None


def test_a_cursor_of_another_query_or_sort_is_refused(search_index) -> None:
    write(search_index, 1, *[doc(f"svc-{i:02d}") for i in range(5)])
    cursor = search_index.search(SearchQuery(text="svc", limit=2)).next_cursor
    assert cursor is not None
    for other in (
        SearchQuery(text="other", limit=2, cursor=cursor),
        SearchQuery(text="svc", limit=2, cursor=cursor, sort="name"),
        SearchQuery(text="svc", limit=2, cursor=cursor, filters={"kind": ["api"]}),
    ):
        with pytest.raises(InvalidQuery) as caught:
            search_index.search(other)
        assert caught.value.parameter == "cursor"
