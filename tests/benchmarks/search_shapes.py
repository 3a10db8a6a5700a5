"""OpenSearch search request shapes compared on one index, A/B in interleaved slices.

    .venv/bin/python -m tests.benchmarks.search_shapes --opensearch-url http://127.0.0.1:PORT \\
        [--size 100000] [--shapes single cached split] [--writes 20] [--slice 6] [--rounds 3]

Loads `--size` synthetic entities of tests/benchmarks/search.py into an index kept between
runs (alias `cairn-shapes-<size>`; `--drop` deletes it at the end), then runs search.py's
query mix with `--clients` closed-loop clients, one slice per shape in turn, `--rounds`
times after a warm-up round, so a machine whose load shifts weighs on every shape alike.
Shapes, i.e. how `OpenSearchIndex.search`'s request is sent:

- single: one request (hits, exact total, facets), shard request cache not asked;
- cached: the same request asking the shard request cache for first pages (the adapter's);
- split: one msearch of the hits (cached) and a size-0 request for total and facets;
- map: `single` with `execution_hint: map` on the facet aggregations;
- nofacets, nohighlight: `single` without them (what they cost; not the contract).

`--writes N` runs a writer updating N entities a second meanwhile, as the index projection
does under a steady change stream: every refresh that changed the index empties the request
cache. Prints p50/p99, throughput, and CPU milliseconds per query of the OpenSearch node
(its node stats) and of this process. Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from services.index.document import build_search_document
from services.index.opensearch_index import OpenSearchIndex
from services.index.port import FACET_FIELDS, IndexWrite, SearchHit
from tests.benchmarks.common import percentile
from tests.benchmarks.search import closed_loop, entities, load, queries

SHAPES = ("single", "cached", "split", "map", "nofacets", "nohighlight")


class ShapedClient:
    """The real client, with `search` sent in the shape named `shape`."""

    def __init__(self, real: Any, shape: str) -> None:
        self._real = real
        self.shape = shape

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def search(self, index: str, body: dict[str, Any], **kw: Any) -> Any:
        if "aggs" not in body:  # not a search of the port's `search` (suggest, load's count)
            return self._real.search(index=index, body=body, **kw)
        cached = kw.pop("params", {})
        body = copy.deepcopy(body)
        if self.shape == "cached":
            return self._real.search(index=index, body=body, params=cached)
        if self.shape == "split":
            aggs = {"query": body["query"], "size": 0, "track_total_hits": True}
            aggs["aggs"] = body.pop("aggs")
            body["track_total_hits"] = False
            header = {"index": index, "request_cache": bool(cached)}
            lines = [header, body, {"index": index}, aggs]
            hits, facets = self._real.msearch(body="\n".join(map(json.dumps, lines)) + "\n")[
                "responses"
            ]
            hits["hits"]["total"] = facets["hits"]["total"]
            hits["aggregations"] = facets["aggregations"]
            return hits
        if self.shape == "map":
            for agg in body["aggs"].values():
                agg["terms"]["execution_hint"] = "map"
        elif self.shape == "nohighlight":
            body.pop("highlight", None)
        elif self.shape == "nofacets":
            body.pop("aggs")
            response = self._real.search(index=index, body=body)
            response["aggregations"] = {f: {"buckets": []} for f in FACET_FIELDS}
            return response
        return self._real.search(index=index, body=body)


def searcher(index: OpenSearchIndex, seed: int) -> Callable[[random.Random], list[SearchHit]]:
    """Searches of search.py's mix, the same sequence for every shape of a round."""
    make = queries(random.Random(seed))
    lock = threading.Lock()

    def one(_rng: random.Random) -> list[SearchHit]:
        with lock:
            query = make()
        return index.search(query).items

    return one


def node_cpu_ms(client: Any) -> float:
    nodes = client.nodes.stats(metric="process")["nodes"].values()
    return float(sum(n["process"]["cpu"]["total_in_millis"] for n in nodes))


def writer(url: str, alias: str, per_second: float, stop: threading.Event) -> None:
    index = OpenSearchIndex(url, alias)
    pool = list(entities(2000, seed=1))
    rng = random.Random(5)
    version = 10**9
    while not stop.is_set():
        batch = []
        for _ in range(max(1, round(per_second / 10))):
            ref, body = rng.choice(pool)
            version += 1
            batch.append(IndexWrite(ref, version, build_search_document(ref, body, float(version))))
        index.apply(batch)
        time.sleep(0.1)
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--opensearch-url", required=True)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=["single", "cached"])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--slice", type=float, default=6.0, help="seconds per shape and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=float, default=0.0, help="entity updates per second")
    parser.add_argument("--drop", action="store_true", help="delete the index at the end")
    args = parser.parse_args()
    index = OpenSearchIndex(args.opensearch_url, f"cairn-shapes-{args.size}")
    index.ensure_ready()
    real = index.client
    if index.count() < args.size:
        load(index, args.size)
        real.indices.forcemerge(index=index.alias, params={"max_num_segments": 5})
    stop = threading.Event()
    if args.writes:
        threading.Thread(
            target=writer, args=(args.opensearch_url, index.alias, args.writes, stop), daemon=True
        ).start()
    latencies: dict[str, list[float]] = {s: [] for s in args.shapes}
    cpu = {s: [0.0, 0.0] for s in args.shapes}
    started = time.strftime("%H:%M:%S")
    try:
        for round_ in range(args.rounds + 1):
            for shape in args.shapes:
                index.client = ShapedClient(real, shape)  # type: ignore[assignment]
                one = searcher(index, round_)
                node0, own0 = node_cpu_ms(real), sum(os.times()[:2])
                values, errors = closed_loop(args.clients, args.slice, one)
                if errors:
                    raise SystemExit(f"{shape}: {errors} searches failed")
                if round_:  # round 0 warms caches and JIT up
                    latencies[shape] += values
                    cpu[shape][0] += node_cpu_ms(real) - node0
                    cpu[shape][1] += (sum(os.times()[:2]) - own0) * 1000
    finally:
        stop.set()
        index.client = real
        if args.drop:
            real.indices.delete(index=f"{index.alias}-v*", params={"ignore_unavailable": "true"})
        index.close()
    load_average = " ".join(f"{v:.2f}" for v in os.getloadavg())
    finished = time.strftime("%H:%M:%S")
    print(f"{started}-{finished} UTC, load average {load_average}, {args.writes} writes/s")
    seconds = args.slice * args.rounds
    for shape in args.shapes:
        ms = [v * 1000 for v in latencies[shape]]
        n = len(ms)
        print(
            f"{shape:<12} p50 {percentile(ms, 50):7.1f} ms  p99 {percentile(ms, 99):7.1f} ms  "
            f"{n / seconds:5.0f}/s  OpenSearch CPU {cpu[shape][0] / n:5.1f} ms/query  "
            f"Python CPU {cpu[shape][1] / n:4.1f} ms/query (n={n})",
            flush=True,
        )


if __name__ == "__main__":
    main()
