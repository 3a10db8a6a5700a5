"""Replay: the store is a projection of `cairn.entity.changes`. Rewinding the store
projection's consumer group (`cairn replay`) and letting a worker re-read the topic into
an empty database rebuilds exactly the store that was there."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.store.sql_store import SqlCatalogStore
from tests.support import postgres
from tests.support.distributed import Cluster, Installations, build_fleet, run_cairn, send_pushes
from tests.support.server import wait_until

REPOSITORIES = 30


@pytest.fixture
def cluster(workspace, tmp_path: Path) -> Iterator[Cluster]:
    installations = Installations()
    made = Cluster(
        installations.new(), tmp_path, workspace.git_config, secret=secrets.token_hex(16)
    )
    yield made
    made.stop()
    installations.close()


def _store_contents(url: str) -> list[tuple[Any, ...]]:
    """Every entity the store holds, with the version (log offset) it was written at."""
    store = SqlCatalogStore(url)
    try:
        return [
            (
                e.ref,
                e.version,
                e.body,
                e.location_id,
                e.updated_at,
                [r.model_dump() for r in e.relations],
                [r.model_dump() for r in e.errors],
            )
            for e in store.iter_entities()
        ]
    finally:
        store.close()


def test_replaying_the_store_projection_into_an_empty_database_rebuilds_it_identically(
    cluster: Cluster, workspace
) -> None:
    fleet = build_fleet(workspace.root, REPOSITORIES, 2, prefix=f"replay-{uuid.uuid4().hex[:6]}")
    expected = {ref: text for repo in fleet for ref, text in repo.expected.items()}
    cluster.start(workers=1)
    assert cluster.ingest is not None
    pushes = [(repo, "0" * 40, repo.commits[-1]) for repo in fleet]
    assert send_pushes(cluster.ingest, pushes) == [202] * len(pushes)
    wait_until(lambda: cluster.catalog() == expected, timeout=120, what="the catalog")
    env = cluster.installation.env
    before = _store_contents(cluster.installation.database_url)
    assert len(before) == len(expected)

    running = run_cairn(env, "replay", "--group", "store-projection", check=False)
    assert running.returncode == 1 and "running member" in running.stderr

    for worker in cluster.workers:
        worker.stop()
    done = run_cairn(env, "replay", "--group", "store-projection")
    assert "cairn-store-projection will re-read" in done.stdout

    with postgres.fresh_database() as empty:
        run_cairn({**env, "CAIRN_DATABASE_URL": empty}, "db", "upgrade")
        cluster.add_worker("rebuilder", CAIRN_DATABASE_URL=empty)
        wait_until(
            lambda: len(_store_contents(empty)) == len(before),
            timeout=120,
            what="the rebuilt store",
        )
        assert _store_contents(empty) == before
