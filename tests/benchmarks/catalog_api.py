"""The Backstage-compatible catalog API under load: read latencies and streaming everything.

    .venv/bin/python -m tests.benchmarks.catalog_api [--entities 10000] [--requests 300]
        [--database-url postgresql+psycopg://...]

Loads N synthetic entities (components, APIs, systems, groups, users and resources with
tags, owners and relations; APIs and systems have titles, groups and users display names)
into a fresh store through the store projection (`apply_entity_changes` in batches of
1,000, as the projection writes them), starts `cairn api` on it as a subprocess, and
measures over HTTP, one request at a time on a keep-alive connection:

- `GET /entities/by-name/{kind}/{namespace}/{name}` for random entities;
- `GET /entities/by-query?filter=kind=component&limit=100`;
- `GET /entities/by-query?fullTextFilterTerm=<term>&fullTextFilterFields=metadata.name
  &orderField=metadata.name,asc&limit=100` with a random 4-character name fragment;
- the same over the fields Backstage's catalog table searches (`metadata.name`,
  `metadata.title`, `spec.profile.displayName`), as its search box sends them;
- `GET /entity-facets?facet=spec.type`;
- the time to stream every entity: `GET /entities` (one streamed array) and the client's
  `streamEntities` walk (`by-query` pages of 500 following `nextCursor`).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from services.model.catalog import location_id
from services.model.entity import Entity, finalize_entity
from services.model.events import EntityChanged, RelationRecord
from services.model.relations import derive_relations
from services.store.port import VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.benchmarks.common import progress, summary
from tests.support.server import CairnProcess, wait_until

WORDS = tuple(
    [
        "payment",
        "ledger",
        "search",
        "order",
        "cart",
        "stock",
        "price",
        "user",
        "account",
        "billing",
        "invoice",
        "report",
        "catalog",
        "shipping",
        "review",
        "rating",
        "media",
        "stream",
        "auth",
        "token",
        "queue",
        "notify",
        "mail",
    ]
)
# What Backstage's catalog table sends as `fullTextFilterFields` from its search box.
CATALOG_TABLE_FIELDS = "metadata.name,metadata.title,spec.profile.displayName"
TYPES = ("service", "website", "library", "tool", "data-pipeline")
LIFECYCLES = ("production", "experimental", "deprecated")
TAGS = ("java", "python", "go", "kotlin", "typescript", "rust", "data", "web", "grpc")


def _entity(index: int, rng: random.Random) -> dict[str, Any]:
    team = f"team-{index % 97}"
    system = f"system-{index % 211}"
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{index}"
    kind = rng.choices(
        ("Component", "API", "System", "Group", "User", "Resource"), (60, 15, 5, 5, 10, 5)
    )[0]
    metadata: dict[str, Any] = {
        "name": name,
        "description": f"The {name} {kind.lower()} of {team}",
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "annotations": {"github.com/project-slug": f"acme/{name}"},
    }
    spec: dict[str, Any]
    if kind == "Component":
        spec = {
            "type": rng.choice(TYPES),
            "lifecycle": rng.choice(LIFECYCLES),
            "owner": team,
            "system": system,
            "providesApis": [f"api-{(index + 1) % 5000}"],
        }
    elif kind == "API":
        spec = {
            "type": "openapi",
            "lifecycle": rng.choice(LIFECYCLES),
            "owner": team,
            "system": system,
            "definition": "openapi: 3.0.0",
        }
    elif kind == "System":
        spec = {"owner": team}
    elif kind == "Group":
        spec = {"type": "team", "children": []}
    elif kind == "User":
        spec = {"memberOf": [team]}
    else:
        spec = {"type": "database", "owner": team, "system": system}
    # Titles and display names as people write them ("Payment Ledger 12"): no random draw,
    # so the names stay those of the earlier runs.
    title = name.replace("-", " ").title()
    if kind in ("API", "System"):
        metadata["title"] = title
    elif kind in ("Group", "User"):
        spec["profile"] = {"displayName": title}
    return {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def load(store: SqlCatalogStore, count: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """Write `count` entities through the projection; returns their (kind, namespace, name)."""
    rng = random.Random(seed)
    names: list[tuple[str, str, str]] = []
    batch: list[VersionedChange] = []
    for index in range(count):
        url = f"https://github.com/acme/repo-{index // 50}/blob/main/catalog-info.yaml"
        entity = finalize_entity(
            Entity.model_validate(_entity(index, rng)), location_url=url, origin_location_url=url
        )
        body = entity.to_backstage()
        ref = str(entity.ref)
        change = EntityChanged(
            ref=ref,
            location_id=location_id(url),
            location_target=url,
            entity=body,
            relations=[
                RelationRecord(source_ref=e.source_ref, type=e.type, target_ref=e.target_ref)
                for e in derive_relations(entity)
            ],
        )
        batch.append(VersionedChange(ref, index + 1, change))
        names.append((entity.kind, "default", entity.metadata["name"]))
        if len(batch) == 1000:
            store.apply_entity_changes(batch)
            batch = []
    if batch:
        store.apply_entity_changes(batch)
    return names


def _time(client: httpx.Client, url: str, params: Any = None) -> float:
    started = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
    return elapsed


def measure(base: str, names: list[tuple[str, str, str]], requests: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    api = f"{base}/api/catalog"
    fragments = [n[2].split("-")[rng.randint(0, 1)][:4] for n in rng.sample(names, 50)]
    with httpx.Client(timeout=120) as client:
        for _ in range(20):  # warm-up: connections, caches, the database's pages
            _time(client, f"{api}/entities/by-query", {"filter": "kind=component", "limit": 100})
            kind, namespace, name = rng.choice(names)
            _time(client, f"{api}/entities/by-name/{kind}/{namespace}/{name}")
        cases: dict[str, list[float]] = {
            "by-name": [],
            "by-query?filter=kind=component&limit=100": [],
            "by-query fullTextFilterTerm (metadata.name, ordered, limit 100)": [],
            "by-query fullTextFilterTerm (catalog table's 3 fields, ordered by name)": [],
            "entity-facets?facet=spec.type": [],
        }
        for _ in range(requests):
            kind, namespace, name = rng.choice(names)
            cases["by-name"].append(
                _time(client, f"{api}/entities/by-name/{kind}/{namespace}/{name}")
            )
            cases["by-query?filter=kind=component&limit=100"].append(
                _time(
                    client, f"{api}/entities/by-query", {"filter": "kind=component", "limit": 100}
                )
            )
            cases["by-query fullTextFilterTerm (metadata.name, ordered, limit 100)"].append(
                _time(
                    client,
                    f"{api}/entities/by-query",
                    {
                        "fullTextFilterTerm": rng.choice(fragments),
                        "fullTextFilterFields": "metadata.name",
                        "orderField": "metadata.name,asc",
                        "limit": 100,
                    },
                )
            )
            cases["by-query fullTextFilterTerm (catalog table's 3 fields, ordered by name)"].append(
                _time(
                    client,
                    f"{api}/entities/by-query",
                    {
                        "fullTextFilterTerm": rng.choice(fragments),
                        "fullTextFilterFields": CATALOG_TABLE_FIELDS,
                        "orderField": "metadata.name,asc",
                        "limit": 100,
                    },
                )
            )
            cases["entity-facets?facet=spec.type"].append(
                _time(client, f"{api}/entity-facets", {"facet": "spec.type"})
            )
        for label, samples in cases.items():
            print(f"  {label:72s} {summary(samples)}")

        started = time.perf_counter()
        size = 0
        with client.stream("GET", f"{api}/entities") as response:
            for chunk in response.iter_bytes():
                size += len(chunk)
        whole = time.perf_counter() - started
        print(
            f"  stream all: GET /entities                                         "
            f"{whole:.2f} s ({size / 1e6:.1f} MB, {len(names) / whole:,.0f} entities/s)"
        )

        started = time.perf_counter()
        seen = 0
        params: dict[str, Any] = {"limit": 500}
        while True:
            page = client.get(f"{api}/entities/by-query", params=params).json()
            seen += len(page["items"])
            cursor = page["pageInfo"].get("nextCursor")
            if not cursor:
                break
            params = {"limit": 500, "cursor": cursor}
        walked = time.perf_counter() - started
        print(
            f"  stream all: by-query pages of 500 (client streamEntities)           "
            f"{walked:.2f} s ({seen} entities, {seen / walked:,.0f} entities/s)"
        )


def _vacuum(url: str) -> None:
    """Vacuum and analyze PostgreSQL after the bulk load, as autovacuum soon would: the
    planner's choices depend on the statistics, index-only scans on the visibility map.

    A vacuum that runs while another transaction is open (autovacuum's own ANALYZE, just
    after a bulk load) cannot mark the newest pages all-visible, and index-only scans then
    read the heap for them: the catalog would be measured in a state autovacuum soon ends.
    So it is repeated until the catalog's tables are all-visible (up to 15 tries, 2 s apart;
    the line it prints says how far it got)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    visible = 0.0
    with engine.connect() as connection:
        tables = [
            str(name)
            for name in connection.scalars(
                text(
                    "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname IN "
                    "('entities', 'entity_search', 'entity_text', 'relations')"
                )
            )
        ]
        listed = ", ".join(f"'{table}'" for table in tables)
        for _ in range(15):
            for table in tables:
                connection.execute(text(f"VACUUM ANALYZE {table}"))
            pages, all_visible = connection.execute(
                text(
                    "SELECT sum(relpages), sum(relallvisible) FROM pg_class "
                    f"WHERE relname IN ({listed})"
                )
            ).one()
            visible = float(all_visible) / max(1.0, float(pages))
            if visible >= 0.99:
                break
            time.sleep(2)
    engine.dispose()
    progress(f"vacuumed: {visible:.0%} of the catalog's pages are all-visible")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: the embedded SQLite)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cairn-bench-api-"))
    data = root / "data"
    data.mkdir()
    url = args.database_url or f"sqlite:///{data / 'catalog.db'}"
    store = SqlCatalogStore(url)
    if args.database_url:
        from services.store.schema import upgrade

        upgrade(url)
    store.create_schema()
    progress(f"loading {args.entities} entities through the store projection ...")
    started = time.perf_counter()
    names = load(store, args.entities)
    loaded = time.perf_counter() - started
    store.close()
    if args.database_url:
        _vacuum(args.database_url)
    print(
        f"catalog API over {args.entities:,} entities "
        f"({'PostgreSQL' if args.database_url else 'embedded SQLite'}), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rate = args.entities / loaded
    print(f"  load through apply_entity_changes: {loaded:.1f} s ({rate:,.0f} entities/s)")

    extra_env = {"CAIRN_DATABASE_URL": args.database_url} if args.database_url else {}
    process = CairnProcess(
        data_dir=data,
        secret="unused",
        git_config=root / "gitconfig",
        command="api",
        extra_env=extra_env,
    )
    (root / "gitconfig").write_text("")
    try:
        starting = time.perf_counter()
        _start(process)
        ready = time.perf_counter() - starting
        print(f"  `cairn api` ready in {ready:.0f} s (it fills its empty search index first)")
        measure(process.base_url, names, args.requests)
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)


def _start(process: CairnProcess) -> None:
    """Start `cairn api`; on a large store it first fills its empty search index, which takes
    longer than the test helper's minute, so readiness is awaited further here."""
    try:
        process.start()
    except AssertionError:
        if process.process is None or process.process.poll() is not None:
            raise
        progress("`cairn api` is filling its search index from the store; waiting ...")
        wait_until(lambda: _ready(process), timeout=3600, what="cairn api ready")


def _ready(process: CairnProcess) -> bool:
    if process.process is not None and process.process.poll() is not None:
        raise SystemExit(f"cairn api exited:\n{process.log()}")
    try:
        return httpx.get(f"{process.base_url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
