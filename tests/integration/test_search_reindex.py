"""`cairn reindex` rebuilds the index from the store while changes and searches go on."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from services.index.opensearch_index import OpenSearchIndex
from services.index.port import IndexWrite, SearchQuery
from services.index.reindex import fill_if_empty, reindex
from services.model.events import EntityChanged
from services.store.port import VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.support.search import doc, entity, everything, names, ref_of


@pytest.fixture
def store(tmp_path: Path):
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    yield store
    store.close()


class Catalog:
    """Changes as the two projections apply them: the index at once, the store lagging."""

    def __init__(self, store: SqlCatalogStore, index) -> None:
        self.store, self.index = store, index
        self.version = 0
        self.expected: dict[str, str | None] = {}  # ref -> description, None when deleted
        self.store_backlog: list[VersionedChange] = []

    def change(self, name: str, description: str | None, *, to_store: bool = True) -> None:
        self.version += 1
        body = entity(name, description=description) if description is not None else None
        ref = ref_of(body) if body else f"component:default/{name}"
        write = IndexWrite(ref, self.version, doc(name, description=description) if body else None)
        changed = (
            EntityChanged(ref=ref, location_id="l", location_target="t", entity=body)
            if body
            else None
        )
        self.index.apply([write])
        self.expected[ref] = description
        versioned = VersionedChange(ref=ref, version=self.version, change=changed)
        if to_store:
            self.store.apply_entity_changes([versioned])
        else:
            self.store_backlog.append(versioned)

    def load(self, count: int) -> None:
        """Entities svc-000... in one batch, in the store and the index."""
        writes, changes = [], []
        for i in range(count):
            self.version += 1
            name, description = f"svc-{i:03d}", f"first {i}"
            body = entity(name, description=description)
            ref = ref_of(body)
            writes.append(IndexWrite(ref, self.version, doc(name, description=description)))
            changed = EntityChanged(ref=ref, location_id="l", location_target="t", entity=body)
            changes.append(VersionedChange(ref=ref, version=self.version, change=changed))
            self.expected[ref] = description
        self.index.apply(writes)
        self.store.apply_entity_changes(changes)

    def alive(self) -> dict[str, str | None]:
        return {ref: d for ref, d in self.expected.items() if d is not None}


def test_reindex_while_writing_with_searches_running_loses_nothing(search_index, store) -> None:
    if isinstance(search_index, OpenSearchIndex):
        search_index.settle_seconds = 0.2
        search_index.refresh = "false"  # as in production: searchable within a second
        before = search_index.aliased(search_index.alias)
    catalog = Catalog(store, search_index)
    catalog.load(300)
    if isinstance(search_index, OpenSearchIndex):
        search_index.client.indices.refresh(index=search_index.alias)
    rng = random.Random(11)
    stop = threading.Event()
    failures: list[BaseException] = []
    totals: list[int] = []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set() or i < 150:
                i += 1
                # Half the changes reach the store late (after the rebuild): only the
                # projection's writes to the index carry them.
                to_store = rng.random() < 0.5
                roll = rng.random()
                if roll < 0.4:
                    catalog.change(f"svc-new-{i:04d}", f"created {i}", to_store=to_store)
                elif roll < 0.8:
                    name = f"svc-{rng.randrange(300):03d}"
                    catalog.change(name, f"updated {i}", to_store=to_store)
                else:
                    catalog.change(f"svc-{rng.randrange(300):03d}", None, to_store=to_store)
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    def searcher() -> None:
        while not stop.is_set():
            try:
                totals.append(search_index.search(SearchQuery(text="svc", limit=5)).total)
                search_index.suggest("svc")
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=searcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        result = reindex(store, search_index, batch_size=50)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert result.documents > 0
    assert len(totals) > 0 and min(totals) > 200, "a search answered from an empty index"
    if isinstance(search_index, OpenSearchIndex):
        search_index.client.indices.refresh(index=search_index.alias)
    # Every change is in the rebuilt index, as the newest one says.
    found = {h.ref: h.description for h in _all(search_index)}
    alive = catalog.alive()
    wrong = {
        r: (found.get(r), alive.get(r))
        for r in found.keys() | alive
        if found.get(r) != alive.get(r)
    }
    assert wrong == {}, "(found, expected) per ref"
    assert search_index.count() == len(catalog.alive())
    if isinstance(search_index, OpenSearchIndex):
        after = search_index.aliased(search_index.alias)
        assert after != before and len(after) == 1
        assert search_index.aliased(search_index.write_alias) == after
        assert not search_index.client.indices.exists(index=before[0])


def test_reindex_rederives_documents_and_drops_nothing_newer(search_index, store) -> None:
    catalog = Catalog(store, search_index)
    catalog.change("ledger", "the books")
    catalog.change("gone", "about to go")
    catalog.change("gone", None, to_store=False)  # the store has not seen the deletion yet
    catalog.change("fresh", "only the index knows", to_store=False)
    api = doc("fresh-api", kind="API", type_="openapi", definition="operationId: getOrderById")
    search_index.apply([IndexWrite(api.ref, 99, api)])  # nor does the store know this one
    if isinstance(search_index, OpenSearchIndex):
        search_index.settle_seconds = 0.1
    result = reindex(store, search_index)
    assert result.documents == 2  # ledger and gone, from the store
    found = {h.ref: h.description for h in _all(search_index)}
    assert found == {
        "component:default/ledger": "the books",
        "component:default/fresh": "only the index knows",
        "api:default/fresh-api": None,
    }
    # the catch-up copied the whole document, its API definition text included
    assert names(search_index, "get order by id", highlight=True) == ["fresh-api"]


def test_an_empty_index_is_filled_from_the_store(search_index, store) -> None:
    for i in range(30):
        store.apply_entity_changes(
            [
                VersionedChange(
                    ref=f"component:default/svc-{i}",
                    version=i + 1,
                    change=EntityChanged(
                        ref=f"component:default/svc-{i}",
                        location_id="l",
                        location_target="t",
                        entity=entity(f"svc-{i}"),
                    ),
                )
            ]
        )
    assert fill_if_empty(store, search_index) == 30
    if isinstance(search_index, OpenSearchIndex):
        search_index.client.indices.refresh(index=search_index.alias)
    assert search_index.count() == 30
    assert fill_if_empty(store, search_index) == 0  # not empty: left alone


def _all(index):
    refs = everything(index, sort="name")
    hits = []
    cursor = None
    while True:
        page = index.search(SearchQuery(limit=200, cursor=cursor, sort="name"))
        hits.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [h.ref for h in hits] == refs
    return hits
