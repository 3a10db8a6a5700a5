"""The event-log port: topics of keyed records with per-key order and committed offsets.

Contract every adapter keeps:
- `publish` returns only once the record is durable (Kafka acks=all, or the SQLite commit);
  if it raises, the record may or may not be durable and the caller must not say it is.
- Records with the same key are delivered in publish order, each with an offset larger
  than the one before it for that key (offsets are usable as projection versions).
- A consumer group sees each record at least once: after a crash it resumes from its last
  commit, so handlers must be idempotent.
- A delivery id given to `publish` is accepted once: a repeat returns `duplicate=True`
  and appends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class LogUnavailable(RuntimeError):
    """The log cannot take writes now; nothing was acknowledged. Retry later."""


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes | None


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    key: str
    value: bytes | None
    timestamp: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishResult:
    offset: int | None
    duplicate: bool = False


class LogConsumer(Protocol):
    """One member of a consumer group over some topics."""

    def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        """Next records after the last delivered ones; waits up to `timeout` seconds."""
        ...

    def commit(self, records: Sequence[LogRecord]) -> None:
        """Mark these records (and everything before them per partition) processed."""
        ...

    def seek_to_beginning(self) -> None: ...

    def close(self) -> None: ...


class EventLog(Protocol):
    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult: ...

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish several records durably, all or nothing where the adapter can."""
        ...

    def consumer(self, group: str, topics: Sequence[str]) -> LogConsumer: ...

    def close(self) -> None: ...
