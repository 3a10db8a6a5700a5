"""How fast the store projection writes entity changes, on SQLite and on PostgreSQL.

    CAIRN_TEST_DATABASE_URL=... .venv/bin/python -m tests.benchmarks.store_projection

Applies batches of entity changes (each entity with two relations and its search rows, as
the descriptor processor emits them) through `SqlCatalogStore.apply_entity_changes`, with
one writer and with two concurrent writers on disjoint refs (two processors' partitions),
into a fresh database, and prints entity changes per second. Without the variable only
SQLite is measured. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

from services.model.events import EntityChanged
from services.store.port import VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.benchmarks.common import progress


def _change(ref: str, version: int) -> VersionedChange:
    name = ref.rpartition("/")[2]
    owner = f"team-{version % 17}"
    entity = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "namespace": "default",
            "description": f"The {name} service, version {version}.",
            "tags": ["python", "payments"],
            "annotations": {"github.com/project-slug": f"acme/{name}"},
            "uid": str(uuid.uuid4()),
            "etag": uuid.uuid4().hex,
        },
        "spec": {"type": "service", "lifecycle": "production", "owner": owner, "system": "pay"},
    }
    return VersionedChange(
        ref,
        version,
        EntityChanged(
            ref=ref,
            location_id="loc",
            location_target=f"https://github.com/acme/{name}/blob/main/catalog-info.yaml",
            entity=entity,
            relations=[
                {"source_ref": ref, "type": "ownedBy", "target_ref": f"group:default/{owner}"},
                {"source_ref": ref, "type": "partOf", "target_ref": "system:default/pay"},
            ],
        ),
    )


def _run(store: SqlCatalogStore, writers: int, total: int, batch: int) -> float:
    per_writer = total // writers
    batches = [
        [
            [
                _change(f"component:default/w{w}-{i:06d}", 1)
                for i in range(start, min(start + batch, per_writer))
            ]
            for start in range(0, per_writer, batch)
        ]
        for w in range(writers)
    ]
    gate = threading.Barrier(writers + 1)

    def write(mine: list[list[VersionedChange]]) -> None:
        gate.wait()
        for changes in mine:
            store.apply_entity_changes(changes)

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return writers * per_writer / (time.perf_counter() - began)


def _measure(label: str, url: str, total: int, batch: int) -> None:
    for writers in (1, 2):
        store = SqlCatalogStore(url)
        store.create_schema()
        try:
            rate = _run(store, writers, total, batch)
        finally:
            store.close()
        print(
            f"{label}: {rate:,.0f} entity changes/s "
            f"({writers} writer{'s' if writers > 1 else ''}, batches of {batch}, {total} changes)"
        )
        url = _fresh(url)


_fresh_databases: list[str] = []
_fresh_folders: list[Path] = []


def _fresh(url: str) -> str:
    if url.startswith("sqlite"):
        _fresh_folders.append(Path(tempfile.mkdtemp(prefix="cairn-bench-store-")))
        return f"sqlite:///{_fresh_folders[-1] / 'catalog.db'}"
    from tests.support.postgres import with_database

    name = f"cairn_bench_{uuid.uuid4().hex[:10]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    _fresh_databases.append(name)
    return with_database(url, name)


def _admin(url: str, statement: str) -> None:
    import psycopg
    from sqlalchemy import make_url

    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        autocommit=True,
    ) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    progress(f"store projection: {args.changes} changes per run")
    try:
        _measure("sqlite", _fresh("sqlite://"), args.changes, args.batch)
    finally:
        for folder in _fresh_folders:
            shutil.rmtree(folder, ignore_errors=True)
    server = os.environ.get("CAIRN_TEST_DATABASE_URL")
    if not server:
        progress("CAIRN_TEST_DATABASE_URL is not set: PostgreSQL not measured")
        return
    try:
        _measure("postgres", _fresh(server), args.changes, args.batch)
    finally:
        from tests.support.postgres import drop_database

        for name in _fresh_databases:
            drop_database(server, name)


if __name__ == "__main__":
    main()
