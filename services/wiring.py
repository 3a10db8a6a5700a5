"""Builds adapters and roles from settings: the one place that chooses implementations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.requests import Request
from fastapi.responses import JSONResponse

from processors.descriptor import DescriptorProcessor
from services.bus.kafka_log import KafkaEventLog
from services.bus.port import EventLog
from services.bus.sqlite_log import SqliteEventLog
from services.git.reader import GitReader
from services.index.fts5 import Fts5SearchIndex
from services.index.port import IndexUnavailable, RebuildableIndex, SearchIndex
from services.index.reindex import fill_if_empty
from services.model.descriptor import DescriptorLimits
from services.settings import Settings
from services.store.deliveries import SqlDeliveryLedger
from services.store.port import CatalogStore
from services.store.sql_store import PoolOptions, SqlCatalogStore

if TYPE_CHECKING:
    from processors.deployments import DeploymentProcessor
    from search_api.catalog_api import CatalogApiContext
    from search_api.queries import CatalogQueries
    from services.store.deployments_store import SqlDeploymentStore

log = logging.getLogger("cairn.wiring")


@dataclass
class Adapters:
    log: EventLog
    store: CatalogStore
    index: SearchIndex

    def close(self) -> None:
        self.log.close()
        self.store.close()
        self.index.close()


def catalog_database_url(settings: Settings) -> str:
    """The catalog database: PostgreSQL when configured, else SQLite in the data dir."""
    if settings.adapters.database_url is not None:
        from services.store.schema import database_url  # postgres:// is accepted too

        return database_url(settings.adapters.database_url.get_secret_value())
    settings.adapters.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.adapters.data_dir.resolve() / 'catalog.db'}"


def build_delivery_ledger(settings: Settings) -> SqlDeliveryLedger:
    """Delivery ids the Kafka log has published, in the catalog database."""
    ledger = SqlDeliveryLedger(catalog_database_url(settings))
    ledger.create_schema()
    return ledger


def build_log(settings: Settings) -> EventLog:
    """Kafka when CAIRN_KAFKA_BOOTSTRAP is set (connecting on first use), else SQLite."""
    if settings.adapters.kafka_bootstrap:
        return KafkaEventLog(
            settings.adapters.kafka_bootstrap,
            build_delivery_ledger(settings),
            namespace=settings.kafka.kafka_namespace,
            publish_timeout=settings.kafka.kafka_publish_timeout_seconds,
            session_timeout=settings.kafka.kafka_session_timeout_seconds,
        )
    data_dir = settings.adapters.data_dir
    return SqliteEventLog(data_dir / "log.db")


def build_store(settings: Settings) -> CatalogStore:
    """PostgreSQL when CAIRN_DATABASE_URL is set (migrated on start), else SQLite."""
    adapters = settings.adapters
    database_url = adapters.database_url.get_secret_value() if adapters.database_url else ""
    if database_url.strip():
        url = database_url
    else:
        adapters.data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{adapters.data_dir.resolve() / 'catalog.db'}"
    store = SqlCatalogStore(
        url,
        PoolOptions(
            size=adapters.database_pool_size,
            max_overflow=adapters.database_max_overflow,
            timeout_seconds=adapters.database_pool_timeout_seconds,
            connect_timeout_seconds=adapters.database_connect_timeout_seconds,
        ),
    )
    store.create_schema()
    return store


def build_index(settings: Settings) -> RebuildableIndex:
    """OpenSearch when CAIRN_OPENSEARCH_URL is set (every role), else FTS5 in the data dir."""
    if settings.adapters.opensearch_url:
        from services.index.opensearch_index import OpenSearchIndex

        search = OpenSearchIndex(
            settings.adapters.opensearch_url,
            settings.adapters.opensearch_index,
            refresh_interval=settings.adapters.opensearch_refresh_interval,
        )
        try:
            search.ensure_ready()
        except IndexUnavailable as exc:  # not up yet: every call tries again first
            log.warning("%s; search answers 503 until it is reachable", exc)
        return search
    index = Fts5SearchIndex(settings.adapters.data_dir / "index.db")
    index.ensure_ready()
    return index


def index_keeps_deployments(settings: Settings) -> bool:
    """Whether the index `build_index` chooses keeps deployments (known without connecting)."""
    from services.index.port import DeploymentIndex

    if settings.adapters.opensearch_url:
        from services.index.opensearch_index import OpenSearchIndex

        return issubclass(OpenSearchIndex, DeploymentIndex)
    return issubclass(Fts5SearchIndex, DeploymentIndex)


def fill_index_if_empty(adapters: Adapters, settings: Settings) -> None:
    """An empty index (a new cluster, an index of an older layout) is filled from the store,
    with the entities' environments from the deployments store."""
    try:
        if adapters.index.count() > 0 or adapters.store.count_entities() == 0:
            return
        deployments = build_deployment_store(settings)
        try:
            fill_if_empty(adapters.store, adapters.index, deployments=deployments)
        finally:
            deployments.close()
    except IndexUnavailable as exc:
        log.warning("could not check the search index against the store: %s", exc)


