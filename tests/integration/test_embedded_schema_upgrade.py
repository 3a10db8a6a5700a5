"""A data dir made by an older Cairn keeps working: the embedded (SQLite) store adds the
columns and indexes tables.py gained since, keeping its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.store.deployments_store import SqlDeploymentStore
from services.store.sql_store import SqlCatalogStore


def test_an_older_catalog_file_gains_new_columns_and_indexes_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.db"
    store = SqlCatalogStore(f"sqlite:///{path}")
    store.create_schema()
    store.close()
    with sqlite3.connect(path) as db:  # as the file was before `provider` and the facets index
        db.execute("DROP INDEX entity_search_facets")
        db.execute("ALTER TABLE repositories DROP COLUMN provider")
        db.execute(
            "INSERT INTO repositories (key, clone_url, html_url, default_branch, status) "
            "VALUES ('github.com/acme/old', 'https://github.com/acme/old.git', "
            "'https://github.com/acme/old', 'main', 'active')"
        )

    upgraded = SqlCatalogStore(f"sqlite:///{path}")
    upgraded.create_schema()
    [state] = upgraded.list_repositories()
    upgraded.close()

    assert (state.key, state.provider) == ("github.com/acme/old", "github")
    with sqlite3.connect(path) as db:
        indexes = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
    assert "entity_search_facets" in indexes


def test_the_deployments_store_upgrades_its_own_tables_in_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    SqlCatalogStore(url).create_schema()
    store = SqlDeploymentStore(url)
    store.create_schema()
    store.create_schema()  # idempotent
    store.close()
