"""The Kafka log's `publish_async` (the receivers' path) on a real broker: durable writes
on the partition the synchronous path uses, the same ledger, 503-worthy failures that come
fast, and no topic ever created by a write."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from services.bus.kafka_log import KafkaEventLog
from services.bus.port import LogUnavailable
from services.bus.topics_admin import admin_client, physical_name
from services.store.deliveries import SqlDeliveryLedger
from tests.support import kafka
from tests.support.server import free_port

TOPIC = "cairn.git.events"


def _ledger(tmp_path: Path) -> SqlDeliveryLedger:
    ledger = SqlDeliveryLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    return ledger


class _SlowLedger(SqlDeliveryLedger):
    """The real ledger, whose `record` waits until `release` is set and then fails as the
    real one does when its database is away if `unreachable` is set."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.unreachable = False

    def record(self, delivery_id: str, topic: str, partition: int, offset: int) -> None:
        self.release.wait(30)
        if self.unreachable:
            raise LogUnavailable("The delivery ledger's database is unreachable: test")
        super().record(delivery_id, topic, partition, offset)


def _slow_ledger(tmp_path: Path) -> _SlowLedger:
    ledger = _SlowLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    return ledger


@pytest.fixture
def event_log(kafka_namespace: str, tmp_path: Path):
    log = kafka.TopicsOnFirstUse(kafka.bootstrap(), _ledger(tmp_path), namespace=kafka_namespace)
    log._ensure([TOPIC])
    yield log
    log.close()


def test_a_delivery_published_from_the_loop_is_on_the_log_once(event_log: KafkaEventLog) -> None:
    # The synchronous path, for comparison: the same key in another case.
    event_log.publish(TOPIC, "github.com/acme/shop", b"thread")

    async def publish_twice() -> tuple[int | None, bool, int | None]:
        first = await event_log.publish_async(
            TOPIC, "GitHub.com/Acme/Shop", b"loop", delivery_id="github:a-1"
        )
        again = await event_log.publish_async(
            TOPIC, "GitHub.com/Acme/Shop", b"loop", delivery_id="github:a-1"
        )
        await event_log.close_async()
        assert not first.duplicate
        return first.offset, again.duplicate, again.offset

    first_offset, duplicate, again_offset = asyncio.run(publish_twice())
    assert duplicate and again_offset == first_offset

    seen = kafka.drain(event_log, "g-async", TOPIC, 2)
    # Once on the log, on the partition the synchronous path chose for the same key.
    assert sorted(r.value for r in seen) == [b"loop", b"thread"]
    assert len({r.partition for r in seen}) == 1


def test_publishing_from_the_loop_while_kafka_is_unreachable_fails_fast(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    unreachable = KafkaEventLog(f"127.0.0.1:{free_port()}", ledger, publish_timeout=1)

    async def attempt() -> float:
        began = time.monotonic()
        with pytest.raises(LogUnavailable):
            await unreachable.publish_async(TOPIC, "k", b"{}", delivery_id="github:a-2")
        return time.monotonic() - began

    async def twice() -> tuple[float, float, int | None]:
        first, second = await attempt(), await attempt()
        seen = ledger.recorded("github:a-2")
        await unreachable.close_async()
        return first, second, seen

    first, second, seen = asyncio.run(twice())
    # Refused within the publish timeout, and the next one at once (no second wait)...
    assert first < 3 and second < 0.5
    # ...and never marked as seen, so the sender's retry is published.
    assert seen is None


def test_publishing_from_the_loop_never_creates_a_topic(
    event_log: KafkaEventLog, kafka_namespace: str
) -> None:
    missing = "cairn.not-created"

    async def publish() -> None:
        try:
            await event_log.publish_async(missing, "k", b"{}")
        finally:
            await event_log.close_async()

    with pytest.raises(LogUnavailable, match="cairn topics"):
        asyncio.run(publish())
    with admin_client(kafka.bootstrap()) as admin:
        assert physical_name(kafka_namespace, missing) not in admin.list_topics()


def test_the_answer_does_not_wait_for_the_ledger_and_a_repeat_meanwhile_is_a_duplicate(
    kafka_namespace: str, tmp_path: Path
) -> None:
    ledger = _slow_ledger(tmp_path)
    event_log = kafka.TopicsOnFirstUse(kafka.bootstrap(), ledger, namespace=kafka_namespace)
    event_log._ensure([TOPIC])

    async def publish() -> None:
        first = await event_log.publish_async(TOPIC, "k", b"once", delivery_id="github:b-1")
        # Answered while the ledger has not recorded it yet...
        assert not first.duplicate and ledger.recorded("github:b-1") is None
        # ...and a repeat in that window is known all the same.
        again = await event_log.publish_async(TOPIC, "k", b"once", delivery_id="github:b-1")
        assert again.duplicate and again.offset == first.offset
        ledger.release.set()
        await event_log.close_async()  # waits until the ledger recorded it
        assert ledger.recorded("github:b-1") == first.offset

    try:
        asyncio.run(publish())
        records = kafka.drain(event_log, "g-slow", TOPIC, 1, then_wait=1.0)
        assert [r.value for r in records] == [b"once"]
    finally:
        event_log.close()


def test_a_delivery_the_ledger_failed_to_record_is_answered_and_published_again_when_repeated(
    kafka_namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = _slow_ledger(tmp_path)
    ledger.unreachable = True
    ledger.release.set()
    event_log = kafka.TopicsOnFirstUse(kafka.bootstrap(), ledger, namespace=kafka_namespace)
    event_log._ensure([TOPIC])

    async def publish() -> tuple[bool, bool]:
        first = await event_log.publish_async(TOPIC, "k", b"lost", delivery_id="github:b-2")
        deadline = time.monotonic() + 10
        while "did not record it" not in caplog.text and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # until the record failed
        ledger.unreachable = False
        again = await event_log.publish_async(TOPIC, "k", b"lost", delivery_id="github:b-2")
        await event_log.close_async()
        return first.duplicate, again.duplicate

    try:
        with caplog.at_level(logging.WARNING, logger="services.bus.kafka_log"):
            first_duplicate, again_duplicate = asyncio.run(publish())
        # The sender was answered: the record was durable on the log whatever the ledger did.
        assert not first_duplicate
        assert "github:b-2" in caplog.text
        # Its repeat was not known, so it went on the log again (invariant 2 allows that).
        assert not again_duplicate
        records = kafka.drain(event_log, "g-failed", TOPIC, 2, then_wait=1.0)
        assert [r.value for r in records] == [b"lost", b"lost"]
        assert ledger.recorded("github:b-2") is not None
    finally:
        event_log.close()
