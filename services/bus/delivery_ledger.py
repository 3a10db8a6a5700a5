"""The delivery ledger: which webhook deliveries the distributed event log already holds.

Kafka cannot answer "have I seen delivery X?", so the Kafka log keeps a ledger beside it in
the catalog database and runs every delivery through check -> publish -> record:

- `recorded(id)` before publishing: a known id is answered as a duplicate, nothing is sent;
- the record is published and acknowledged by the broker;
- `record(id, ...)` after the acknowledgement, so a publish that failed never marks a
  delivery as seen (the sender's retry is then published normally). The receivers' path
  (`KafkaEventLog.publish_async`) answers the sender first and records just after.

Two deliveries with the same id racing through the window between check and record are
both published; that costs a repeated record on the log, which every processor tolerates
(invariant 2), and never a lost one. The embedded SQLite log does not need this: it checks
and appends in one transaction.

Each of `recorded` and `record` is one statement in its own transaction, so one round trip
to the database: the two are a delivery's only database work, and only the first is on the
way to the sender's answer.
"""

from __future__ import annotations

from typing import Protocol


class DeliveryLedger(Protocol):
    """Delivery ids already published, with where the broker put them.

    `record` is idempotent: recording a known id keeps the first position.
    """

    def recorded(self, delivery_id: str) -> int | None:
        """The offset the delivery was published at, or None if it was never recorded."""
        ...

    def record(self, delivery_id: str, topic: str, partition: int, offset: int) -> None: ...

    def close(self) -> None: ...
