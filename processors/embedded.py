"""The embedded runner: every processor as a thread in one process, over the SQLite log.

Each loop polls its consumer group, hands the batch to the processor, and commits only
after the processor returned (at-least-once). A batch that fails is retried record by
record; a record that still fails goes to the dead-letter topic with the reason, so a
poison message never stops a processor.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from processors import deployments as ci
from processors.descriptor import DescriptorProcessor
from processors.projections import (
    Backoff,
    ProjectionStopped,
    project_to_index_with_retry,
    project_to_store,
)
from services.bus.port import EventLog, LogRecord, LogUnavailable, OutgoingRecord
from services.bus.sqlite_log import SqliteEventLog
from services.index.port import DeploymentIndex, IndexUnavailable, SearchIndex
from services.model.events import DeadLettered, GitEventReceived
from services.model.resync import repository_from_key, resync_event
from services.model.topics import DEAD_LETTERS, DEPLOYMENTS, ENTITY_CHANGES, GIT_EVENTS
from services.store.port import CatalogStore, StoreUnavailable

log = logging.getLogger("cairn.processors")

BatchHandler = Callable[[Sequence[LogRecord]], None]
LOG_CLEANUP_INTERVAL_SECONDS = 600.0


@dataclass(frozen=True)
class LoopSpec:
    name: str
    group: str
    topics: tuple[str, ...]
    handle: BatchHandler
    batch_size: int


def dead_letter(
    event_log: EventLog, processor: str, record: LogRecord, error: BaseException
) -> None:
    value = record.value.decode(errors="replace") if record.value is not None else None
    letter = DeadLettered(
        source_topic=record.topic,
        key=record.key,
        value=value,
        error=f"{type(error).__name__}: {error}",
        processor=processor,
    )
    event_log.publish(DEAD_LETTERS.name, record.key, letter.model_dump_json().encode())


def void(_result: object) -> None:
    """Adapts a handler that returns a count to the batch-handler signature."""


# Failures that say a dependency is down rather than that a record is bad.
OUTAGES = (StoreUnavailable, LogUnavailable, IndexUnavailable)


class ConsumerLoop(threading.Thread):
    def __init__(self, event_log: EventLog, spec: LoopSpec) -> None:
        super().__init__(name=f"cairn-{spec.name}", daemon=True)
        self._log = event_log
        self._spec = spec
        self._stopping = threading.Event()
        self.processed = 0
        self.last_error: str | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                self._consume()
                return
            except Exception as exc:
                # The log client failed in a way it does not report as an outage (a client
                # bug, a state it cannot leave): a fresh group member re-reads from the last
                # commit, so the loop outlives it instead of leaving its records unread.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "%s: the log consumer failed; reopening in %.1f s", self._spec.name, delay
                )
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, 10.0)

    def _consume(self) -> None:
        consumer = self._log.consumer(self._spec.group, self._spec.topics)
        try:
            while not self._stopping.is_set():
                records = consumer.poll(self._spec.batch_size, timeout=0.5)
                if not records:
                    continue
                try:
                    self._process(records)
                except ProjectionStopped:
                    break  # stopping mid-retry: the batch stays uncommitted for next time
                consumer.commit(records)
                self.processed += len(records)
        finally:
            try:
                consumer.close()
            except Exception:
                log.warning("%s: closing the log consumer failed", self._spec.name, exc_info=True)

    def _process(self, records: Sequence[LogRecord]) -> None:
        try:
            self._handle_waiting_out_outages(records)
            return
        except ProjectionStopped:
            raise
        except Exception:
            if len(records) == 1:
                self._give_up(records[0])
                return
            log.warning(
                "%s: batch of %d failed; retrying one by one", self._spec.name, len(records)
            )
        for record in records:
            try:
                self._spec.handle([record])
            except ProjectionStopped:
                raise
            except Exception:
                self._give_up(record)

    def _handle_waiting_out_outages(self, records: Sequence[LogRecord]) -> None:
        """An unreachable store, log or index is nobody's poison: wait and retry the batch."""
        delay = 0.2
        while True:
            try:
                self._spec.handle(records)
                return
            except OUTAGES as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: %s; retrying in %.1f s", self._spec.name, exc, delay)
                if self._stopping.wait(delay):
                    raise ProjectionStopped from exc
                delay = min(delay * 2, 10.0)

    def _give_up(self, record: LogRecord) -> None:
        # One retry after a pause covers a passing fault (a locked file, a busy remote).
        time.sleep(0.2)
        try:
            self._spec.handle([record])
            return
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error(
                "%s: record %s@%d dead-lettered: %s\n%s",
                self._spec.name,
                record.topic,
                record.offset,
                exc,
                traceback.format_exc(),
            )
            dead_letter(self._log, self._spec.name, record, exc)


