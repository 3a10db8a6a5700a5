"""Kafka stops while webhooks arrive: the receivers answer 503 with Retry-After, never 202
for an event that is not durable, and once Kafka is back every accepted event (and every
redelivery of a refused one) ends up in the catalog."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support import kafka
from tests.support.distributed import (
    Cluster,
    FleetRepo,
    Installations,
    build_fleet,
    deliver_push,
)
from tests.support.server import wait_until

BEFORE, DURING, AFTER = 10, 10, 10


@pytest.fixture
def cluster(workspace, tmp_path: Path) -> Iterator[Cluster]:
    installations = Installations()
    made = Cluster(
        installations.new(), tmp_path, workspace.git_config, secret=secrets.token_hex(16)
    )
    yield made
    made.stop()
    installations.close()


def _push(repo: FleetRepo) -> tuple[FleetRepo, str, str]:
    return repo, "0" * 40, repo.commits[-1]


def _deliver_until_accepted(
    client: httpx.Client, cluster: Cluster, repo: FleetRepo, delivery: str
) -> httpx.Response:
    """Redeliver (same delivery id, as a Git host does) while the answer is 503."""
    assert cluster.ingest is not None
    ingest = cluster.ingest

    def attempt() -> httpx.Response | None:
        response = deliver_push(client, ingest, _push(repo), delivery)
        assert response.status_code in (202, 503), response.text
        return response if response.status_code == 202 else None

    return wait_until(attempt, timeout=90, what=f"delivery {delivery} accepted")


def test_receivers_refuse_while_kafka_is_down_and_lose_nothing_they_accepted(
    cluster: Cluster, workspace
) -> None:
    fleet = build_fleet(
        workspace.root, BEFORE + DURING + AFTER, 1, prefix=f"outage-{uuid.uuid4().hex[:6]}"
    )
    expected = {ref: text for repo in fleet for ref, text in repo.expected.items()}
    before, during, after = fleet[:BEFORE], fleet[BEFORE:-AFTER], fleet[-AFTER:]
    cluster.start(workers=1, CAIRN_KAFKA_PUBLISH_TIMEOUT_SECONDS="2")
    wait_until(lambda: cluster.groups_split_over(1), timeout=90, what="the worker in its groups")
    assert cluster.ingest is not None
    ingest = cluster.ingest
    deliveries = {repo.info.name: str(uuid.uuid4()) for repo in fleet}

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(DURING) as pool:

        def send(repo: FleetRepo) -> httpx.Response:
            return deliver_push(client, ingest, _push(repo), deliveries[repo.info.name])

        answers = list(pool.map(send, before))
        assert [a.status_code for a in answers] == [202] * BEFORE
        assert all(a.json()["status"] == "accepted" for a in answers)

        kafka.stack("stop", "kafka")
        try:
            refused = list(pool.map(send, during))
        finally:
            kafka.stack("start", "kafka")
        assert [a.status_code for a in refused] == [503] * DURING
        assert all(a.headers.get("Retry-After") for a in refused)

        # Kafka is back: new deliveries and the redeliveries of the refused ones go in.
        for repo in after + during:
            answer = _deliver_until_accepted(client, cluster, repo, deliveries[repo.info.name])
            assert answer.json()["status"] == "accepted", answer.text

    wait_until(
        lambda: cluster.catalog() == expected, timeout=120, what="every accepted push's entities"
    )
    assert cluster.catalog() == expected
    assert all(worker.process and worker.process.poll() is None for worker in cluster.workers)
