"""The embedded runner over the real SQLite log, store, FTS5 index and git."""

from __future__ import annotations

from pathlib import Path

from processors.descriptor import DescriptorProcessor
from processors.embedded import EmbeddedRunner
from services.bus.sqlite_log import SqliteEventLog
from services.git.reader import GitReader
from services.index.fts5 import Fts5SearchIndex
from services.index.port import SearchQuery
from services.model.events import DeadLettered, GitEventReceived, PushReceived, Repository
from services.model.topics import DEAD_LETTERS, GIT_EVENTS
from services.store.sql_store import SqlCatalogStore
from tests.e2e.catalog_files import component
from tests.support.gitrepo import GitRepo
from tests.support.server import wait_until


def test_a_poison_message_is_dead_lettered_and_processing_goes_on(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    index = Fts5SearchIndex(tmp_path / "index.db")
    index.ensure_ready()
    descriptor = DescriptorProcessor(
        GitReader(tmp_path / "mirrors"), store, log.publish_batch, ["catalog-info.yaml"]
    )
    runner = EmbeddedRunner(log, store, index, descriptor)
    runner.start()
    try:
        log.publish(GIT_EVENTS.name, "github.com/acme/bad", b"{this is not an envelope")
        repo = GitRepo.create(tmp_path, "acme", "good")
        _before, after = repo.commit_and_push({"catalog-info.yaml": component("good-svc")})
        event = GitEventReceived(
            source="github",
            delivery_id="d-1",
            event_type="push",
            repository=Repository(
                host="github.com",
                owner="acme",
                name="good",
                clone_url=repo.remote.as_uri(),
                html_url=repo.remote.as_uri(),
            ),
            change=PushReceived(ref="refs/heads/main", after=after),
        )
        log.publish(GIT_EVENTS.name, "github.com/acme/good", event.model_dump_json().encode())
        wait_until(
            lambda: index.search(SearchQuery(text="good-svc")).total == 1,
            what="the good event processed after the poison one",
        )
        letters = log.consumer("test-dead-letters", [DEAD_LETTERS.name]).poll(10, timeout=5)
        [letter] = [DeadLettered.model_validate_json(r.value) for r in letters]
        assert letter.source_topic == GIT_EVENTS.name and letter.processor == "descriptor"
        assert letter.key == "github.com/acme/bad" and "ValidationError" in letter.error
        wait_until(lambda: store.get_entity("component:default/good-svc"), what="the store")
    finally:
        runner.stop()
        log.close()
        store.close()
        index.close()


def test_an_unreachable_store_is_waited_out_not_dead_lettered(tmp_path: Path) -> None:
    from processors.embedded import ConsumerLoop, LoopSpec
    from services.store.port import StoreUnavailable

    log = SqliteEventLog(tmp_path / "log.db")
    attempts: list[int] = []

    def handle(records) -> None:
        attempts.append(len(records))
        if len(attempts) < 3:
            raise StoreUnavailable("database down")

    loop = ConsumerLoop(log, LoopSpec("store-projection", "g", ("t",), handle, 10))
    loop.start()
    try:
        log.publish("t", "k", b"v")
        wait_until(lambda: loop.processed == 1, what="the record processed after the outage")
        assert attempts == [1, 1, 1]
        assert log.consumer("dl", [DEAD_LETTERS.name]).poll(10, timeout=0.2) == []
    finally:
        loop.stop()
        loop.join(5)
        log.close()


def test_a_failing_log_client_is_reopened_and_nothing_is_lost(tmp_path: Path) -> None:
    """A log consumer that raises something unexpected (a client bug) does not end the
    loop: a fresh consumer re-reads from the last commit."""
    from processors.embedded import ConsumerLoop, LoopSpec
    from services.bus.port import LogRecord

    log = SqliteEventLog(tmp_path / "log.db")
    opened: list[object] = []
    real_consumer = log.consumer

    class BrokenOnce:
        """The first consumer opened fails its second poll, as a client in a bad state
        would; later ones are the real SQLite consumer."""

        def __init__(self, group: str, topics: list[str]) -> None:
            self._real = real_consumer(group, topics)
            self._polls = 0

        def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
            self._polls += 1
            if self._polls == 2:
                raise RuntimeError("client state machine confused")
            return self._real.poll(max_records, timeout)

        def commit(self, records: list[LogRecord]) -> None:
            self._real.commit(records)

        def close(self) -> None:
            self._real.close()

    def consumer(group: str, topics: list[str]) -> object:
        made = BrokenOnce(group, topics) if not opened else real_consumer(group, topics)
        opened.append(made)
        return made

    log.consumer = consumer  # type: ignore[method-assign,assignment]
    seen: list[bytes | None] = []
    loop = ConsumerLoop(
        log,
        LoopSpec("store-projection", "g", ("t",), lambda rs: seen.extend(r.value for r in rs), 10),
    )
    loop.start()
    try:
        for i in range(3):
            log.publish("t", "k", f"v{i}".encode())
        wait_until(
            lambda: loop.processed >= 3 and len(opened) == 2,
            what="every record processed and a fresh consumer opened",
        )
        assert loop.is_alive()
        assert sorted(set(seen)) == [b"v0", b"v1", b"v2"]
        assert loop.last_error == "RuntimeError: client state machine confused"
    finally:
        loop.stop()
        loop.join(5)
        log.close()
