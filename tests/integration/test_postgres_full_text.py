"""On PostgreSQL, the catalog API's full-text filter finds names, titles and display names
through a trigram index on `entity_text` (migration 0004), which an older database gains
filled from its search rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from services.store import schema
from services.store.catalog_queries import SqlEntityQueries
from services.store.catalog_query import EntityPageRequest, FullTextFilter, OrderField
from services.store.port import VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.benchmarks.catalog_api import load
from tests.support import postgres
from tests.support.backstage_examples import example_changes

FIELDS = ("metadata.name", "metadata.title", "spec.profile.displayname")


@pytest.fixture
def empty_database(postgres_server: str) -> Iterator[str]:
    with postgres.fresh_database() as url:
        yield url


def _load_examples(url: str) -> None:
    store = SqlCatalogStore(url)
    try:
        store.apply_entity_changes(
            [VersionedChange(c.ref, i + 1, c) for i, c in enumerate(example_changes())]
        )
    finally:
        store.close()


def _text_rows(url: str, table: str) -> set[tuple[str, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            keys = ", ".join(f"'{key}'" for key in FIELDS)
            rows = connection.execute(
                sa.text(
                    f"SELECT ref_key, key, value FROM {table} "
                    f"WHERE key IN ({keys}) AND value IS NOT NULL"
                )
            )
            return {(r.ref_key, r.key, r.value) for r in rows}
    finally:
        engine.dispose()


def test_migration_0004_fills_entity_text_from_an_older_databases_search_rows(
    empty_database: str,
) -> None:
    url = schema.database_url(empty_database)
    store = SqlCatalogStore(url)
    store.create_schema()
    store.close()
    _load_examples(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # as the database was before migration 0004
        connection.execute(sa.text("DROP TABLE entity_text"))
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
    engine.dispose()

    assert schema.upgrade(url) == schema.head_revision()
    searched = _text_rows(url, "entity_search")
    assert searched and _text_rows(url, "entity_text") == searched
    store = SqlCatalogStore(url)
    try:
        page = store.query_entities(
            EntityPageRequest(full_text=FullTextFilter("team", FIELDS), limit=100)
        )
    finally:
        store.close()
    assert page.total == len(page.entities) > 0
    assert all(any("team" in v for v in _values(e.body)) for e in page.entities)


def test_full_text_counts_are_answered_by_the_trigram_index(empty_database: str) -> None:
    """On a catalog of a few thousand entities (vacuumed, as autovacuum soon does: that
    moves the index's pending entries into its tree), the
    store's count of `LIKE '%term%'` matches is planned on the trigram index (a rare term:
    at this size a common one is rightly read by scanning the few pages)."""
    store = SqlCatalogStore(empty_database)
    store.create_schema()
    load(store, 3000)
    store.close()
    engine = sa.create_engine(schema.database_url(empty_database))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE entity_text")
    sent: list[tuple[str, Any]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    request = EntityPageRequest(
        order=OrderField("metadata.name"),
        full_text=FullTextFilter("2999", ("metadata.name",)),  # the last entity's number
        limit=10,
    )
    page = SqlEntityQueries(engine).query_entities(request)
    assert page.total == 1 and page.entities[0].name.endswith("-2999")
    [(count, parameters)] = [(s, p) for s, p in sent if "count(" in s and "entity_text" in s]
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN {count}", parameters)
        lines = "\n".join(row[0] for row in plan)
    engine.dispose()
    assert "entity_text_trigrams" in lines, lines


def _values(body: dict) -> list[str]:
    profile = body.get("spec", {}).get("profile") or {}
    values = (body["metadata"]["name"], body["metadata"].get("title"), profile.get("displayName"))
    return [value.lower() for value in values if isinstance(value, str)]
