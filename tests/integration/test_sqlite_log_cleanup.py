"""The embedded log's retention and compaction (Kafka's policies, on the SQLite file)."""

from __future__ import annotations

import time
from pathlib import Path

from services.bus.sqlite_log import SqliteEventLog
from services.model.topics import DEAD_LETTERS, ENTITY_CHANGES, GIT_EVENTS

DAY = 24 * 60 * 60.0


def _values(log: SqliteEventLog, group: str, topic: str) -> list[tuple[str, bytes | None]]:
    consumer = log.consumer(group, [topic])
    try:
        return [(r.key, r.value) for r in consumer.poll(1000, timeout=0)]
    finally:
        consumer.close()


def test_records_past_their_topics_retention_are_deleted(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    for i in range(3):
        log.publish(GIT_EVENTS.name, f"repo-{i}", b"push")
        log.publish(DEAD_LETTERS.name, f"repo-{i}", b"letter")
    assert log.clean_up(time.time() + DAY) == {}
    removed = log.clean_up(time.time() + 8 * DAY)
    assert removed == {GIT_EVENTS.name: 3}
    assert _values(log, "g", GIT_EVENTS.name) == []
    assert len(_values(log, "g", DEAD_LETTERS.name)) == 3  # dead letters stay 30 days
    log.close()


def test_a_compacted_topic_keeps_the_newest_record_of_each_key(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    for version in (b"v1", b"v2", b"v3"):
        log.publish(ENTITY_CHANGES.name, "component:default/a", version)
    log.publish(ENTITY_CHANGES.name, "component:default/b", b"v1")
    log.publish(ENTITY_CHANGES.name, "component:default/c", b"v1")
    log.publish(ENTITY_CHANGES.name, "component:default/c", None)  # deleted

    assert log.clean_up(time.time()) == {}  # younger than the compaction lag: untouched
    assert log.clean_up(time.time() + 2 * 60 * 60) == {ENTITY_CHANGES.name: 3}
    assert _values(log, "g", ENTITY_CHANGES.name) == [
        ("component:default/a", b"v3"),
        ("component:default/b", b"v1"),
        ("component:default/c", None),
    ]
    # The tombstone is kept a day, so every consumer sees the deletion, then goes.
    assert log.clean_up(time.time() + 2 * DAY) == {ENTITY_CHANGES.name: 1}
    assert [key for key, _ in _values(log, "g", ENTITY_CHANGES.name)] == [
        "component:default/a",
        "component:default/b",
    ]
    log.close()


def test_a_consumer_part_way_through_reads_on_after_a_cleanup(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    for version in (b"v1", b"v2"):
        log.publish(ENTITY_CHANGES.name, "component:default/a", version)
    log.publish(ENTITY_CHANGES.name, "component:default/b", b"v1")
    consumer = log.consumer("projection", [ENTITY_CHANGES.name])
    first = consumer.poll(1, timeout=0)
    consumer.commit(first)
    log.publish(ENTITY_CHANGES.name, "component:default/a", b"v3")
    log.clean_up(time.time() + 2 * 60 * 60)
    rest = [(r.key, r.value) for r in consumer.poll(100, timeout=0)]
    assert rest == [("component:default/b", b"v1"), ("component:default/a", b"v3")]
    consumer.close()
    log.close()


def test_old_delivery_ids_are_forgotten_recent_ones_still_deduplicate(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    log.publish(GIT_EVENTS.name, "repo", b"push", delivery_id="d-1")
    assert log.clean_up(time.time() + DAY) == {}
    assert log.publish(GIT_EVENTS.name, "repo", b"push", delivery_id="d-1").duplicate
    assert log.clean_up(time.time() + 8 * DAY) == {GIT_EVENTS.name: 1, "deliveries": 1}
    assert not log.publish(GIT_EVENTS.name, "repo", b"push", delivery_id="d-1").duplicate
    log.close()
