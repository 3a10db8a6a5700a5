"""The distributed driver's policy around the processors: coalescing of pushes, waiting out
absent backends, and dead-lettering only what is at fault (processors/faust_agents.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from processors.faust_agents import BatchRunner, RetryPolicy, coalesce
from services.bus.port import LogRecord, LogUnavailable, OutgoingRecord, PublishResult
from services.model.events import (
    DeadLettered,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
)
from services.model.topics import DEAD_LETTERS

FAST = RetryPolicy(first_pause=0.001, max_pause=0.002)
REPO = Repository(
    host="github.com", owner="acme", name="shop", clone_url="u", html_url="https://x/acme/shop"
)


class RecordingLog:
    """Keeps what is published, for the assertions (the dead letters)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, bytes | None]] = []

    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        self.published.append((topic, key, value))
        return PublishResult(offset=len(self.published))

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        raise NotImplementedError

    def consumer(self, group: str, topics: Sequence[str]) -> object:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def dead_letters(self) -> list[DeadLettered]:
        return [
            DeadLettered.model_validate_json(value or b"")
            for topic, _key, value in self.published
            if topic == DEAD_LETTERS.name
        ]


def record(offset: int, value: bytes | None, key: str = "k") -> LogRecord:
    return LogRecord(
        topic="cairn.entity.changes", partition=0, offset=offset, key=key, value=value, timestamp=0
    )


def git_record(offset: int, change: object) -> LogRecord:
    event = GitEventReceived(
        source="github",
        delivery_id=f"d{offset}",
        event_type="push",
        repository=REPO,
        change=change,  # type: ignore[arg-type]
    )
    return LogRecord(
        topic="cairn.git.events",
        partition=0,
        offset=offset,
        key=REPO.key,
        value=event.model_dump_json().encode(),
        timestamp=0,
    )


def push(offset: int, branch: str = "main", deleted: bool = False) -> LogRecord:
    return git_record(offset, PushReceived(ref=f"refs/heads/{branch}", deleted=deleted))


def test_consecutive_pushes_to_the_default_branch_are_read_once_at_the_last() -> None:
    kept = coalesce([push(1), push(2), push(3)])
    assert [r.offset for r in kept] == [3]


def test_a_repository_change_between_pushes_keeps_its_place_in_the_order() -> None:
    kept = coalesce([push(1), git_record(2, RepositoryChanged(action="archived")), push(3)])
    assert [r.offset for r in kept] == [1, 2, 3]


def test_pushes_elsewhere_and_branch_deletions_are_never_dropped() -> None:
    kept = coalesce([push(1, branch="feature"), push(2, deleted=True), push(3), push(4)])
    assert [r.offset for r in kept] == [1, 2, 4]


def test_a_poison_record_is_dead_lettered_and_the_rest_of_the_batch_applied() -> None:
    log, applied = RecordingLog(), []

    def handle(records: Sequence[LogRecord]) -> None:
        if any(r.value == b"poison" for r in records):
            raise ValueError("not an entity change")
        applied.extend(r.offset for r in records)

    runner = BatchRunner("store-projection", handle, log, lambda: True, threading.Event(), FAST)  # type: ignore[arg-type]
    runner([record(1, b"a"), record(2, b"poison"), record(3, b"b")])
    assert applied == [1, 3]
    [letter] = log.dead_letters()
    assert letter.value == "poison" and "not an entity change" in letter.error
    assert letter.processor == "store-projection" and letter.source_topic == "cairn.entity.changes"


def test_a_batch_waits_for_an_absent_backend_instead_of_dead_lettering() -> None:
    log, applied, attempts = RecordingLog(), [], []
    backend_up = threading.Event()

    def handle(records: Sequence[LogRecord]) -> None:
        attempts.append(len(records))
        if len(attempts) >= 4:
            backend_up.set()
        if not backend_up.is_set():
            raise ConnectionError("database is down")
        applied.extend(r.offset for r in records)

    runner = BatchRunner(
        "store-projection", handle, log, backend_up.is_set, threading.Event(), FAST
    )  # type: ignore[arg-type]
    runner([record(1, b"a"), record(2, b"b")])
    assert applied == [1, 2] and log.dead_letters() == []
    assert attempts == [2, 2, 2, 2]


def test_a_refused_log_write_is_an_outage_even_when_the_store_answers() -> None:
    log, calls = RecordingLog(), []

    def handle(records: Sequence[LogRecord]) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise LogUnavailable("Kafka did not acknowledge the write")

    runner = BatchRunner("descriptor", handle, log, lambda: True, threading.Event(), FAST)  # type: ignore[arg-type]
    runner([record(1, b"a")])
    assert len(calls) == 3 and log.dead_letters() == []
