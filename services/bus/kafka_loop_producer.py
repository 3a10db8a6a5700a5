"""The Kafka log's producer for callers on an event loop: the webhook receivers.

kafka-python's producer hands every record to its own I/O thread and back; a receiver that
waits for the acknowledgement parks a worker thread, and each record crosses threads (and
the GIL) four times. aiokafka's producer runs on the receivers' event loop and builds
record batches in C: on this kind of machine a durable write costs a quarter of the CPU and
a fifth of the wall time. It gives the same guarantees as `KafkaEventLog._send`:

- idempotent, `acks=all`: `send` returns only once the broker acknowledged the record;
- at most `publish_timeout` seconds, then `LogUnavailable`; so does any broker error, and
  the next send gets a fresh producer (as the synchronous path does after an outage);
- while Kafka cannot be reached, opening is retried at most once per `publish_timeout`,
  other sends are refused at once, so a receiver answers 503 without queueing;
- keys go to the partition kafka-python would pick (the case-folded key's murmur2 hash);
- it never creates a topic: a topic the cluster lacks is refused (`cairn topics` creates
  them), whatever the broker's `auto.create.topics.enable`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from services.bus.port import LogUnavailable
from services.bus.topics_admin import MAX_RECORD_BYTES

log = logging.getLogger(__name__)


def fold_key(serialized_key: bytes) -> bytes:
    """The bytes a key is partitioned by: lower-cased, so an entity ref spelled in two
    cases (refs compare case-insensitively) always lands on one partition."""
    return (
        serialized_key.decode("utf-8", "surrogateescape").lower().encode("utf-8", "surrogateescape")
    )


def _case_folding_partition(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    folded = fold_key(key) if key is not None else None
    return int(DefaultPartitioner()(folded, all_partitions, available))


class LoopProducer:
    """One aiokafka producer per event loop, opened on first use (so a receiver starts,
    and answers 503, while Kafka is down)."""

    def __init__(
        self, servers: list[str], *, client_id: str, publish_timeout: float, bootstrap: str
    ) -> None:
        self._servers = servers
        self._client_id = client_id
        self._timeout = publish_timeout
        self._bootstrap = bootstrap  # as configured, for messages
        self._producer: AIOKafkaProducer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._open_failed_at = -float("inf")
        self._topics: set[str] = set()
        self._stopping: set[asyncio.Task[None]] = set()

    async def send(self, topic: str, key: bytes, value: bytes | None) -> tuple[int, int]:
        """Write one record to the physical `topic`; its (partition, offset) once durable."""
        deadline = time.monotonic() + self._timeout
        producer = await self._open(deadline)
        try:
            if topic not in self._topics:
                await self._check_topic(producer, topic, deadline)
            metadata = await asyncio.wait_for(
                producer.send_and_wait(topic, value, key=key),
                max(0.001, deadline - time.monotonic()),
            )
        except MessageSizeTooLargeError:
            raise
        except TimeoutError as exc:
            self._discard(producer)
            raise LogUnavailable(
                f"Kafka at {self._bootstrap} did not acknowledge the write within "
                f"{self._timeout:.0f} s."
            ) from exc
        except KafkaError as exc:
            self._discard(producer)
            raise LogUnavailable(f"Kafka refused the write: {exc}") from exc
        return int(metadata.partition), int(metadata.offset)

    async def _check_topic(self, producer: AIOKafkaProducer, topic: str, deadline: float) -> None:
        # Asking for one topic's metadata would let such a broker create it; asking for all
        # creates nothing.
        cluster = await asyncio.wait_for(
            producer.client.fetch_all_metadata(), max(0.001, deadline - time.monotonic())
        )
        if topic not in cluster.topics():
            raise LogUnavailable(
                f"Kafka at {self._bootstrap} has no topic {topic}; create the topics with "
                "`cairn topics`."
            )
        self._topics.add(topic)

    async def _open(self, deadline: float) -> AIOKafkaProducer:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new loop (a test's, or a restarted server's): the old producer is bound to
            # the old loop and cannot be used or stopped from this one.
            self._producer, self._loop, self._opening = None, loop, asyncio.Lock()
            self._topics.clear()
        assert self._opening is not None
        async with self._opening:
            if self._producer is not None:
                return self._producer
            if time.monotonic() - self._open_failed_at < self._timeout:
                # Kafka did not answer a moment ago: do not queue every request behind
                # another attempt of the same length.
                raise LogUnavailable(f"Kafka at {self._bootstrap} is unreachable.")
            timeout_ms = int(self._timeout * 1000)
            producer = AIOKafkaProducer(
                bootstrap_servers=self._servers,
                client_id=f"{self._client_id}-producer",
                acks="all",
                enable_idempotence=True,
                linger_ms=0,
                request_timeout_ms=max(1000, timeout_ms),
                retry_backoff_ms=100,
                max_request_size=MAX_RECORD_BYTES + 64 * 1024,
                partitioner=_case_folding_partition,
            )
            try:
                await asyncio.wait_for(producer.start(), max(0.001, deadline - time.monotonic()))
            except (KafkaError, OSError, TimeoutError) as exc:
                self._open_failed_at = time.monotonic()
                self._stop_later(producer)
                raise LogUnavailable(f"Kafka at {self._bootstrap} is unreachable: {exc}") from exc
            self._producer = producer
            return producer

    def _discard(self, failed: AIOKafkaProducer) -> None:
        if self._producer is failed:  # else another send already discarded it
            self._producer = None
            self._topics.clear()
            self._stop_later(failed)

    def _stop_later(self, producer: AIOKafkaProducer) -> None:
        async def stop() -> None:
            try:
                await asyncio.wait_for(producer.stop(), self._timeout)
            except Exception:  # stopping a broken producer must not hide the first error
                log.debug("stopping a Kafka producer raised", exc_info=True)

        task = asyncio.get_running_loop().create_task(stop())
        self._stopping.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        """Stop this loop's producer, and wait for those stopping after a failure."""
        producer, self._producer = self._producer, None
        if producer is not None and self._loop is asyncio.get_running_loop():
            await producer.stop()
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def close(self) -> None:
        """Stop the producer if it is open. Called on its loop (a server's shutdown) this
        can only start the stop: every record it was given was acknowledged already (each
        `send` waited), so nothing is lost; it closes connections."""
        producer, loop, self._producer = self._producer, self._loop, None
        if producer is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._stop_later(producer)
        elif not loop.is_running():
            loop.run_until_complete(producer.stop())
        else:
            asyncio.run_coroutine_threadsafe(producer.stop(), loop).result(self._timeout)
