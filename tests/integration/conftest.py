"""Real adapters for the contract suites: every port's suite runs against each adapter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.bus.sqlite_log import SqliteEventLog
from services.index.fts5 import Fts5SearchIndex
from services.store.sql_store import SqlCatalogStore


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["sqlite"])
def event_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteEventLog]:
    log = SqliteEventLog(tmp_path / "log.db")
    yield log
    log.close()


@pytest.fixture(params=["sqlite"])
def catalog_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCatalogStore]:
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    yield store
    store.close()


@pytest.fixture(params=["fts5"])
def search_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fts5SearchIndex]:
    index = Fts5SearchIndex(tmp_path / "index.db")
    index.ensure_ready()
    yield index
    index.close()
