"""Scale-out on the distributed stack: two `cairn processors` workers share the work of
2,000 pushes over 200 repositories through their consumer groups, and the catalog ends
exactly as the repositories say, also when one worker is killed in the middle.

Each repository has 10 commits and gets one push per commit; every push is only a hint
(level-triggered), so whatever order the workers see them in, the catalog must end as the
last commit of each repository describes it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.bus.topics_admin import physical_name
from tests.support import kafka
from tests.support.distributed import (
    Cluster,
    FleetRepo,
    Installations,
    build_fleet,
    fleet_pushes,
    send_pushes,
)
from tests.support.server import wait_until

REPOSITORIES = 200
COMMITS = 10
PARTITIONS = 12


@pytest.fixture(scope="module")
def fleet(workspace) -> list[FleetRepo]:
    return build_fleet(workspace.root, REPOSITORIES, COMMITS, prefix="fleet")


@pytest.fixture(scope="module")
def expected(fleet: list[FleetRepo]) -> dict[str, str]:
    return {ref: text for repo in fleet for ref, text in repo.expected.items()}


@pytest.fixture
def cluster(workspace, tmp_path: Path) -> Iterator[Cluster]:
    installations = Installations(partitions=PARTITIONS)
    made = Cluster(
        installations.new(), tmp_path, workspace.git_config, secret=secrets.token_hex(16)
    )
    yield made
    made.stop()
    installations.close()


def _git_events_handled(log_text: str) -> int:
    return len(re.findall(r"git event cairn\.git\.events\[\d+\]@\d+", log_text))


def test_two_workers_share_every_group_and_the_catalog_ends_exactly_as_expected(
    cluster: Cluster, fleet: list[FleetRepo], expected: dict[str, str]
) -> None:
    cluster.start(workers=2)
    shares = wait_until(
        lambda: cluster.groups_split_over(2), timeout=90, what="both workers in each group"
    )
    assert all(sum(held) == PARTITIONS for held in shares.values()), shares

    assert cluster.ingest is not None
    statuses = send_pushes(cluster.ingest, fleet_pushes(fleet))
    assert statuses == [202] * len(statuses)

    wait_until(
        lambda: cluster.catalog() == expected, timeout=240, what="the catalog of 200 repositories"
    )
    assert cluster.catalog() == expected
    handled = [_git_events_handled(worker.log(full=True)) for worker in cluster.workers]
    assert all(count > 0 for count in handled), handled


def test_a_worker_killed_mid_stream_loses_nothing_after_the_rebalance(
    cluster: Cluster, fleet: list[FleetRepo], expected: dict[str, str]
) -> None:
    cluster.start(workers=2)
    wait_until(lambda: cluster.groups_split_over(2), timeout=90, what="both workers in each group")
    assert cluster.ingest is not None
    pushes = fleet_pushes(fleet)
    with ThreadPoolExecutor(1) as sender:
        sent = sender.submit(send_pushes, cluster.ingest, pushes)
        # Mid-stream: a third of the pushes processed (and committed), most of them not.
        group = physical_name(cluster.installation.namespace, "cairn-descriptor")
        topic = physical_name(cluster.installation.namespace, "cairn.git.events")
        wait_until(
            lambda: kafka.group_committed(kafka.bootstrap(), group, topic) >= len(pushes) // 3,
            timeout=120,
            what="a third of the pushes processed",
        )
        victim, survivor = cluster.workers
        victim.stop(kill=True)
        done_at_kill = kafka.group_committed(kafka.bootstrap(), group, topic)
        assert done_at_kill < len(pushes), "the stream ended before the kill"
        statuses = sent.result()
    assert statuses == [202] * len(statuses)

    wait_until(
        lambda: cluster.groups_split_over(1),
        timeout=90,
        what="the survivor holding every partition",
    )
    wait_until(
        lambda: cluster.catalog() == expected, timeout=240, what="the catalog after the crash"
    )
    assert cluster.catalog() == expected
    assert _git_events_handled(survivor.log(full=True)) > 0
