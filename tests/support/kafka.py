"""The stack's Kafka for tests: its address, fresh namespaces, and the stack script.

`CAIRN_TEST_KAFKA_BOOTSTRAP` points at the broker `deploy/local/stack up kafka` started
(`make test` exports it). Each test (or Cairn process) gets a namespace of its own, which
prefixes its topics and consumer groups, so tests never share a record.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.bus.delivery_ledger import DeliveryLedger
from services.bus.kafka_log import KafkaEventLog, KafkaLogConsumer
from services.bus.port import LogRecord, OutgoingRecord, PublishResult
from services.bus.topics_admin import ensure_named_topics
from tests.support.server import wait_until

ENV = "CAIRN_TEST_KAFKA_BOOTSTRAP"
STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack"
TEST_PARTITIONS = 3


def bootstrap() -> str:
    """The stack's Kafka address; fails the test (never skips) when it is not set."""
    value = os.environ.get(ENV)
    if not value:
        pytest.fail(
            f"{ENV} is not set: run the tests with `make test`, or start Kafka with "
            f"`deploy/local/stack up kafka` and export its CAIRN_KAFKA_BOOTSTRAP as {ENV}.",
            pytrace=False,
        )
    return value


def fresh_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


def stack(*args: str, timeout: float = 180) -> str:
    """Run deploy/local/stack (with the caller's CAIRN_STACK_DIR) and return its stdout."""
    done = subprocess.run(
        [str(STACK), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"stack {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


class TopicsOnFirstUse(KafkaEventLog):
    """The Kafka log for contract tests, which pick topic names inside the test: each topic
    is created through Cairn's admin code the first time it is used, as `cairn topics`
    would have created it beforehand."""

    def __init__(self, bootstrap: str, ledger: DeliveryLedger, **kwargs: object) -> None:
        super().__init__(bootstrap, ledger, **kwargs)  # type: ignore[arg-type]
        self._known: set[str] = set()

    def _ensure(self, topics: Sequence[str]) -> None:
        new = sorted(set(topics) - self._known)
        if new:
            ensure_named_topics(
                self.bootstrap,
                {self._physical(topic): {} for topic in new},
                TEST_PARTITIONS,
                1,
            )
            self._known.update(new)

    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        self._ensure([topic])
        return super().publish(topic, key, value, delivery_id=delivery_id)

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        self._ensure([record.topic for record in records])
        super().publish_batch(records)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaLogConsumer:
        self._ensure(topics)
        return super().consumer(group, topics)


def drain(
    log: KafkaEventLog,
    group: str,
    topic: str,
    count: int,
    *,
    commit: bool = False,
    then_wait: float = 0.0,
) -> list[LogRecord]:
    """What a new member of `group` reads from `topic` until it holds `count` records, and
    whatever more arrives within `then_wait` seconds after (to see that nothing does);
    committed when asked."""
    consumer = log.consumer(group, [topic])
    seen: list[LogRecord] = []
    try:
        wait_until(
            lambda: seen.extend(consumer.poll(100, timeout=0.5)) or len(seen) >= count,
            timeout=30,
            what=f"{count} record(s) of {topic}",
        )
        if then_wait:
            seen.extend(consumer.poll(100, timeout=then_wait))
        if commit:
            consumer.commit(seen)
    finally:
        consumer.close()
    return seen


def group_committed(bootstrap: str, group: str, topic: str) -> int:
    """How many records of `topic` `group` has committed, over all partitions."""
    from services.bus.topics_admin import admin_client

    with admin_client(bootstrap) as admin:
        committed = admin.list_group_offsets({group: None}).get(group, {})
    return sum(max(0, meta.offset) for tp, meta in committed.items() if tp.topic == topic)


def delete_topics(bootstrap: str, namespace: str) -> None:
    """Remove a namespace's topics, keeping the test broker small (a broker with thousands
    of partitions takes long to restart, which the broker-down test does)."""
    from services.bus.topics_admin import admin_client

    with admin_client(bootstrap) as admin:
        mine = [name for name in admin.list_topics() if name.startswith(namespace)]
        if mine:
            admin.delete_topics(mine)
