"""The event log on Apache Kafka (kafka-python): the distributed adapter of the log port.

Producing: one idempotent producer per process, `acks=all`, records keyed as the topic
says (services/model/topics.py). `publish` returns only after the broker acknowledged the
write, waiting at most `publish_timeout` seconds; when Kafka is unreachable or too slow it
raises `LogUnavailable`, so a receiver answers 503 and never 202 for an event that is not
durable. A record that timed out may still reach the log later (the producer keeps
retrying it until its delivery timeout); the caller was told it failed, and a repeat is
harmless because every processor is idempotent. `publish_async` is the same for callers on
an event loop (the receivers): it writes through an aiokafka producer on that loop
(kafka_loop_producer.py) and runs the ledger's statements on a few threads of its own. It
answers once the broker acknowledged; the ledger records the delivery just after (see
`publish_async`).

Keys go to partitions by Kafka's murmur2 hash of the lower-cased key, so an entity ref
spelled in two cases (refs compare case-insensitively) always lands on one partition.
Offsets are per partition; with the key -> partition mapping fixed (the partition count
of a topic is never changed, see topics_admin.py) they grow per key, which is what the
projections need to use them as versions.

Deduplication of delivery ids runs through a `DeliveryLedger` (check -> publish ->
record), see delivery_ledger.py and services/store/deliveries.py.

Consuming: `KafkaLogConsumer` is one member of a consumer group, with auto-commit off;
`commit` stores, per partition, the offset after the newest record handed in, and is called
by the drivers only after the records were processed (at least once). A consumer that
joins a group with no committed offsets starts at the earliest record.

A namespace (CAIRN_KAFKA_NAMESPACE) prefixes every topic and group on the cluster; the
records handed out carry Cairn's own topic names.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)
from kafka.partitioner import DefaultPartitioner
from kafka.structs import OffsetAndMetadata, TopicPartition

from services.bus.delivery_ledger import DeliveryLedger
from services.bus.kafka_loop_producer import LoopProducer, fold_key
from services.bus.port import LogRecord, LogUnavailable, OutgoingRecord, PublishResult
from services.bus.topics_admin import MAX_RECORD_BYTES, physical_name

log = logging.getLogger(__name__)

# How long a new consumer may take to join its group before its first poll counts time.
_JOIN_TIMEOUT_SECONDS = 60.0
# How long a member may hold no partition before it leaves and joins again as a new member
# (at least this, and at least three session timeouts: the broker's time to drop a member).
_UNASSIGNED_LIMIT_SECONDS = 15.0
# Threads that run the ledger's statements for `publish_async`: they hold a database
# connection each, so this bounds the connections (see SqlDeliveryLedger's pool).
_LEDGER_THREADS = 8


class CaseFoldingPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """Kafka's default partitioner applied to the lower-cased key."""

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        folded = fold_key(serialized_key) if serialized_key is not None else None
        return int(super().partition(topic, key, folded, value, serialized_value, cluster))


