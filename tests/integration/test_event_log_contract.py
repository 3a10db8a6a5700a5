"""The event-log port's contract, held against every adapter."""

from __future__ import annotations

import threading
import time

from services.bus.port import OutgoingRecord
from tests.integration.conftest import unique


def test_published_records_are_consumed_in_order_per_key(event_log) -> None:
    topic = unique("t")
    for i in range(5):
        event_log.publish(topic, "repo-a", f"a{i}".encode())
        event_log.publish(topic, "repo-b", f"b{i}".encode())
    consumer = event_log.consumer(unique("g"), [topic])
    seen: list = []
    deadline = time.monotonic() + 10
    while len(seen) < 10 and time.monotonic() < deadline:
        seen.extend(consumer.poll(100, timeout=1))
    for key in ("repo-a", "repo-b"):
        mine = [r for r in seen if r.key == key]
        assert [r.value for r in mine] == [f"{key[-1]}{i}".encode() for i in range(5)]
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)
    consumer.close()


def test_a_repeated_delivery_id_is_accepted_once(event_log) -> None:
    topic = unique("t")
    first = event_log.publish(topic, "k", b"v", delivery_id="github:d-1")
    again = event_log.publish(topic, "k", b"v", delivery_id="github:d-1")
    assert not first.duplicate and again.duplicate
    consumer = event_log.consumer(unique("g"), [topic])
    assert len(consumer.poll(10, timeout=1)) == 1
    consumer.close()


def test_a_group_resumes_after_its_last_commit(event_log) -> None:
    topic, group = unique("t"), unique("g")
    event_log.publish_batch([OutgoingRecord(topic, "k", f"{i}".encode()) for i in range(4)])
    consumer = event_log.consumer(group, [topic])
    records = consumer.poll(2, timeout=1)
    consumer.commit(records)
    consumer.close()
    resumed = event_log.consumer(group, [topic])
    values = [r.value for r in resumed.poll(10, timeout=1)]
    assert values == [b"2", b"3"]
    resumed.close()


def test_tombstones_carry_no_value(event_log) -> None:
    topic = unique("t")
    event_log.publish(topic, "component:default/x", None)
    consumer = event_log.consumer(unique("g"), [topic])
    [record] = consumer.poll(10, timeout=1)
    assert record.value is None and record.key == "component:default/x"
    consumer.close()


def test_an_idle_consumer_wakes_as_soon_as_a_record_is_published(event_log) -> None:
    topic = unique("t")
    consumer = event_log.consumer(unique("g"), [topic])
    got: list = []
    waiter = threading.Thread(target=lambda: got.extend(consumer.poll(10, timeout=10)))
    waiter.start()
    time.sleep(0.2)
    event_log.publish(topic, "k", b"now")
    waiter.join(timeout=10)
    assert [r.value for r in got] == [b"now"]
    consumer.close()


def test_seek_to_beginning_replays_everything(event_log) -> None:
    topic, group = unique("t"), unique("g")
    event_log.publish_batch([OutgoingRecord(topic, "k", f"{i}".encode()) for i in range(3)])
    consumer = event_log.consumer(group, [topic])
    consumer.commit(consumer.poll(10, timeout=1))
    consumer.seek_to_beginning()
    assert [r.value for r in consumer.poll(10, timeout=1)] == [b"0", b"1", b"2"]
    consumer.close()