def request_resync(
    event_log: EventLog, store: CatalogStore, reason: str, only: str | None = None
) -> int:
    """Publish a resync request for every active repository (or the one named)."""
    records = [
        OutgoingRecord(
            GIT_EVENTS.name,
            state.key,
            resync_event(
                repository_from_key(
                    state.key, state.clone_url, state.html_url, state.default_branch, state.provider
                ),
                reason,
            )
            .model_dump_json()
            .encode(),
        )
        for state in store.list_repositories()
        if state.status == "active" and (only is None or state.key == only.lower())
    ]
    event_log.publish_batch(records)
    return len(records)


class Periodic(threading.Thread):
    """Runs `action` every `interval` seconds until stopped; a failure waits for the next."""

    def __init__(self, name: str, interval: float, action: Callable[[], None]) -> None:
        super().__init__(name=f"cairn-{name}", daemon=True)
        self._interval, self._action = interval, action
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._action()
            except Exception:
                log.exception("%s failed; trying again next interval", self.name)


def periodic_resync(event_log: EventLog, store: CatalogStore, interval: float) -> Periodic:
    def resync() -> None:
        count = request_resync(event_log, store, "periodic resync")
        log.info("periodic resync requested for %d repositories", count)

    return Periodic("resync", interval, resync)


def log_cleanup(event_log: SqliteEventLog, interval: float) -> Periodic:
    """Retention and compaction of the embedded log (Kafka does its own)."""

    def clean_up() -> None:
        removed = event_log.clean_up()
        if removed:
            log.info(
                "event log cleaned up: %s",
                ", ".join(f"{count} from {name}" for name, count in sorted(removed.items())),
            )

    return Periodic("log-cleanup", interval, clean_up)


