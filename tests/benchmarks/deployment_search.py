"""Search latency with deployment filters (`deployed_to`, `deployed_since`,
`last_deploy_status`), one client, per adapter:

    .venv/bin/python -m tests.benchmarks.deployment_search --opensearch-url http://127.0.0.1:PORT \\
        [--size 10000] [--adapters opensearch fts5] [--rounds 200]

Loads `--size` synthetic entities (tests/benchmarks/search.py), gives two thirds of them
environments (production, staging, and a third environment for some; one in ten failing),
then times each query shape `--rounds` times: p50/p90/p99 of `search` at the index port,
facets and hits' environments included. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from services.index.document import DeployedEnvironment
from services.index.fts5 import Fts5SearchIndex
from services.index.opensearch_index import OpenSearchIndex
from services.index.port import DeploymentsWrite, SearchQuery
from tests.benchmarks.common import progress, summary
from tests.benchmarks.search import entities, load

HOUR = 3600.0
SHAPES = {
    "no filter": {},
    "deployed_to=production": {"deployed_to": ["production"]},
    "deployed_to=production&deployed_since=24h": {
        "deployed_to": ["production"],
        "deployed_since": ["24h"],
    },
    "last_deploy_status=failure": {"last_deploy_status": ["failure"]},
    "deployed_to=staging&owner=team-7": {"deployed_to": ["staging"], "owner": ["team-7"]},
}


def deployments(size: int, now: float, seed: int = 3) -> list[DeploymentsWrite]:
    rng = random.Random(seed)
    writes = []
    for offset, (ref, _body) in enumerate(entities(size)):
        if rng.random() < 1 / 3:
            continue
        environments = []
        for environment in ("production", "staging", "qa")[: rng.choice((1, 2, 2, 3))]:
            at = now - rng.uniform(0, 30 * 24 * HOUR)
            failed = rng.random() < 0.1
            environments.append(
                DeployedEnvironment(
                    environment=environment,
                    version=f"v{rng.randrange(100)}",
                    deployed_at=at,
                    last_status="failure" if failed else "success",
                    last_version=f"v{rng.randrange(100)}",
                    last_at=at + (HOUR if failed else 0.0),
                )
            )
        writes.append(DeploymentsWrite(ref, offset, environments))
    return writes


def run(index: Fts5SearchIndex | OpenSearchIndex, size: int, rounds: int) -> None:
    load(index, size)
    writes = deployments(size, time.time())
    started = time.perf_counter()
    for at in range(0, len(writes), 1000):
        index.apply_deployments(writes[at : at + 1000])
    progress(f"  {len(writes)} entities' deployments in {time.perf_counter() - started:.1f}s")
    if isinstance(index, OpenSearchIndex):
        index.client.indices.refresh(index=index.alias)
    for text in ("", "payment"):
        for shape, filters in SHAPES.items():
            query = SearchQuery(text=text, filters=filters)
            latencies = []
            total = 0
            for _ in range(rounds):
                began = time.perf_counter()
                total = index.search(query).total
                latencies.append(time.perf_counter() - began)
            label = f"q={text!r} {shape}" if text else shape
            print(f"  {label}: {total} hits; {summary(latencies)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opensearch-url")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--adapters", nargs="+", default=["opensearch", "fts5"])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    for adapter in args.adapters:
        print(f"{adapter}, {args.size} entities:", flush=True)
        if adapter == "opensearch":
            if not args.opensearch_url:
                parser.error("--opensearch-url is needed for the opensearch adapter")
            alias = f"cairn-bench-{uuid.uuid4().hex[:8]}"
            search = OpenSearchIndex(args.opensearch_url, alias)
            search.ensure_ready()
            try:
                run(search, args.size, args.rounds)
            finally:
                search.client.indices.delete(index=f"{alias}-v*")
                search.client.indices.delete_index_template(name=f"{alias}-template")
                search.close()
        else:
            workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-"))
            index = Fts5SearchIndex(workdir / "index.db")
            index.ensure_ready()
            try:
                run(index, args.size, args.rounds)
            finally:
                index.close()
                shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