def build_adapters(settings: Settings) -> Adapters:
    adapters = Adapters(
        log=build_log(settings), store=build_store(settings), index=build_index(settings)
    )
    fill_index_if_empty(adapters, settings)
    return adapters


def build_git_reader(settings: Settings) -> GitReader:
    return GitReader(settings.adapters.data_dir / "mirrors", settings.git.git_timeout_seconds)


def build_descriptor_processor(settings: Settings, adapters: Adapters) -> DescriptorProcessor:
    return DescriptorProcessor(
        build_git_reader(settings),
        adapters.store,
        adapters.log.publish_batch,
        settings.git.catalog_files,
        DescriptorLimits(max_file_bytes=settings.git.max_descriptor_bytes),
    )


def create_http_app(
    title: str,
    include: list[Callable[[FastAPI], None]],
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
    ready: Callable[[], bool] | None = None,
    on_stop_async: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """A FastAPI app with health probes, 400 for malformed parameters, and a lifespan
    (`on_stop_async` runs on the server's event loop before `on_stop`)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_start is not None:
            on_start()
        try:
            yield
        finally:
            if on_stop_async is not None:
                await on_stop_async()
            if on_stop is not None:
                on_stop()

    app = FastAPI(title=title, lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    def _malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(
            str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")
        )
        return JSONResponse(
            status_code=400,
            content={
                "error": f"Parameter '{where}': {first.get('msg', 'is not valid')}.",
                "parameter": where,
            },
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        try:
            ok = ready() if ready is not None else True
        except Exception as exc:  # a probe reports, it never raises
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "error": str(exc)}
            )
        if not ok:
            return JSONResponse(status_code=503, content={"status": "unavailable"})
        return JSONResponse(content={"status": "ready"})

    for add in include:
        add(app)
    return app


def build_catalog_api(
    settings: Settings, adapters: Adapters, queries: CatalogQueries
) -> CatalogApiContext:
    """The Backstage-compatible catalog API: its tokens, its log access, its own git mirrors."""
    from search_api.backstage_auth import TokenAuth
    from search_api.catalog_api import CatalogApiContext

    event_log = adapters.log

    def publish(topic: str, key: str, value: bytes) -> object:
        return event_log.publish(topic, key, value)

    return CatalogApiContext(
        queries=queries,
        publish=publish,
        git=GitReader(settings.adapters.data_dir / "api-mirrors", settings.git.git_timeout_seconds),
        catalog_files=settings.git.catalog_files,
        limits=DescriptorLimits(max_file_bytes=settings.git.max_descriptor_bytes),
        git_timeout=settings.git.git_timeout_seconds,
        auth=TokenAuth(settings.api.tokens()),
    )


# --- CI/CD: receivers, the deployment processor, the deployments API ------------------------


def build_deployment_store(settings: Settings) -> SqlDeploymentStore:
    """Deployments, pipeline runs and their links, in the catalog database."""
    from services.store.deployments_store import SqlDeploymentStore

    store = SqlDeploymentStore(catalog_database_url(settings))
    store.create_schema()
    return store


@dataclass
class CiCd:
    """The CI/CD parts of one process: its store (not for ingest alone), and the processor
    when it runs one."""

    store: SqlDeploymentStore | None
    processor: DeploymentProcessor | None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def add_ci_cd(
    settings: Settings,
    roles: set[str],
    event_log: EventLog,
    queries: CatalogQueries,
    include: list[Callable[[FastAPI], None]],
) -> CiCd:
    """Adds, per role, `POST /events/cdevents` and `POST /api/deployments` (ingest), `GET
    /api/deployments` and `/api/pipelines` and the entities' environments (api), and builds
    the deployment processor (processors) for the runner."""
    from ingest.cdevents import create_cdevents_router
    from ingest.deployments_api import create_deployments_router
    from processors.deployments import DeploymentProcessor
    from search_api.deployments_api import create_deployments_api_router, entity_decorator

    store = build_deployment_store(settings) if roles & {"api", "processors"} else None
    webhooks = settings.webhooks
    if "ingest" in roles:
        limit, insecure = webhooks.max_payload_bytes, webhooks.insecure_webhooks
        receivers = [
            create_cdevents_router(webhooks.cdevents_tokens(), event_log, limit, insecure=insecure),
            create_deployments_router(
                webhooks.deployments_tokens(), event_log, limit, insecure=insecure
            ),
        ]

        def add_receivers(app: FastAPI) -> None:
            for router in receivers:
                app.include_router(router)

        include.append(add_receivers)
    if "api" in roles and store is not None:
        api = create_deployments_api_router(store)
        include.append(lambda app: app.include_router(api))
        queries.entity_decorators.append(entity_decorator(store))
    processor = DeploymentProcessor(store) if "processors" in roles and store else None
    return CiCd(store=store, processor=processor)