class KafkaEventLog:
    """The event-log port on Kafka; see the module docstring for its guarantees."""

    def __init__(
        self,
        bootstrap: str,
        ledger: DeliveryLedger,
        *,
        namespace: str = "",
        publish_timeout: float = 5.0,
        session_timeout: float = 10.0,
        client_id: str = "cairn",
    ) -> None:
        self.bootstrap = bootstrap
        self.namespace = namespace
        self._servers = [part.strip() for part in bootstrap.split(",") if part.strip()]
        self._ledger = ledger
        self._publish_timeout = publish_timeout
        self._session_timeout = session_timeout
        self._client_id = client_id
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._open_failed_at = -float("inf")
        self._ledger_threads = ThreadPoolExecutor(_LEDGER_THREADS, thread_name_prefix="ledger")
        # Deliveries `publish_async` published and is still recording, with their offsets;
        # touched only on the event loop that publishes.
        self._recording: dict[str, int] = {}
        self._records_in_flight: set[asyncio.Task[None]] = set()
        self._loop_producer = LoopProducer(
            self._servers, client_id=client_id, publish_timeout=publish_timeout, bootstrap=bootstrap
        )

    # --- producing --------------------------------------------------------------------

    def _physical(self, topic: str) -> str:
        return physical_name(self.namespace, topic)

    def _get_producer(self) -> KafkaProducer:
        # Opened on first use, so a receiver starts (and answers 503) while Kafka is down.
        with self._lock:
            if self._producer is None:
                since = time.monotonic() - self._open_failed_at
                if since < self._publish_timeout:
                    # Kafka did not answer a moment ago: do not queue every request behind
                    # another attempt of the same length.
                    raise LogUnavailable(f"Kafka at {self.bootstrap} is unreachable.")
                timeout_ms = int(self._publish_timeout * 1000)
                try:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self._servers,
                        client_id=f"{self._client_id}-producer",
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=0,
                        max_block_ms=timeout_ms,
                        request_timeout_ms=max(1000, timeout_ms),
                        delivery_timeout_ms=max(30_000, 2 * timeout_ms),
                        retry_backoff_ms=100,
                        reconnect_backoff_ms=50,
                        reconnect_backoff_max_ms=1000,
                        max_request_size=MAX_RECORD_BYTES + 64 * 1024,
                        # Opening finds the broker version: never wait longer than a publish.
                        bootstrap_timeout_ms=timeout_ms,
                        partitioner=CaseFoldingPartitioner(),
                        # Topics come from `cairn topics`, with their partitions and configs;
                        # a broker's auto-created one would have neither.
                        allow_auto_create_topics=False,
                    )
                except KafkaError as exc:
                    self._open_failed_at = time.monotonic()
                    raise LogUnavailable(
                        f"Kafka at {self.bootstrap} is unreachable: {exc}"
                    ) from exc
            return self._producer

    def _discard_producer(self, failed: KafkaProducer) -> None:
        with self._lock:
            if self._producer is not failed:
                return  # already replaced by another thread
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # closing a broken producer must not hide the first error
                log.debug("closing a failed Kafka producer raised", exc_info=True)

    def _send(self, records: Sequence[OutgoingRecord]) -> list[Any]:
        """Send and wait for every acknowledgement; `LogUnavailable` if any is missing."""
        producer = self._get_producer()
        deadline = time.monotonic() + self._publish_timeout
        try:
            futures = [
                producer.send(
                    self._physical(record.topic), key=record.key.encode(), value=record.value
                )
                for record in records
            ]
            return [
                future.get(timeout=max(0.001, deadline - time.monotonic())) for future in futures
            ]
        except MessageSizeTooLargeError:
            raise
        except KafkaError as exc:
            # The next write gets a fresh producer: after an outage kafka-python's idempotent
            # producer can stay stuck on batches that expired (their sequence numbers are
            # never acknowledged), and what this one still holds was reported as failed.
            self._discard_producer(producer)
            if isinstance(exc, KafkaTimeoutError):
                raise LogUnavailable(
                    f"Kafka at {self.bootstrap} did not acknowledge the write within "
                    f"{self._publish_timeout:.0f} s."
                ) from exc
            raise LogUnavailable(f"Kafka refused the write: {exc}") from exc

    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        if delivery_id is not None:
            seen = self._ledger.recorded(delivery_id)
            if seen is not None:
                return PublishResult(offset=seen, duplicate=True)
        [metadata] = self._send([OutgoingRecord(topic, key, value)])
        if delivery_id is not None:
            self._ledger.record(delivery_id, topic, int(metadata.partition), int(metadata.offset))
        return PublishResult(offset=int(metadata.offset))

    async def publish_async(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        """`publish` for a caller on an event loop (the receivers), with the same guarantees
        and the same ledger; the record goes through the loop's own producer (see
        kafka_loop_producer.py), so waiting for the broker holds no thread.

        It returns once the broker acknowledged the write and records the delivery in the
        ledger just after, so a sender's answer waits for one database round trip (the
        check), not two. Until the ledger has it, a repeat of the delivery in this process
        is answered from memory as a duplicate. If recording fails, the delivery is on the
        log but not in the ledger: a later repeat is published again, which every processor
        tolerates (invariant 2), as it tolerates the repeat of a delivery whose answer was
        lost."""
        loop = asyncio.get_running_loop()
        if delivery_id is not None:
            seen = self._recording.get(delivery_id)
            if seen is None:
                seen = await loop.run_in_executor(
                    self._ledger_threads, self._ledger.recorded, delivery_id
                )
            if seen is not None:
                return PublishResult(offset=seen, duplicate=True)
        partition, offset = await self._loop_producer.send(
            self._physical(topic), key.encode(), value
        )
        if delivery_id is not None:
            self._recording[delivery_id] = offset
            task = loop.create_task(self._record(delivery_id, topic, partition, offset))
            self._records_in_flight.add(task)
            task.add_done_callback(self._records_in_flight.discard)
        return PublishResult(offset=offset)

    async def _record(self, delivery_id: str, topic: str, partition: int, offset: int) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._ledger_threads, self._ledger.record, delivery_id, topic, partition, offset
            )
        except Exception as exc:  # the sender has its answer; nothing else waits for this
            log.warning(
                "delivery %s is on the log (%s[%d]@%d) but the ledger did not record it, so a "
                "repeat of it will be published again: %s",
                delivery_id,
                topic,
                partition,
                offset,
                exc,
            )
        finally:
            self._recording.pop(delivery_id, None)

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        """Every record acknowledged, or `LogUnavailable`; some may then be on the log
        (Kafka has no all-or-nothing across partitions without transactions): callers
        retry the whole batch, and repeats are harmless."""
        if records:
            self._send(records)

    # --- consuming --------------------------------------------------------------------

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaLogConsumer:
        return KafkaLogConsumer(
            self._servers,
            physical_name(self.namespace, group),
            {self._physical(topic): topic for topic in topics},
            session_timeout=self._session_timeout,
            client_id=self._client_id,
        )

    async def stop_async_producer(self) -> None:
        """Stop the producer `publish_async` uses, from its event loop (a server's
        shutdown), waiting until it stopped and the ledger recorded what it published; the
        log stays usable for `publish`."""
        await self._loop_producer.stop()
        if self._records_in_flight:
            await asyncio.wait(set(self._records_in_flight))

    async def close_async(self) -> None:
        """`close` from the event loop that `publish_async` ran on, waiting until its
        producer stopped (`close` there can only start that)."""
        await self.stop_async_producer()
        self.close()

    def close(self) -> None:
        self._loop_producer.close()
        self._ledger_threads.shutdown(wait=True)
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=self._publish_timeout)
        self._ledger.close()


