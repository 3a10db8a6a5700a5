"""OpenSearch as the index: mappings declared in code, faults, rejected documents."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.descriptor import DescriptorProcessor
from processors.embedded import EmbeddedRunner
from processors.projections import Backoff
from services.bus.sqlite_log import SqliteEventLog
from services.git.reader import GitReader
from services.index.document import name_words
from services.index.opensearch_index import OpenSearchIndex
from services.index.opensearch_mappings import MAPPING_VERSION
from services.index.port import IndexUnavailable, IndexWrite, SearchQuery, WritesRejected
from services.model.events import DeadLettered, EntityChanged
from services.model.topics import DEAD_LETTERS, ENTITY_CHANGES
from services.store.sql_store import SqlCatalogStore
from tests.support import opensearch
from tests.support.search import doc, entity, ref_of
from tests.support.server import free_port, wait_until

SAMPLES = [
    "payment-gateway",
    "orderService",
    "user_profile.v2",
    "HTTPServer",
    "XMLHttpRequest",
    "fooBar2Baz",
    "v2Api",
    "team's ledger",
    "1.2.3",
    "Über-Straße",
    "naïveCafé",
    "a/b:c",
    "getOrderById(id: ID!): Order",
    "snake_case_NAME",
    "ALLCAPS",
]


@pytest.fixture
def index() -> Iterator[OpenSearchIndex]:
    with opensearch.fresh_index() as fresh:
        yield fresh


def test_the_analyzer_splits_words_exactly_like_the_embedded_index(index) -> None:
    physical = index.aliased(index.alias)[0]
    for sample in SAMPLES:
        tokens = index.client.indices.analyze(
            index=physical, body={"analyzer": "cairn_words", "text": sample}
        )["tokens"]
        expected = [w.replace("ß", "ss") for w in name_words(sample)]
        assert [t["token"] for t in tokens] == expected, sample


def test_the_index_is_created_from_the_declared_template_behind_two_aliases(index) -> None:
    [physical] = index.aliased(index.alias)
    assert physical == f"{index.alias}-v{MAPPING_VERSION}-initial"
    assert index.aliased(index.write_alias) == [physical]
    mapping = index.client.indices.get_mapping(index=physical)[physical]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["_meta"]["mapping_version"] == MAPPING_VERSION
    assert mapping["properties"]["kind"]["type"] == "keyword"
    assert mapping["properties"]["name"]["fields"]["prefix"]["analyzer"] == "cairn_prefix"
    index.ensure_ready()  # idempotent
    assert index.aliased(index.alias) == [physical]


def test_a_document_the_cluster_rejects_is_reported_and_the_rest_applied(index) -> None:
    good = doc("good-svc")
    bad = doc("bad-svc", tags=["x" * 40_000])  # over Lucene's term limit
    with pytest.raises(WritesRejected) as caught:
        index.apply([IndexWrite(good.ref, 1, good), IndexWrite(bad.ref, 2, bad)])
    [rejected] = caught.value.rejected
    assert (rejected.ref, rejected.version) == (bad.ref, 2)
    assert "max_bytes_length_exceeded" in rejected.reason or "immense" in rejected.reason
    assert [h.name for h in index.search(SearchQuery()).items] == ["good-svc"]


def test_an_unreachable_cluster_is_index_unavailable() -> None:
    dead = OpenSearchIndex(f"http://127.0.0.1:{free_port()}", opensearch.fresh_alias())
    with pytest.raises(IndexUnavailable):
        dead.search(SearchQuery(text="svc"))
    with pytest.raises(IndexUnavailable):
        dead.apply([IndexWrite("component:default/a", 1, doc("a"))])
    with pytest.raises(IndexUnavailable):
        dead.suggest("a")
    dead.close()


class Pipeline:
    """The embedded runner projecting cairn.entity.changes into OpenSearch."""

    def __init__(self, tmp_path: Path, index: OpenSearchIndex) -> None:
        self.log = SqliteEventLog(tmp_path / "log.db")
        self.store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
        self.store.create_schema()
        descriptor = DescriptorProcessor(
            GitReader(tmp_path / "mirrors"), self.store, self.log.publish_batch, ["x.yaml"]
        )
        self.runner = EmbeddedRunner(
            self.log,
            self.store,
            index,
            descriptor,
            index_backoff=Backoff(first=0.2, factor=2.0, limit=2.0),
        )

    def publish(self, name: str, **fields: object) -> None:
        body = entity(name, **fields)  # type: ignore[arg-type]
        change = EntityChanged(ref=ref_of(body), location_id="l", location_target="t", entity=body)
        self.log.publish(ENTITY_CHANGES.name, change.ref, change.model_dump_json().encode())

    def dead_letters(self) -> list[DeadLettered]:
        consumer = self.log.consumer("test-dead-letters", [DEAD_LETTERS.name])
        try:
            return [DeadLettered.model_validate_json(r.value) for r in consumer.poll(100, 1.0)]
        finally:
            consumer.close()

    def close(self) -> None:
        self.runner.stop()
        self.log.close()
        self.store.close()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[Pipeline, OpenSearchIndex]]:
    with opensearch.fresh_index(refresh="false") as index:
        pipe = Pipeline(tmp_path, index)
        pipe.runner.start()
        try:
            yield pipe, index
        finally:
            pipe.close()


def test_a_document_opensearch_rejects_goes_to_the_dead_letter_topic(pipeline) -> None:
    pipe, index = pipeline
    pipe.publish("before")
    pipe.publish("rejected", tags=["x" * 40_000])
    pipe.publish("after")
    wait_until(lambda: index.count() == 2, timeout=30, what="the two good documents")
    [letter] = wait_until(pipe.dead_letters, timeout=10, what="a dead letter")
    assert letter.processor == "index-projection"
    assert letter.key == "component:default/rejected"
    assert letter.source_topic == ENTITY_CHANGES.name
    assert "max_bytes_length_exceeded" in letter.error or "immense" in letter.error


def test_opensearch_stopped_and_restarted_during_indexing_loses_nothing(pipeline) -> None:
    pipe, index = pipeline
    published = 0
    stop = threading.Event()

    def producer() -> None:
        nonlocal published
        while not stop.is_set():
            pipe.publish(f"svc-{published:04d}", description=f"change {published}")
            published += 1
            time.sleep(0.01)

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        wait_until(lambda: index.count() >= 50, timeout=30, what="indexing under way")
        opensearch.stack("stop", "opensearch")
        stopped_at = published
        with pytest.raises(IndexUnavailable):
            index.count()
        time.sleep(1.0)  # changes keep arriving while the cluster is down
        opensearch.stack("start", "opensearch")
        wait_until(lambda: published > stopped_at + 50, timeout=30, what="more changes")
    finally:
        stop.set()
        thread.join(30)
    wait_until(lambda: index.count() == published, timeout=120, what=f"all {published} documents")
    assert pipe.dead_letters() == []
    page = index.search(SearchQuery(text=f"svc-{published - 1:04d}"))
    assert page.items[0].description == f"change {published - 1}"
