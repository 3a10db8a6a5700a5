"""Builds adapters and roles from settings: the one place that chooses implementations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.requests import Request
from fastapi.responses import JSONResponse

from processors.descriptor import DescriptorProcessor
from services.bus.port import EventLog
from services.bus.sqlite_log import SqliteEventLog
from services.git.reader import GitReader
from services.index.fts5 import Fts5SearchIndex
from services.index.port import SearchIndex
from services.model.descriptor import DescriptorLimits
from services.settings import Settings
from services.store.port import CatalogStore
from services.store.sql_store import SqlCatalogStore


@dataclass
class Adapters:
    log: EventLog
    store: CatalogStore
    index: SearchIndex

    def close(self) -> None:
        self.log.close()
        self.store.close()
        self.index.close()


def build_log(settings: Settings) -> EventLog:
    data_dir = settings.adapters.data_dir
    return SqliteEventLog(data_dir / "log.db")


def build_store(settings: Settings) -> CatalogStore:
    if settings.adapters.database_url is not None:
        url = settings.adapters.database_url.get_secret_value()
    else:
        settings.adapters.data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{settings.adapters.data_dir.resolve() / 'catalog.db'}"
    store = SqlCatalogStore(url)
    store.create_schema()
    return store


def build_index(settings: Settings) -> SearchIndex:
    index = Fts5SearchIndex(settings.adapters.data_dir / "index.db")
    index.ensure_ready()
    return index


def build_adapters(settings: Settings) -> Adapters:
    return Adapters(
        log=build_log(settings), store=build_store(settings), index=build_index(settings)
    )


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
) -> FastAPI:
    """A FastAPI app with health probes, 400 for malformed parameters, and a lifespan."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_start is not None:
            on_start()
        try:
            yield
        finally:
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