def _complete_pending_joins(consumer: KafkaConsumer) -> None:
    """Work around a kafka-python 3.0 bug that silently drops a member from its group.

    When a poll's time runs out while this member, as the group's leader, is rejoining after
    a metadata change, kafka-python leaves the join in flight; the in-flight join already
    records the new assignment snapshot, so the next poll believes no rejoin is needed and
    never completes it: the assignment is not applied, heartbeats stay disabled and the
    broker drops the member when its session expires. Reporting "rejoin needed" while a
    join is in flight makes the next poll wait for that join and complete it. Private
    attributes are read defensively: without them this changes nothing.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "_join_task"):
        return
    original = coordinator.need_rejoin

    def need_rejoin() -> bool:
        task = getattr(coordinator, "_join_task", None)
        if task is not None and not getattr(task, "is_done", True):
            return True
        return bool(original())

    coordinator.need_rejoin = need_rejoin


class _Membership(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaLogConsumer) -> None:
        self._owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("%s: partitions revoked: %s", self._owner.group, sorted(map(str, revoked)))
        self._owner.on_revoked()

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("%s: partitions assigned: %s", self._owner.group, sorted(map(str, assigned)))
        self._owner.on_assigned(set(assigned))


class KafkaLogConsumer:
    """One member of a Kafka consumer group; not thread-safe (one driver thread uses it)."""

    def __init__(
        self,
        servers: list[str],
        group: str,
        topics: dict[str, str],
        *,
        session_timeout: float,
        client_id: str,
        unassigned_limit: float | None = None,
    ) -> None:
        self.group = group
        self._topics = topics  # physical name -> Cairn's name
        self._servers = servers
        self._session_ms = int(session_timeout * 1000)
        self._client_id = client_id
        self._joined = False
        self._rewind = False
        self._consumer: KafkaConsumer | None = None
        self._first_unassigned_limit = (
            unassigned_limit
            if unassigned_limit is not None
            else max(_UNASSIGNED_LIMIT_SECONDS, 3 * session_timeout)
        )
        self._unassigned_limit = self._first_unassigned_limit
        self._unassigned_since: float | None = None
        self.rejoins = 0  # times this member left and joined again for holding nothing

    def _open(self, timeout: float) -> KafkaConsumer | None:
        """The group member, opened on first use; None while Kafka cannot be reached (the
        driver's loop then simply polls again, so it outlives a broker that is down)."""
        if self._consumer is not None:
            return self._consumer
        session_ms = self._session_ms
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self._servers,
                group_id=self.group,
                client_id=f"{self._client_id}-{self.group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=max(100, session_ms // 3),
                max_poll_interval_ms=max(300_000, session_ms),
                request_timeout_ms=max(30_000, session_ms + 5000),
                retry_backoff_ms=100,
                reconnect_backoff_max_ms=1000,
                fetch_max_bytes=MAX_RECORD_BYTES + 64 * 1024,
                allow_auto_create_topics=False,
                bootstrap_timeout_ms=max(1000, int(timeout * 1000)),
            )
            # Know the topics' partitions before the first join: otherwise the first
            # assignment is empty and the metadata arriving next forces a second rebalance
            # (see _complete_pending_joins for what kafka-python 3.0 can make of that).
            for topic in self._topics:
                consumer.partitions_for_topic(topic)
            consumer.subscribe(list(self._topics), listener=_Membership(self))
            _complete_pending_joins(consumer)
        except KafkaError as exc:
            log.warning("%s: Kafka is unreachable, retrying: %s", self.group, exc)
            return None
        self._consumer = consumer
        return consumer

    def on_revoked(self) -> None:
        # A rebalance began: until an assignment arrives this member reads nothing (its
        # stale assignment stays in `assignment()`, so that cannot tell).
        if self._unassigned_since is None:
            self._unassigned_since = time.monotonic()

    def on_assigned(self, partitions: set[TopicPartition]) -> None:
        self._joined = True
        if partitions:
            self._unassigned_since = None
            self._unassigned_limit = self._first_unassigned_limit
        elif self._unassigned_since is None:
            self._unassigned_since = time.monotonic()
        if self._rewind and partitions and self._consumer is not None:
            self._consumer.seek_to_beginning(*partitions)
            self._rewind = False

    def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        if self._open(timeout) is None:
            return []
        if not self._joined:
            # Joining the group is not waiting for records: it does not use up `timeout`.
            join_deadline = time.monotonic() + _JOIN_TIMEOUT_SECONDS
            while not self._joined and time.monotonic() < join_deadline:
                records = self._poll(max_records, 0.1)
                if records or self._rejoin_if_stuck():
                    return records
        records = self._poll(max_records, timeout)
        self._rejoin_if_stuck()
        return records

    def _rejoin_if_stuck(self) -> bool:
        """A member that has held no partition for long, since it opened or since a
        rebalance began, is most likely one the client lost track of: kafka-python 3.0 can
        leave a join unfinished ("Elected group leader", then no assignment) while the
        broker drops the member. It leaves and joins as a new member (True when it did).
        A member idle because the group has more members than partitions does this too,
        at doubling intervals, which costs the group one rebalance each time."""
        if self._consumer is None:
            return False
        now = time.monotonic()
        if self._unassigned_since is None:
            if not self._consumer.assignment():
                self._unassigned_since = now
            return False
        if now - self._unassigned_since < self._unassigned_limit:
            return False
        log.warning(
            "%s: no partitions for %.0f s; leaving and joining the group again",
            self.group,
            now - self._unassigned_since,
        )
        self.close()
        self._consumer = None
        self._joined = False
        self._unassigned_since = None
        self._unassigned_limit = min(self._unassigned_limit * 2, 3600.0)
        self.rejoins += 1
        return True

    def _poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        consumer = self._open(timeout)
        if consumer is None:
            return []
        try:
            batches = consumer.poll(timeout_ms=int(timeout * 1000), max_records=max(1, max_records))
        except KafkaError as exc:
            # The broker is away or the group is rebalancing: report nothing new this time.
            log.warning("%s: poll failed, retrying: %s", self.group, exc)
            time.sleep(min(timeout, 1.0))
            return []
        records: list[LogRecord] = []
        for partition, messages in batches.items():
            topic = self._topics.get(partition.topic, partition.topic)
            for message in messages:
                records.append(
                    LogRecord(
                        topic=topic,
                        partition=int(message.partition),
                        offset=int(message.offset),
                        key=message.key.decode() if message.key is not None else "",
                        value=message.value,
                        timestamp=float(message.timestamp) / 1000.0,
                        headers={
                            name: (raw or b"").decode(errors="replace")
                            for name, raw in (message.headers or [])
                        },
                    )
                )
        return records

    def commit(self, records: Sequence[LogRecord]) -> None:
        newest: dict[TopicPartition, int] = {}
        physical = {logical: name for name, logical in self._topics.items()}
        for record in records:
            partition = TopicPartition(physical.get(record.topic, record.topic), record.partition)
            newest[partition] = max(newest.get(partition, -1), record.offset)
        if not newest or self._consumer is None:
            return
        try:
            self._consumer.commit(
                {
                    partition: OffsetAndMetadata(offset + 1, "", -1)
                    for partition, offset in newest.items()
                }
            )
        except CommitFailedError as exc:
            # The partitions moved to another member, which re-reads from the last commit.
            log.warning("%s: commit refused after a rebalance: %s", self.group, exc)
        except KafkaError as exc:
            # A later commit covers these offsets too (commits are per partition, cumulative).
            log.warning("%s: commit failed, will be covered by a later one: %s", self.group, exc)

    def seek_to_beginning(self) -> None:
        assigned = self._consumer.assignment() if self._consumer is not None else set()
        if assigned and self._consumer is not None:
            self._consumer.seek_to_beginning(*assigned)
        else:
            self._rewind = True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
