"""What the Kafka event log adds to the port's contract, on a real broker: 503-worthy
failures instead of hanging, a ledger that never marks a failed delivery as seen, refs
that keep one partition whatever their case, groups that share partitions, and replay."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from services.bus.kafka_log import KafkaEventLog, KafkaLogConsumer
from services.bus.port import LogRecord, LogUnavailable
from services.bus.topics_admin import (
    GroupActive,
    group_assignments,
    physical_name,
    reset_group_to_beginning,
)
from services.store.deliveries import SqlDeliveryLedger
from tests.support import kafka
from tests.support.server import free_port, wait_until

TOPIC = "cairn.git.events"


def _ledger(tmp_path: Path) -> SqlDeliveryLedger:
    ledger = SqlDeliveryLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    return ledger


@pytest.fixture
def event_log(kafka_namespace: str, tmp_path: Path):
    log = kafka.TopicsOnFirstUse(kafka.bootstrap(), _ledger(tmp_path), namespace=kafka_namespace)
    yield log
    log.close()


def test_publishing_while_kafka_is_unreachable_raises_log_unavailable(tmp_path: Path) -> None:
    unreachable = KafkaEventLog(f"127.0.0.1:{free_port()}", _ledger(tmp_path), publish_timeout=1)
    with pytest.raises(LogUnavailable):
        unreachable.publish(TOPIC, "github.com/acme/shop", b"{}", delivery_id="github:d-1")
    unreachable.close()


def test_a_delivery_whose_publish_failed_is_published_when_it_is_sent_again(
    tmp_path: Path, kafka_namespace: str
) -> None:
    unreachable = KafkaEventLog(f"127.0.0.1:{free_port()}", _ledger(tmp_path), publish_timeout=1)
    with pytest.raises(LogUnavailable):
        unreachable.publish(TOPIC, "github.com/acme/shop", b"{}", delivery_id="github:d-2")
    unreachable.close()

    # The same ledger, now with a broker that answers: the retry is not a "duplicate".
    log = kafka.TopicsOnFirstUse(kafka.bootstrap(), _ledger(tmp_path), namespace=kafka_namespace)
    first = log.publish(TOPIC, "github.com/acme/shop", b"{}", delivery_id="github:d-2")
    again = log.publish(TOPIC, "github.com/acme/shop", b"{}", delivery_id="github:d-2")
    assert not first.duplicate and again.duplicate and again.offset == first.offset
    log.close()


def test_refs_that_differ_only_in_case_share_a_partition_and_stay_in_order(
    event_log: KafkaEventLog,
) -> None:
    spellings = ["Component:default/Payments", "component:default/payments"] * 5
    for i, ref in enumerate(spellings):
        event_log.publish(TOPIC, ref, f"{i}".encode())
    records = kafka.drain(event_log, "g-case", TOPIC, len(spellings), commit=True)
    assert len({r.partition for r in records}) == 1
    assert [r.value for r in records] == [f"{i}".encode() for i in range(len(spellings))]


def test_two_members_of_a_group_share_the_partitions_and_see_every_record_once(
    event_log: KafkaEventLog, kafka_namespace: str
) -> None:
    keys = [f"github.com/acme/repo-{i}" for i in range(30)]
    seen: dict[str, list[LogRecord]] = {"a": [], "b": []}
    consumers = {name: event_log.consumer("g-shared", [TOPIC]) for name in seen}
    stop = threading.Event()

    def run(name: str) -> None:
        while not stop.is_set():
            records = consumers[name].poll(100, timeout=0.2)
            seen[name].extend(records)
            consumers[name].commit(records)

    threads = [threading.Thread(target=run, args=(name,)) for name in seen]
    for thread in threads:
        thread.start()
    group = physical_name(kafka_namespace, "g-shared")
    try:
        held = wait_until(
            lambda: (lambda members: members if len(members) == 2 and all(members) else None)(
                list(group_assignments(kafka.bootstrap(), group).values())
            ),
            timeout=60,
            what="both members holding partitions",
        )
        for key in keys:
            event_log.publish(TOPIC, key, key.encode())
        wait_until(
            lambda: len(seen["a"]) + len(seen["b"]) >= len(keys),
            timeout=60,
            what="every record consumed",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for consumer in consumers.values():
            consumer.close()
    assert sorted(r.key for r in seen["a"] + seen["b"]) == sorted(keys)
    assert sum(len(partitions) for partitions in held) == kafka.TEST_PARTITIONS
    assert {r.partition for r in seen["a"]}.isdisjoint({r.partition for r in seen["b"]})


def test_replay_rewinds_a_stopped_group_and_refuses_a_running_one(
    event_log: KafkaEventLog, kafka_namespace: str
) -> None:
    for i in range(5):
        event_log.publish(TOPIC, f"k{i}", f"{i}".encode())
    group, topic = (
        physical_name(kafka_namespace, "g-replay"),
        physical_name(kafka_namespace, TOPIC),
    )
    running = event_log.consumer("g-replay", [TOPIC])
    running.commit(running.poll(10, timeout=5))
    with pytest.raises(GroupActive):
        reset_group_to_beginning(kafka.bootstrap(), group, [topic])
    running.close()

    assert reset_group_to_beginning(kafka.bootstrap(), group, [topic]) == kafka.TEST_PARTITIONS
    again = kafka.drain(event_log, "g-replay", TOPIC, 5, commit=True)
    assert sorted(r.value for r in again) == [f"{i}".encode() for i in range(5)]


def test_a_member_left_without_partitions_joins_again_and_the_group_loses_nothing(
    event_log: KafkaEventLog, kafka_namespace: str
) -> None:
    """More members than partitions: the idle member leaves and joins again after its limit
    (the remedy for a member the client lost track of), and the group still reads every
    record (at least once: the rejoins rebalance it while it reads)."""
    event_log.consumer("g-idle", [TOPIC]).close()  # creates the topic
    members = [
        KafkaLogConsumer(
            [kafka.bootstrap()],
            physical_name(kafka_namespace, "g-idle"),
            {physical_name(kafka_namespace, TOPIC): TOPIC},
            session_timeout=6.0,
            client_id=f"idle-test-{i}",
            unassigned_limit=2.0,
        )
        for i in range(kafka.TEST_PARTITIONS + 1)
    ]
    seen: list[LogRecord] = []
    stop = threading.Event()

    def run(member: KafkaLogConsumer) -> None:
        while not stop.is_set():
            records = member.poll(100, timeout=0.2)
            seen.extend(records)
            member.commit(records)

    threads = [threading.Thread(target=run, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    keys = [f"github.com/acme/idle-{i}" for i in range(30)]
    try:
        wait_until(
            lambda: any(member.rejoins for member in members),
            timeout=90,
            what="the idle member joining again",
        )
        for key in keys:
            event_log.publish(TOPIC, key, key.encode())
        wait_until(
            lambda: {r.key for r in seen} >= set(keys), timeout=90, what="every record consumed"
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for member in members:
            member.close()
    assert {r.key for r in seen} == set(keys)
