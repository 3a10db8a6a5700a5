"""Embedded default: freshness from a GitHub `deployment_status` 202 to the new version shown
by the entity (`status.deployments`) and by search (`deployed_to=production` hits), and
deployment events per second end to end (202 to listed by /api/deployments).

    .venv/bin/python -m tests.benchmarks.deployments [--repos 20] [--deployments 200] [--burst 1000]

With `--kafka`, `cairn up` runs on Kafka and PostgreSQL (an installation of its own on the
stack named by CAIRN_TEST_KAFKA_BOOTSTRAP and CAIRN_TEST_DATABASE_URL; the processors are
the embedded runner's threads over Kafka consumers). With `--cluster N`, the distributed
shape instead: `cairn ingest`, `cairn api` and N `cairn processors` (faust) workers, each
its own process, indexing into the stack's OpenSearch (CAIRN_TEST_OPENSEARCH_URL).
"""

from __future__ import annotations

import argparse
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.demo.ci_payloads import github_deployment_status_payload
from services.demo.github_payloads import GitHubRepoInfo
from tests.benchmarks.common import Workspace, percentile, progress, summary
from tests.e2e.catalog_files import component
from tests.support.server import CairnProcess, wait_until


def _seed(
    ingest: CairnProcess, api: CairnProcess, ws: Workspace, repos: int
) -> list[GitHubRepoInfo]:
    infos = []
    for i in range(repos):
        repo, info = ws.repo(f"deploy-{i}")
        ingest.push(info, *repo.commit_and_push({"catalog-info.yaml": component(info.name)}))
        infos.append(info)
    wait_until(
        lambda: api.search(q="deploy", limit=1)["total"] >= repos, timeout=120, what="seeding"
    )
    return infos


def _status(info: GitHubRepoInfo, number: int, version: str, at: datetime) -> dict[str, Any]:
    return github_deployment_status_payload(
        info, number, "success", sha=version, created_at=at - timedelta(seconds=5), at=at
    )


def _entity_version(client: httpx.Client, base: str, name: str) -> str | None:
    entity = client.get(f"{base}/api/catalog/entities/by-name/component/default/{name}").json()
    for environment in entity.get("status", {}).get("deployments", []):
        if environment["environment"] == "production":
            return str(environment["version"])
    return None


def _search_version(client: httpx.Client, base: str, name: str) -> str | None:
    body = client.get(
        f"{base}/api/search", params={"q": name, "deployed_to": "production", "limit": 5}
    ).json()
    for item in body["items"]:
        if item["name"] == name:
            for environment in item["deployments"]:
                if environment["environment"] == "production":
                    return str(environment["version"])
    return None


def measure_freshness(
    ingest: CairnProcess, api: CairnProcess, infos: list[GitHubRepoInfo], count: int
) -> tuple[list[float], list[float]]:
    entity_samples: list[float] = []
    search_samples: list[float] = []
    base = api.base_url
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            info = infos[i % len(infos)]
            version = secrets.token_hex(20)
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=i)
            response = ingest.send("deployment_status", _status(info, 10_000 + i, version, at))
            accepted = time.perf_counter()
            assert response.status_code == 202, response.text
            seen_entity = seen_search = None
            while seen_entity is None or seen_search is None:
                if time.perf_counter() - accepted > 30:
                    missing = "entity" if seen_entity is None else "search"
                    raise SystemExit(f"deployment {i} of {info.name} not on the {missing} in 30 s")
                if seen_entity is None and _entity_version(client, base, info.name) == version:
                    seen_entity = time.perf_counter() - accepted
                if seen_search is None and _search_version(client, base, info.name) == version:
                    seen_search = time.perf_counter() - accepted
                time.sleep(0.002)
            entity_samples.append(seen_entity)
            search_samples.append(seen_search)
            if (i + 1) % 50 == 0:
                progress(f"  freshness: {i + 1}/{count}, entity so far {summary(entity_samples)}")
    return entity_samples, search_samples


def _listed_since(client: httpx.Client, base: str, since: datetime) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"since": since.isoformat(), "limit": 500, "status": "success"}
        if cursor:
            params["cursor"] = cursor
        body = client.get(f"{base}/api/deployments", params=params).json()
        count += len(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return count


def measure_throughput(
    ingest: CairnProcess, api: CairnProcess, infos: list[GitHubRepoInfo], burst: int
) -> float:
    since = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    payloads = [
        (
            _status(
                infos[i % len(infos)],
                100_000 + i,
                secrets.token_hex(20),
                since + timedelta(seconds=i),
            )
        )
        for i in range(burst)
    ]
    progress(f"  throughput: sending {burst} deployment_status deliveries")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as senders:
        for response in senders.map(lambda p: ingest.send("deployment_status", p), payloads):
            assert response.status_code == 202, response.text
    accepted = time.perf_counter() - started
    with httpx.Client(timeout=30) as client:
        # Each delivery is its own deployment that started `since` or later.
        start_of_burst = since - timedelta(seconds=5)
        while _listed_since(client, api.base_url, start_of_burst) < burst:
            if time.perf_counter() - started > 600:
                raise SystemExit("the burst was not processed within 600 s")
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    progress(
        f"  throughput: {burst} accepted in {accepted:.2f} s, all listed after {elapsed:.2f} s"
    )
    return burst / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--kafka", action="store_true", help="on Kafka and PostgreSQL")
    parser.add_argument(
        "--cluster", type=int, default=0, metavar="N", help="ingest, api and N faust workers"
    )
    args = parser.parse_args()
    ws = Workspace()
    installations = None
    cluster = None
    if args.kafka or args.cluster:
        from tests.support.distributed import Cluster, Installations

        installations = Installations()
    if args.cluster:
        assert installations is not None
        cluster = Cluster(installations.new(), ws.root / "cluster", ws.git_config, "bench-secret")
        progress(f"bench: starting cairn ingest, api and {args.cluster} processors")
        cluster.start(args.cluster)
        assert cluster.ingest is not None and cluster.api is not None
        ingest, api = cluster.ingest, cluster.api
    else:
        env = installations.new().env if installations is not None else {}
        ingest = api = CairnProcess(
            data_dir=ws.root / "data",
            secret=secrets.token_hex(8),
            git_config=ws.git_config,
            extra_env=env,
        )
        progress(f"bench: starting cairn up on {ingest.base_url} (data in {ws.root})")
        ingest.start()
    try:
        infos = _seed(ingest, api, ws, args.repos)
        progress(f"bench: freshness over {args.deployments} sequential deployments")
        entity, search = measure_freshness(ingest, api, infos, args.deployments)
        rate = measure_throughput(ingest, api, infos, args.burst)
    finally:
        if cluster is not None:
            cluster.stop()
        else:
            ingest.stop()
        if installations is not None:
            installations.close()
        ws.close()
    print(f"freshness 202 -> new version on the entity: {summary(entity)}")
    print(f"freshness 202 -> new version in /api/search: {summary(search)}")
    print(f"deployment events/s end to end (202 -> listed): {rate:.1f}")
    print(
        f"summary: entity p99 {percentile(entity, 99) * 1000:.1f} ms, search p99 "
        f"{percentile(search, 99) * 1000:.1f} ms over {len(entity)} deployments; "
        f"{rate:.1f} deployment events/s"
    )


if __name__ == "__main__":
    main()
