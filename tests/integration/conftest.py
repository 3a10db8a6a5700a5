"""Real adapters for the contract suites: every port's suite runs against each adapter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.bus.port import EventLog
from services.bus.sqlite_log import SqliteEventLog
from services.index.fts5 import Fts5SearchIndex
from services.index.port import RebuildableIndex
from services.store.deliveries import SqlDeliveryLedger
from services.store.sql_store import SqlCatalogStore
from tests.support import kafka, opensearch, postgres


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["sqlite", "kafka"])
def event_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    if request.param == "kafka":
        # The Kafka log dedupes delivery ids through its ledger: an SQLite file here.
        ledger = SqlDeliveryLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
        ledger.create_schema()
        namespace = request.getfixturevalue("kafka_namespace")
        log: EventLog = kafka.TopicsOnFirstUse(kafka.bootstrap(), ledger, namespace=namespace)
    else:
        log = SqliteEventLog(tmp_path / "log.db")
    yield log
    log.close()


@pytest.fixture
def kafka_namespace() -> Iterator[str]:
    """A Kafka namespace (topic and group prefix) of the test's own, its topics deleted after."""
    namespace = kafka.fresh_namespace()
    yield namespace
    kafka.delete_topics(kafka.bootstrap(), namespace)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The stack's PostgreSQL (CAIRN_TEST_DATABASE_URL); the test fails when it is not set."""
    yield postgres.server_url()
    postgres.drop_templates()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCatalogStore]:
    if request.param == "postgres":
        request.getfixturevalue("postgres_server")
        # A database of its own per test, copied from a migrated template (~0.1 s).
        with postgres.fresh_database(migrated=True) as url:
            store = SqlCatalogStore(url)
            store.create_schema()
            yield store
            store.close()
        return
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    yield store
    store.close()


@pytest.fixture(params=["fts5", "opensearch"])
def search_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RebuildableIndex]:
    if request.param == "opensearch":
        # An alias of its own per test on the stack's cluster; writes searchable on return.
        with opensearch.fresh_index() as os_index:
            yield os_index
        return
    index = Fts5SearchIndex(tmp_path / "index.db")
    index.ensure_ready()
    yield index
    index.close()
