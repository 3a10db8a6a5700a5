"""Embedded default: freshness from a push webhook's 202 to the entity in /api/search, and
sustained pushes per second for repositories with 1 and with 50 entities.

    .venv/bin/python -m tests.benchmarks.freshness [--pushes 200] [--repos 20] [--burst 100]
        [--via search|catalog] [--kafka]

`--via catalog` waits for the edited description in Backstage's catalog API
(`GET /api/catalog/entities/by-name/...`, read from the store) instead of in /api/search
(read from the search index). `--burst 0` skips the throughput runs. With `--kafka`,
`cairn up` runs on Kafka and PostgreSQL (an installation of its own on the stack named by
CAIRN_TEST_KAFKA_BOOTSTRAP and CAIRN_TEST_DATABASE_URL: run it under tests/run_with_stack.sh).
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.benchmarks.common import Workspace, percentile, progress, summary
from tests.e2e.catalog_files import component, documents
from tests.support.server import CairnProcess, wait_until

_TIMING = re.compile(r"fetch=([\d.]+)ms read=([\d.]+)ms reconcile=([\d.]+)ms")


def _descriptor(repo_name: str, entities: int, token: str) -> str:
    return documents(
        *[
            component(f"{repo_name}-c{i}", description=f"{token} component {i}")
            for i in range(entities)
        ]
    )


def _visible(client: httpx.Client, base: str, token: str, via: str, name: str) -> bool:
    if via == "catalog":
        response = client.get(f"{base}/api/catalog/entities/by-name/component/default/{name}")
        if response.status_code != 200:
            return False
        return token in str(response.json()["metadata"].get("description", ""))
    body = client.get(f"{base}/api/search", params={"q": token, "limit": 1}).json()
    return bool(body["total"] >= 1)


def measure_freshness(
    cairn: CairnProcess, ws: Workspace, pushes: int, repos: int, via: str = "search"
) -> list[float]:
    pool = [ws.repo(f"fresh-{i}") for i in range(repos)]
    for repo, info in pool:
        cairn.push(
            info, *repo.commit_and_push({"catalog-info.yaml": _descriptor(info.name, 1, "warm")})
        )
    wait_until(lambda: cairn.search(q="warm")["total"] >= repos, timeout=60, what="warm-up")
    samples: list[float] = []
    with httpx.Client(timeout=10) as client:
        for i in range(pushes):
            repo, info = pool[i % repos]
            token = f"fresh{i}x{secrets.token_hex(3)}"
            before, after = repo.commit_and_push(
                {"catalog-info.yaml": _descriptor(info.name, 1, token)}
            )
            response = cairn.push(info, before, after)
            accepted = time.perf_counter()
            assert response.status_code == 202, response.text
            while not _visible(client, cairn.base_url, token, via, f"{info.name}-c0"):
                if time.perf_counter() - accepted > 30:
                    raise SystemExit(f"push {i} not visible after 30 s")
                time.sleep(0.002)  # leave the server's cores to the pipeline being measured
            samples.append(time.perf_counter() - accepted)
            if (i + 1) % 50 == 0:
                progress(f"  freshness: {i + 1}/{pushes} pushes, so far {summary(samples)}")
    return samples


def measure_throughput(cairn: CairnProcess, ws: Workspace, entities: int, pushes: int) -> float:
    prefix = f"tp{entities}"
    pool = [ws.repo(f"{prefix}-{i}") for i in range(pushes)]
    for repo, info in pool:
        cairn.push(
            info,
            *repo.commit_and_push({"catalog-info.yaml": _descriptor(info.name, entities, "seed")}),
        )
    wait_until(
        lambda: cairn.search(q=f"{prefix}")["total"] >= pushes * entities,
        timeout=300,
        what="seeded repositories",
    )
    token = f"burst{entities}x{secrets.token_hex(3)}"
    prepared = [
        (info, repo.commit_and_push({"catalog-info.yaml": _descriptor(info.name, entities, token)}))
        for repo, info in pool
    ]
    progress(f"  throughput: sending {pushes} pushes of {entities}-entity repositories")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as senders:
        for response in senders.map(lambda item: cairn.push(item[0], *item[1]), prepared):
            assert response.status_code == 202, response.text
    accepted = time.perf_counter() - started
    wait_until(
        lambda: cairn.search(q=token)["total"] >= pushes * entities,
        timeout=600,
        what="every burst push visible",
    )
    elapsed = time.perf_counter() - started
    progress(
        f"  throughput: {pushes} webhooks accepted in {accepted:.2f} s, "
        f"all visible after {elapsed:.2f} s"
    )
    return pushes / elapsed


def stage_timings(log_text: str) -> dict[str, float]:
    stages: dict[str, list[float]] = {"fetch": [], "read": [], "reconcile": []}
    for match in _TIMING.finditer(log_text):
        for name, value in zip(stages, match.groups(), strict=True):
            stages[name].append(float(value))
    return {name: statistics.median(values) for name, values in stages.items() if values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100, help="pushes in each throughput run")
    parser.add_argument("--via", choices=("search", "catalog"), default="search")
    parser.add_argument("--kafka", action="store_true", help="on Kafka and PostgreSQL")
    args = parser.parse_args()
    where = "/api/search" if args.via == "search" else "the catalog API (by-name)"
    ws = Workspace()
    installations = None
    if args.kafka:
        from tests.support.distributed import Installations

        installations = Installations()
    cairn = CairnProcess(
        data_dir=ws.root / "data",
        secret=secrets.token_hex(8),
        git_config=ws.git_config,
        extra_env=installations.new().env if installations is not None else {},
    )
    progress(f"bench: starting cairn up on {cairn.base_url} (data in {ws.root})")
    cairn.start()
    try:
        progress(f"bench: freshness over {args.pushes} sequential one-file pushes")
        fresh = measure_freshness(cairn, ws, args.pushes, args.repos, args.via)
        if args.burst > 0:
            one = measure_throughput(cairn, ws, 1, args.burst)
            fifty = measure_throughput(cairn, ws, 50, max(10, args.burst // 5))
        stages = stage_timings((cairn.data_dir.parent / f"cairn-{cairn.port}.log").read_text())
    finally:
        cairn.stop()
        if installations is not None:
            installations.close()
        ws.close()
    print(f"freshness 202 -> visible in {where}: {summary(fresh)}")
    if args.burst <= 0:
        p99 = percentile(fresh, 99) * 1000
        print(f"summary: freshness p99 {p99:.1f} ms over {len(fresh)} pushes")
        return
    print(f"sustained pushes/s, 1-entity repositories: {one:.1f}")
    print(f"sustained pushes/s, 50-entity repositories: {fifty:.1f} ({fifty * 50:.0f} entities/s)")
    print(
        "descriptor processor, median per push: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items())
    )
    print(
        f"summary: freshness p99 {percentile(fresh, 99) * 1000:.1f} ms over {len(fresh)} pushes; "
        f"{one:.1f} pushes/s (1 entity), {fifty:.1f} pushes/s (50 entities)"
    )


if __name__ == "__main__":
    main()
