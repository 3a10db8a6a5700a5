"""What the faust agents do with a batch, as plain blocking Python (no faust here).

The agents in processors/faust_app.py only gather records and hand each batch to one of
these in a worker thread, so the event loop stays free for heartbeats and rebalances. The
processors themselves (DescriptorProcessor, the projections, the deployment processor and
its index projection) are the ones the embedded runner uses, through the same handlers;
this module adds the distributed driver's policy around them:

- per-key order: the git events of one repository are handled one after another, different
  repositories in parallel; the other processors take a batch's records in the order they
  were read, which keeps each partition's (so each key's) order; a batch is finished before
  the next one starts;
- coalescing: a push to the default branch followed by another one for the same repository
  in the same batch is skipped, since the later read sees everything the earlier one would
  (level-triggered, ARCHITECTURE.md invariant 3);
- failures: when a batch fails while something it needs is away (the database does not
  answer, Kafka refuses writes), it waits and tries the same batch again, for as long as it
  takes: an outage must not cost a change. When everything answers, the batch is at fault:
  it is split and tried record by record; a record that still fails is published to
  `cairn.dead-letters` with the reason, so one poison record never stops a partition
  (invariant 5).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from processors import deployments as ci
from processors.descriptor import DescriptorProcessor
from processors.embedded import dead_letter, deployment_handler, deployment_index_handler
from processors.projections import project_to_index, project_to_store
from services.bus.port import EventLog, LogRecord, LogUnavailable
from services.index.port import SearchIndex
from services.model.events import GitEventReceived, PushReceived
from services.store.port import CatalogStore

log = logging.getLogger("cairn.processors")

# The consumer groups, named as the embedded runner names them, so `cairn replay --group`
# means the same thing whichever runner consumed.
DESCRIPTOR_GROUP = "cairn-descriptor"
STORE_PROJECTION_GROUP = "cairn-store-projection"
INDEX_PROJECTION_GROUP = "cairn-index-projection"
DEPLOYMENTS_GROUP = ci.GROUP
DEPLOYMENT_INDEX_GROUP = ci.INDEX_GROUP

BatchHandler = Callable[[Sequence[LogRecord]], None]


class Stopped(Exception):
    """The worker is stopping: the batch was left unfinished and must not be acknowledged."""


@dataclass(frozen=True)
class RetryPolicy:
    first_pause: float = 0.2
    max_pause: float = 5.0


def answers(probe: Callable[[], object]) -> Callable[[], bool]:
    """A health check from a cheap call that raises when its backend is away."""

    def check() -> bool:
        try:
            probe()
        except Exception:
            return False
        return True

    return check


class BatchRunner:
    """Runs one processor's handler over batches with the failure policy above."""

    def __init__(
        self,
        name: str,
        handle: BatchHandler,
        event_log: EventLog,
        healthy: Callable[[], bool],
        stopping: threading.Event,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.name = name
        self._handle = handle
        self._log = event_log
        self._healthy = healthy
        self._stopping = stopping
        self._policy = policy
        self.dead_lettered = 0

    def __call__(self, records: Sequence[LogRecord]) -> None:
        if records:
            self._run(records)

    def _pause(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise Stopped()

    def _outage(self, error: Exception) -> bool:
        return isinstance(error, LogUnavailable) or not self._healthy()

    def _run(self, records: Sequence[LogRecord]) -> None:
        pause = self._policy.first_pause
        while True:
            try:
                self._handle(records)
                return
            except Exception as exc:
                error = exc
            if not self._outage(error):
                break
            log.warning(
                "%s: %d record(s) wait for a backend that does not answer (%s: %s); "
                "retrying in %.1f s",
                self.name,
                len(records),
                type(error).__name__,
                error,
                pause,
            )
            self._pause(pause)
            pause = min(self._policy.max_pause, pause * 2)
        if len(records) > 1:
            log.warning(
                "%s: batch of %d failed (%s: %s); retrying one by one",
                self.name,
                len(records),
                type(error).__name__,
                error,
            )
            for record in records:
                self._run([record])
            return
        # One retry after a pause covers a passing fault (a lock, a busy remote).
        self._pause(self._policy.first_pause)
        try:
            self._handle(records)
            return
        except Exception as exc:
            if self._outage(exc):
                self._run(records)
                return
            self._give_up(records[0], exc)

    def _give_up(self, record: LogRecord, error: Exception) -> None:
        log.error(
            "%s: record %s[%d]@%d dead-lettered: %s: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            type(error).__name__,
            error,
        )
        pause = self._policy.first_pause
        while True:
            try:
                dead_letter(self._log, self.name, record, error)
                self.dead_lettered += 1
                return
            except LogUnavailable as exc:
                log.warning("%s: dead letter not published yet: %s", self.name, exc)
                self._pause(pause)
                pause = min(self._policy.max_pause, pause * 2)


def _reads_default_branch(event: GitEventReceived) -> bool:
    change = event.change
    return (
        isinstance(change, PushReceived)
        and not change.deleted
        and change.branch == event.repository.default_branch
    )


def coalesce(records: Sequence[LogRecord]) -> list[LogRecord]:
    """One repository's records in order, without pushes that a later push in the same
    list makes redundant. A record that cannot be decoded is kept (it will be
    dead-lettered with the decoding error)."""
    kept: list[LogRecord] = []
    pending_push: LogRecord | None = None
    for record in records:
        try:
            event = GitEventReceived.model_validate_json(record.value) if record.value else None
        except ValueError:
            event = None
        if event is not None and _reads_default_branch(event):
            pending_push = record  # a later push replaces this one
            continue
        if pending_push is not None:
            kept.append(pending_push)
            pending_push = None
        kept.append(record)
    if pending_push is not None:
        kept.append(pending_push)
    return kept


class DescriptorBatches:
    """Runs the descriptor processor over a batch of `cairn.git.events` records."""

    def __init__(
        self,
        descriptor: DescriptorProcessor,
        event_log: EventLog,
        store: CatalogStore,
        workers: int,
        stopping: threading.Event,
    ) -> None:
        self._descriptor = descriptor
        self._runner = BatchRunner(
            "descriptor", self._handle, event_log, answers(store.count_entities), stopping
        )
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="cairn-git")
        self.handled = 0
        self.coalesced = 0

    def _handle(self, records: Sequence[LogRecord]) -> None:
        for record in records:
            if record.value is None:
                continue
            outcome = self._descriptor.handle(GitEventReceived.model_validate_json(record.value))
            stages = " ".join(f"{k}={v * 1000:.1f}ms" for k, v in outcome.timings.items())
            log.info(
                "git event %s[%d]@%d for %s: %s %s",
                record.topic,
                record.partition,
                record.offset,
                record.key,
                outcome.action,
                stages,
            )

    def _handle_repository(self, records: Sequence[LogRecord]) -> None:
        kept = coalesce(records)
        self.coalesced += len(records) - len(kept)
        for record in kept:
            self._runner([record])
        self.handled += len(kept)

    def __call__(self, records: Sequence[LogRecord]) -> None:
        """Blocks until every record was handled or dead-lettered (`Stopped` if cut short)."""
        by_repository: dict[str, list[LogRecord]] = {}
        for record in records:
            by_repository.setdefault(record.key, []).append(record)
        futures = [
            self._pool.submit(self._handle_repository, group) for group in by_repository.values()
        ]
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def store_projection(
    store: CatalogStore, event_log: EventLog, stopping: threading.Event
) -> BatchRunner:
    def handle(records: Sequence[LogRecord]) -> None:
        project_to_store(store, records)

    return BatchRunner(
        "store-projection", handle, event_log, answers(store.count_entities), stopping
    )


def index_projection(
    index: SearchIndex, event_log: EventLog, stopping: threading.Event
) -> BatchRunner:
    def handle(records: Sequence[LogRecord]) -> None:
        project_to_index(index, records)

    return BatchRunner("index-projection", handle, event_log, answers(index.count), stopping)


def deployments(
    processor: ci.DeploymentProcessor,
    event_log: EventLog,
    store: CatalogStore,
    stopping: threading.Event,
) -> BatchRunner:
    """The deployment processor over `ci.TOPICS`; its records live in the catalog database,
    so that database answering tells an outage from a bad record."""
    return BatchRunner(
        "deployments",
        deployment_handler(event_log, processor),
        event_log,
        answers(store.count_entities),
        stopping,
    )


def deployment_index(
    index: SearchIndex,
    processor: ci.DeploymentProcessor,
    event_log: EventLog,
    store: CatalogStore,
    stopping: threading.Event,
) -> BatchRunner | None:
    """The index projection of `cairn.deployments`; None when the index keeps no deployments.
    It reads the environments from the catalog database and writes them to the index, so
    both answering tells an outage from a bad record."""
    project = deployment_index_handler(index, processor)
    if project is None:
        return None
    index_answers, store_answers = answers(index.count), answers(store.count_entities)
    return BatchRunner(
        "deployment-index",
        project,
        event_log,
        lambda: index_answers() and store_answers(),
        stopping,
    )
