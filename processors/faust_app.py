"""The processors as faust-streaming apps: the distributed driver of `cairn processors`.

One faust app per processor runs in one worker process, so each is its own Kafka consumer
group (named like the embedded runner's loops, so `cairn up` on Kafka and `cairn processors`
can take turns on one installation) that scales and replays on its own:

| app / consumer group | topic | does |
| --- | --- | --- |
| `cairn-descriptor` | `cairn.git.events` | DescriptorProcessor.handle, per repository in order |
| `cairn-store-projection` | `cairn.entity.changes` | store projection, in batches |
| `cairn-index-projection` | `cairn.entity.changes` | index projection, in batches |
| `cairn-deployments` | `cairn.ci.events`, `.git.events`, `.entity.changes` | deployments |
| `cairn-deployment-index` | `cairn.deployments` | deployments into the index |

The deployment processor (DeploymentProcessor.handle_records) publishes each entity's
environments to `cairn.deployments`; the deployment-index app runs only when the search
index keeps deployments.

Failures go to `cairn.dead-letters` (processors/faust_agents.py). Several `cairn processors`
processes share the partitions of each group and rebalance when one joins or dies.

The agents are thin: they gather a batch with `noack_take`, run the blocking handler in a
worker thread (so heartbeats and rebalances are served meanwhile) and acknowledge the
batch's events only after the handler returned, so faust commits only processed offsets
(at least once). Versions are the records' own offsets, taken from each event's message.

Nothing connects when this module is imported or when the apps are built: the adapters
are opened by `ProcessorRuntime`, a service the worker starts first and stops last. The
topics are created by `cairn topics`; the apps declare them with the same partition count
and are not allowed to create or change any topic (`topic_allow_declare=False`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust
from mode import Service

from processors import deployments as ci
from processors.descriptor import DescriptorProcessor
from processors.embedded import request_resync
from processors.faust_agents import (
    DEPLOYMENT_INDEX_GROUP,
    DEPLOYMENTS_GROUP,
    DESCRIPTOR_GROUP,
    INDEX_PROJECTION_GROUP,
    STORE_PROJECTION_GROUP,
    DescriptorBatches,
    Stopped,
    deployment_index,
    deployments,
    index_projection,
    store_projection,
)
from services.bus.port import EventLog, LogRecord
from services.bus.topics_admin import missing_topics, physical_name
from services.collector import settle_collector
from services.index.port import SearchIndex
from services.model.topics import CI_EVENTS, DEPLOYMENTS, ENTITY_CHANGES, GIT_EVENTS
from services.settings import Settings
from services.store.deployments_store import DeploymentStore
from services.store.port import CatalogStore

log = logging.getLogger("cairn.processors")

DESCRIPTOR_BATCH = 64


@dataclass
class ProcessorResources:
    """The adapters the processors use, opened by the composition root."""

    event_log: EventLog
    store: CatalogStore
    index: SearchIndex
    descriptor: DescriptorProcessor
    deployment_store: DeploymentStore
    deployments: ci.DeploymentProcessor

    def close(self) -> None:
        self.event_log.close()
        self.deployment_store.close()
        self.store.close()
        self.index.close()


OpenResources = Callable[[], ProcessorResources]
BlockingHandler = Callable[[Sequence[LogRecord]], None]


class ProcessorRuntime(Service):
    """Opens the adapters when the worker starts, runs the blocking handlers in threads,
    and closes everything when the worker stops."""

    def __init__(self, settings: Settings, open_resources: OpenResources) -> None:
        super().__init__()
        self._settings = settings
        self._open = open_resources
        self.stopping = threading.Event()
        self.resources: ProcessorResources | None = None
        self.descriptor: DescriptorBatches | None = None
        self.store_projection: BlockingHandler | None = None
        self.index_projection: BlockingHandler | None = None
        self.deployments: BlockingHandler | None = None
        self.deployment_index: BlockingHandler | None = None
        # A thread per agent (each may wait out an outage) and one for the rest.
        self._threads = ThreadPoolExecutor(6, thread_name_prefix="cairn-agent")

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        resources = await loop.run_in_executor(self._threads, self._open)
        self.resources = resources
        self.descriptor = DescriptorBatches(
            resources.descriptor,
            resources.event_log,
            resources.store,
            self._settings.git.descriptor_workers,
            self.stopping,
        )
        self.store_projection = store_projection(
            resources.store, resources.event_log, self.stopping
        )
        self.index_projection = index_projection(
            resources.index, resources.event_log, self.stopping
        )
        self.deployments = deployments(
            resources.deployments, resources.event_log, resources.store, self.stopping
        )
        self.deployment_index = deployment_index(
            resources.index,
            resources.deployments,
            resources.event_log,
            resources.store,
            self.stopping,
        )

    async def on_stop(self) -> None:
        self.stopping.set()
        if self.descriptor is not None:
            self.descriptor.close()
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self.resources is not None:
            self.resources.close()

    @property
    def ready(self) -> bool:
        return self.resources is not None and not self.stopping.is_set()

    async def run(self, handler: Callable[..., object], *args: Any) -> None:
        """Run a blocking handler in a thread. Agents are cancelled only when the worker
        stops: the handler is then told to stop waiting for absent backends (it raises
        `Stopped`, leaving its batch unacknowledged) and is waited for, so it is never cut
        off between its writes and the acknowledgement."""
        future = asyncio.get_running_loop().run_in_executor(self._threads, handler, *args)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            self.stopping.set()
            await asyncio.wait([future])
            raise


def _to_record(event: Any, logical: dict[str, str]) -> LogRecord:
    message = event.message
    key = message.key
    headers = message.headers or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return LogRecord(
        topic=logical.get(message.topic, message.topic),
        partition=int(message.partition),
        offset=int(message.offset),
        key=key.decode() if isinstance(key, bytes) else str(key or ""),
        value=message.value,
        timestamp=float(message.timestamp or 0.0),
        headers={
            str(name): value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            for name, value in pairs
        },
    )


@dataclass
class ProcessorApps:
    runtime: ProcessorRuntime
    descriptor: faust.App
    store_projection: faust.App
    index_projection: faust.App
    deployments: faust.App
    deployment_index: faust.App | None  # None when the index keeps no deployments
    topics: list[str]  # the physical topic names the apps consume

    @property
    def apps(self) -> list[faust.App]:
        optional = [self.deployment_index] if self.deployment_index is not None else []
        return [
            self.descriptor,
            self.store_projection,
            self.index_projection,
            self.deployments,
            *optional,
        ]


def _app(settings: Settings, group: str, *, web: bool) -> faust.App:
    bootstrap = settings.adapters.kafka_bootstrap or ""
    session = settings.kafka.kafka_session_timeout_seconds
    datadir = settings.adapters.data_dir / "faust" / group
    datadir.mkdir(parents=True, exist_ok=True)  # faust makes only the last folder
    return faust.App(
        physical_name(settings.kafka.kafka_namespace, group),
        broker=[f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()],
        broker_client_id=f"cairn-{group}",
        store="memory://",
        # faust keeps a folder per app (by default `<app id>-data` in the working directory).
        datadir=str(datadir),
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=settings.adapters.topic_partitions,
        topic_replication_factor=settings.adapters.topic_replication,
        consumer_auto_offset_reset="earliest",
        # A broker that restarts may briefly report the topics missing; the group then gets
        # an empty assignment until metadata is refreshed, so refresh it often.
        consumer_metadata_max_age_ms=15_000,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(0.5, session / 4),
        broker_request_timeout=max(90.0, session + 10),
        broker_rebalance_timeout=max(60.0, session),
        broker_commit_interval=1.0,
        producer_acks=-1,
        web_enabled=web,
        web_bind=settings.server.host,
        web_host=settings.server.host,
        web_port=settings.server.port,
    )


def _topic(app: faust.App, settings: Settings, *names: str) -> Any:
    return app.topic(
        *(physical_name(settings.kafka.kafka_namespace, name) for name in names),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.adapters.topic_partitions,
        replicas=settings.adapters.topic_replication,
    )


def _batch_agent(
    app: faust.App,
    topic: Any,
    runtime: ProcessorRuntime,
    handler: Callable[[], BlockingHandler | None],
    logical: dict[str, str],
    batch_size: int,
    within: float,
) -> None:
    @app.agent(topic, name=f"{app.conf.id}-agent")
    async def agent(stream: Any) -> None:
        async for events in stream.noack_take(batch_size, within):
            records = [_to_record(event, logical) for event in events]
            handle = handler()
            if handle is None:  # the runtime is not open: the worker is stopping
                return
            try:
                await runtime.run(handle, records)
            except Stopped:
                return  # not acknowledged: the next owner of these partitions re-reads them
            for event in events:
                await stream.ack(event)


def build_processor_apps(
    settings: Settings, open_resources: OpenResources, *, index_keeps_deployments: bool
) -> ProcessorApps:
    """The apps and the runtime they share; nothing is opened or connected here. The
    deployment-index app is built only when the configured index keeps deployments (as the
    embedded runner runs its loop only then), so its group never commits records it skipped."""
    if not settings.adapters.kafka_bootstrap:
        raise ValueError("The faust processors need CAIRN_KAFKA_BOOTSTRAP.")
    namespace = settings.kafka.kafka_namespace
    consumed = (GIT_EVENTS, ENTITY_CHANGES, CI_EVENTS, DEPLOYMENTS)
    logical = {physical_name(namespace, t.name): t.name for t in consumed}
    runtime = ProcessorRuntime(settings, open_resources)
    within = settings.kafka.kafka_batch_seconds
    batch = settings.kafka.kafka_batch_size

    descriptor = _app(settings, DESCRIPTOR_GROUP, web=True)
    git_topic = _topic(descriptor, settings, GIT_EVENTS.name)
    _batch_agent(
        descriptor,
        git_topic,
        runtime,
        lambda: runtime.descriptor,
        logical,
        DESCRIPTOR_BATCH,
        within,
    )

    store = _app(settings, STORE_PROJECTION_GROUP, web=False)
    _batch_agent(
        store,
        _topic(store, settings, ENTITY_CHANGES.name),
        runtime,
        lambda: runtime.store_projection,
        logical,
        batch,
        within,
    )

    index = _app(settings, INDEX_PROJECTION_GROUP, web=False)
    _batch_agent(
        index,
        _topic(index, settings, ENTITY_CHANGES.name),
        runtime,
        lambda: runtime.index_projection,
        logical,
        batch,
        within,
    )

    deployer = _app(settings, DEPLOYMENTS_GROUP, web=False)
    _batch_agent(
        deployer,
        _topic(deployer, settings, *ci.TOPICS),
        runtime,
        lambda: runtime.deployments,
        logical,
        batch,
        within,
    )

    deployed: faust.App | None = None
    if index_keeps_deployments:
        deployed = _app(settings, DEPLOYMENT_INDEX_GROUP, web=False)
        _batch_agent(
            deployed,
            _topic(deployed, settings, DEPLOYMENTS.name),
            runtime,
            lambda: runtime.deployment_index,
            logical,
            batch,
            within,
        )

    apps = ProcessorApps(
        runtime=runtime,
        descriptor=descriptor,
        store_projection=store,
        index_projection=index,
        deployments=deployer,
        deployment_index=deployed,
        topics=[physical_name(namespace, t.name) for t in consumed],
    )

    @descriptor.page("/healthz")
    async def healthz(web: Any, _request: Any) -> Any:
        return web.json({"status": "ok"})

    @descriptor.page("/readyz")
    async def readyz(web: Any, _request: Any) -> Any:
        if runtime.ready and not any(app.crashed for app in apps.apps):
            return web.json({"status": "ready"})
        return web.json({"status": "unavailable"}, status=503)

    interval = settings.git.resync_interval_seconds
    if interval > 0:
        first_partition = (physical_name(namespace, GIT_EVENTS.name), 0)

        @descriptor.timer(interval)  # type: ignore[untyped-decorator]
        async def periodic_resync() -> None:
            # One worker asks: the one holding the first partition of the git events.
            held = {(tp.topic, tp.partition) for tp in descriptor.consumer.assignment()}
            resources = runtime.resources
            if first_partition not in held or resources is None:
                return
            await runtime.run(
                lambda: log.info(
                    "periodic resync requested for %d repositories",
                    request_resync(resources.event_log, resources.store, "periodic resync"),
                )
            )

    return apps


def run_worker(
    settings: Settings,
    open_resources: OpenResources,
    log_level: str,
    *,
    index_keeps_deployments: bool,
) -> int:
    """Run the faust worker until it is stopped (SIGTERM/SIGINT); returns the exit status."""
    apps = build_processor_apps(
        settings, open_resources, index_keeps_deployments=index_keeps_deployments
    )
    bootstrap = settings.adapters.kafka_bootstrap or ""
    absent = missing_topics(bootstrap, apps.topics)
    if absent:
        raise ValueError(
            f"Topic(s) {', '.join(absent)} do not exist on {bootstrap}; "
            "create them with `cairn topics` first."
        )
    log.info(
        "cairn processors: faust worker for %s on http://%s:%d",
        ", ".join(app.conf.id for app in apps.apps),
        settings.server.host,
        settings.server.port,
    )
    first, *others = apps.apps
    worker = faust.Worker(
        first,
        apps.runtime,
        *others,
        loglevel=log_level.upper(),
        quiet=True,
        redirect_stdouts=False,
    )
    settle_collector()
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