class EmbeddedRunner:
    """Runs the descriptor processor and both projections as threads (and, when given, the
    deployment processor and its index projection: `deployment_loops`)."""

    def __init__(
        self,
        event_log: EventLog,
        store: CatalogStore,
        index: SearchIndex,
        descriptor: DescriptorProcessor,
        resync_interval: float = 0.0,
        descriptor_workers: int = 4,
        index_backoff: Backoff | None = None,
        deployments: ci.DeploymentProcessor | None = None,
    ) -> None:
        # Repositories are read in parallel (git is mostly waiting on processes and disk);
        # records of one repository stay in order on one thread.
        self._pool = ThreadPoolExecutor(descriptor_workers, thread_name_prefix="cairn-git")

        def handle_repository(records: Sequence[LogRecord]) -> None:
            for record in records:
                if record.value is None:
                    continue
                outcome = descriptor.handle(GitEventReceived.model_validate_json(record.value))
                stages = " ".join(f"{k}={v * 1000:.1f}ms" for k, v in outcome.timings.items())
                log.info(
                    "git event @%d for %s: %s %s", record.offset, record.key, outcome.action, stages
                )

        def handle_git(records: Sequence[LogRecord]) -> None:
            by_repository: dict[str, list[LogRecord]] = {}
            for record in records:
                by_repository.setdefault(record.key, []).append(record)
            futures = [
                self._pool.submit(handle_repository, group) for group in by_repository.values()
            ]
            failures = [f.exception() for f in futures]
            for failure in failures:
                if failure is not None:
                    raise failure

        self._stopping = threading.Event()

        def handle_index(records: Sequence[LogRecord]) -> None:
            # An unavailable index is waited out (backoff, nothing committed, nothing
            # dropped); a document the index rejects goes to the dead-letter topic.
            rejected = project_to_index_with_retry(
                index,
                records,
                backoff=index_backoff,
                stopping=self._stopping.is_set,
                sleep=self._stopping.wait,
            )
            for refused in rejected:
                log.error(
                    "index-projection: %s@%d rejected by the index: %s",
                    refused.record.topic,
                    refused.record.offset,
                    refused.error,
                )
                dead_letter(event_log, "index-projection", refused.record, refused.error)

        specs = [
            LoopSpec("descriptor", "cairn-descriptor", (GIT_EVENTS.name,), handle_git, 16),
            LoopSpec(
                "store-projection",
                "cairn-store-projection",
                (ENTITY_CHANGES.name,),
                lambda records: void(project_to_store(store, records)),
                500,
            ),
            LoopSpec(
                "index-projection",
                "cairn-index-projection",
                (ENTITY_CHANGES.name,),
                handle_index,
                500,
            ),
        ]
        if deployments is not None:
            specs += deployment_loops(event_log, index, deployments)
        self.loops = [ConsumerLoop(event_log, spec) for spec in specs]
        self._periodic: list[Periodic] = []
        if resync_interval > 0:
            self._periodic.append(periodic_resync(event_log, store, resync_interval))
        if isinstance(event_log, SqliteEventLog):
            self._periodic.append(log_cleanup(event_log, LOG_CLEANUP_INTERVAL_SECONDS))

    def start(self) -> None:
        for loop in self.loops:
            loop.start()
        for periodic in self._periodic:
            periodic.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for periodic in self._periodic:
            periodic.stop()
        for loop in self.loops:
            loop.stop()
        for loop in self.loops:
            loop.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def alive(self) -> bool:
        return all(loop.is_alive() for loop in self.loops)


def deployment_handler(event_log: EventLog, deployments: ci.DeploymentProcessor) -> BatchHandler:
    """The deployment processor over records of `ci.TOPICS`, in order, publishing the
    environment updates it returns to `cairn.deployments` before the batch counts as done.
    Both runners drive this one handler (the embedded loop, the faust agent)."""

    def handle(records: Sequence[LogRecord]) -> None:
        outgoing = deployments.handle_records(records)
        event_log.publish_batch(outgoing)
        topics: dict[str, int] = {}
        for record in records:
            topics[record.topic] = topics.get(record.topic, 0) + 1
        log.info(
            "deployments: %s -> %d environment update(s)",
            ", ".join(f"{n} from {t}" for t, n in sorted(topics.items())),
            len(outgoing),
        )

    return handle


def deployment_index_handler(
    index: SearchIndex, deployments: ci.DeploymentProcessor
) -> BatchHandler | None:
    """The index projection of `cairn.deployments`, or None (with a warning) when the
    search index keeps no deployments."""
    if isinstance(index, DeploymentIndex):
        deployment_index = index
        return lambda records: ci.project_deployments_to_index(
            deployment_index, records, deployments.environment_states
        )
    log.warning(
        "The search index (%s) keeps no deployments: search cannot filter by them.",
        type(index).__name__,
    )
    return None


def deployment_loops(
    event_log: EventLog, index: SearchIndex, deployments: ci.DeploymentProcessor
) -> list[LoopSpec]:
    """The deployment processor over `cairn.ci.events` (with the git events' commits and the
    entity changes it matches by), and the index projection of `cairn.deployments`."""
    specs = [
        LoopSpec(
            "deployments", ci.GROUP, ci.TOPICS, deployment_handler(event_log, deployments), 200
        )
    ]
    project = deployment_index_handler(index, deployments)
    if project is not None:
        specs.append(
            LoopSpec("deployment-index", ci.INDEX_GROUP, (DEPLOYMENTS.name,), project, 500)
        )
    return specs
