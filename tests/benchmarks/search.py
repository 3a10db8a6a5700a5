"""Search benchmarks: latency under 16 concurrent clients, bulk indexing, freshness, suggest.

    .venv/bin/python -m tests.benchmarks.search --opensearch-url http://127.0.0.1:PORT \\
        [--sizes 10000 100000] [--adapters opensearch fts5] [--clients 16] [--seconds 15]

For each adapter and catalog size it builds a fresh index of synthetic entities (names in
every case style, titles, descriptions, tags, labels, owners, systems, domains; one in seven
is an API with an OpenAPI definition) and prints:

- indexing: documents/s through `apply` in bulk batches of 1000 (one writer, as the index
  projection is), until every document is searchable;
- search: p50/p99 latency and throughput of `search` with `--clients` threads in a closed
  loop (each sends its next query when the last one answered): a mix of one- and two-word
  queries, prefixes, typos, filters with and without text, all with facets, a third with
  highlights; measured at the index port, i.e. what search_api's handler waits for;
- search*: the same clients, each pausing a random think time (mean --think-ms) between
  queries: latency under a steady load below saturation;
- suggest: p50/p99 of `suggest` for 1-5 letter prefixes, one client (a developer typing)
  and `--clients` clients in a closed loop;
- freshness: an entity change published on the log (SQLite) until `search` finds it,
  through the embedded runner's index projection, one change at a time (OpenSearch with
  its production refresh settings: refresh_interval as given, bulk writes not waiting).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from processors.descriptor import DescriptorProcessor
from processors.embedded import EmbeddedRunner
from services.bus.sqlite_log import SqliteEventLog
from services.collector import settle_collector
from services.git.reader import GitReader
from services.index.document import build_search_document
from services.index.fts5 import Fts5SearchIndex
from services.index.opensearch_index import OpenSearchIndex
from services.index.port import IndexWrite, RebuildableIndex, SearchQuery
from services.model.events import EntityChanged
from services.model.topics import ENTITY_CHANGES
from services.store.sql_store import SqlCatalogStore
from tests.benchmarks.common import percentile, progress

WORDS = [
    "payment",
    "order",
    "cart",
    "checkout",
    "ledger",
    "invoice",
    "shipping",
    "inventory",
    "catalog",
    "pricing",
    "user",
    "profile",
    "auth",
    "search",
    "billing",
    "refund",
    "fraud",
    "notification",
    "email",
    "report",
    "analytics",
    "review",
    "rating",
    "coupon",
    "loyalty",
    "warehouse",
    "delivery",
    "tracking",
    "tax",
    "currency",
    "session",
    "identity",
    "subscription",
    "recommendation",
    "media",
    "upload",
    "gateway",
    "audit",
    "consent",
]
ROLES = [
    "service",
    "api",
    "gateway",
    "worker",
    "processor",
    "adapter",
    "ui",
    "db",
    "cache",
    "proxy",
    "scheduler",
    "sync",
    "importer",
    "exporter",
    "store",
    "engine",
]
TAGS = [
    "java",
    "go",
    "python",
    "kotlin",
    "node",
    "grpc",
    "rest",
    "kafka",
    "postgres",
    "tier-1",
    "tier-2",
    "tier-3",
    "pci",
    "gdpr",
]
FILLER = [
    f"{a}{b}"
    for a in ("ka", "lo", "mi", "nu", "re", "sa", "ti", "vo")
    for b in (
        "bar",
        "den",
        "fin",
        "gol",
        "hem",
        "jut",
        "kor",
        "lum",
        "mas",
        "nip",
        "pol",
        "rud",
        "sel",
        "tam",
        "ulk",
        "ven",
        "wes",
        "yar",
        "zim",
        "orb",
        "eck",
        "ist",
        "oft",
        "unt",
        "ash",
    )
]
LIFECYCLES = ("production", "production", "production", "experimental", "deprecated")


def _name(rng: random.Random, i: int) -> str:
    a, b, role = rng.choice(WORDS), rng.choice(WORDS), rng.choice(ROLES)
    style = i % 4
    if style == 0:
        return f"{a}-{role}-{i}"
    if style == 1:
        return f"{a}{b.capitalize()}{role.capitalize()}{i}"
    if style == 2:
        return f"{a}_{b}_{role}_{i}"
    return f"{a}-{b}-{role}-{i}"


def _openapi(rng: random.Random, subject: str) -> str:
    ops = "\n".join(
        f"  /{subject}s/{{id}}/{rng.choice(WORDS)}:\n    get:\n"
        f"      operationId: get{subject.capitalize()}{rng.choice(WORDS).capitalize()}\n"
        f"      summary: Read the {rng.choice(WORDS)} of a {subject}"
        for _ in range(5)
    )
    schemas = "\n".join(
        f"    {subject.capitalize()}{rng.choice(WORDS).capitalize()}:\n      type: object"
        for _ in range(3)
    )
    return (
        f"openapi: 3.0.0\ninfo:\n  title: {subject} API\npaths:\n{ops}\n"
        f"components:\n  schemas:\n{schemas}\n"
    )


def entities(count: int, seed: int = 1) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    for i in range(count):
        name = _name(rng, i)
        is_api = i % 7 == 0
        subject = rng.choice(WORDS)
        spec: dict[str, Any] = {
            "type": "openapi"
            if is_api
            else rng.choice(("service", "service", "website", "library")),
            "lifecycle": rng.choice(LIFECYCLES),
            "owner": f"team-{rng.randrange(200)}",
            "system": f"{rng.choice(WORDS)}-system-{rng.randrange(100)}",
            "domain": f"{rng.choice(WORDS)}-domain",
        }
        if is_api:
            spec["definition"] = _openapi(rng, subject)
        body = {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "API" if is_api else "Component",
            "metadata": {
                "name": name,
                "title": f"{subject.capitalize()} {rng.choice(ROLES)} {i}",
                # Two catalog words among ten of a wider vocabulary, as real descriptions go.
                "description": " ".join(
                    [rng.choice(WORDS) for _ in range(2)] + rng.sample(FILLER, 10)
                ),
                "tags": rng.sample(TAGS, 3),
                "labels": {"tier": str(rng.randrange(1, 4))},
            },
            "spec": spec,
        }
        yield f"{body['kind'].lower()}:default/{name}", body


def queries(rng: random.Random) -> Callable[[], SearchQuery]:
    def next_query() -> SearchQuery:
        roll = rng.random()
        highlight = rng.random() < 0.33
        if roll < 0.35:
            return SearchQuery(text=rng.choice(WORDS), highlight=highlight)
        if roll < 0.55:
            return SearchQuery(text=f"{rng.choice(WORDS)} {rng.choice(ROLES)}", highlight=highlight)
        if roll < 0.65:
            return SearchQuery(text=rng.choice(WORDS)[:3], highlight=highlight)
        if roll < 0.75:
            word = list(rng.choice([w for w in WORDS if len(w) > 5]))
            i = rng.randrange(len(word) - 1)
            word[i], word[i + 1] = word[i + 1], word[i]
            return SearchQuery(text="".join(word), highlight=highlight)
        if roll < 0.85:
            return SearchQuery(
                filters={"kind": ["api"], "owner": [f"team-{rng.randrange(200)}"]},
                sort=rng.choice(("name", "updated")),
            )
        return SearchQuery(
            text=rng.choice(WORDS),
            filters={"tag": [rng.choice(TAGS)], "lifecycle": ["production"]},
            highlight=highlight,
        )

    return next_query


def load(index: RebuildableIndex, count: int) -> tuple[float, float]:
    """Bulk-load `count` entities; returns (seconds in apply, seconds until all searchable).

    Documents are built first (not timed: that is the projection's own work, the same for
    every index), then written in batches of 1000 by one writer.
    """
    writes = [
        IndexWrite(ref, version, build_search_document(ref, body, float(version)))
        for version, (ref, body) in enumerate(entities(count), start=1)
    ]
    started = time.perf_counter()
    for at in range(0, len(writes), 1000):
        index.apply(writes[at : at + 1000])
    applied = time.perf_counter() - started
    while index.search(SearchQuery(limit=1)).total < count:
        time.sleep(0.05)
    return applied, time.perf_counter() - started


def closed_loop(
    clients: int, seconds: float, call: Callable[[random.Random], object], think: float = 0.0
) -> tuple[list[float], int]:
    """Each client calls, waits for the answer, then thinks (exponential, mean `think` s).

    The clients stand in for `cairn api`'s handlers, so this process first takes the
    garbage-collector settings every role applies once started (services/collector.py).
    On CPython's defaults, this process's full collections (45-65 ms, every 1.3 s while 16
    clients searched) paused every client at once and went into the search figures."""
    settle_collector()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0]
    deadline = time.perf_counter() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                call(rng)
            except Exception:
                errors[0] += 1
                continue
            latencies[n].append(time.perf_counter() - began)
            if think:
                time.sleep(rng.expovariate(1 / think))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [v for per in latencies for v in per], errors[0]


def figures(values: list[float], seconds: float) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):6.1f} ms  p99 {percentile(ms, 99):6.1f} ms  "
        f"mean {statistics.fmean(ms):6.1f} ms  {len(ms) / seconds:6.0f}/s (n={len(ms)})"
    )


def freshness(index: RebuildableIndex, changes: int, workdir: Path) -> list[float]:
    """Log append -> searchable, through the embedded runner's index projection."""
    log = SqliteEventLog(workdir / "log.db")
    store = SqlCatalogStore(f"sqlite:///{workdir / 'catalog.db'}")
    store.create_schema()
    descriptor = DescriptorProcessor(GitReader(workdir / "mirrors"), store, log.publish_batch, [])
    runner = EmbeddedRunner(log, store, index, descriptor)
    runner.start()
    samples: list[float] = []
    try:
        for i in range(changes):
            token = f"fresh{i}x{uuid.uuid4().hex[:6]}"
            body = {
                "kind": "Component",
                "metadata": {"name": token, "description": "freshness probe"},
                "spec": {"type": "service", "owner": "team-fresh", "lifecycle": "production"},
            }
            change = EntityChanged(
                ref=f"component:default/{token}", location_id="l", location_target="t", entity=body
            )
            started = time.perf_counter()
            log.publish(ENTITY_CHANGES.name, change.ref, change.model_dump_json().encode())
            while index.search(SearchQuery(text=token, limit=1)).total == 0:
                if time.perf_counter() - started > 30:
                    raise SystemExit(f"change {i} not searchable after 30 s")
                time.sleep(0.005)
            samples.append(time.perf_counter() - started)
    finally:
        runner.stop()
        log.close()
        store.close()
    return samples


def run(adapter: str, size: int, args: argparse.Namespace, workdir: Path) -> None:
    index: RebuildableIndex
    workdir.mkdir(parents=True, exist_ok=True)
    alias = f"cairn-bench-{uuid.uuid4().hex[:8]}"
    if adapter == "opensearch":
        index = OpenSearchIndex(
            args.opensearch_url,
            alias,
            refresh_interval=args.refresh_interval,
            refresh=args.refresh,
        )
    else:
        index = Fts5SearchIndex(workdir / f"index-{size}.db")
    index.ensure_ready()
    label = f"{adapter:<10} {size:>7,}"
    try:
        progress(f"{label}: loading")
        applied, visible = load(index, size)
        print(
            f"{label}  indexing   {size / applied:8.0f} docs/s in bulk "
            f"({applied:.1f} s in apply, all searchable after {visible:.1f} s)",
            flush=True,
        )
        if args.skip_search:
            fresh_dir = workdir / "freshness"
            fresh_dir.mkdir()
            samples = freshness(index, args.freshness, fresh_dir)
            print(f"{label}  freshness  {figures(samples, sum(samples))}", flush=True)
            return
        if isinstance(index, OpenSearchIndex):
            index.client.indices.forcemerge(index=alias, params={"max_num_segments": 5})
        make = queries(random.Random(size))
        for _ in range(50):  # warm-up: caches, global ordinals
            index.search(make())
        lock = threading.Lock()

        def one_search(_rng: random.Random) -> object:
            with lock:
                query = make()
            return index.search(query)

        latencies, errors = closed_loop(args.clients, args.seconds, one_search)
        print(f"{label}  search     {figures(latencies, args.seconds)} errors={errors}", flush=True)
        if args.think_ms:
            latencies, errors = closed_loop(
                args.clients, args.seconds, one_search, think=args.think_ms / 1000
            )
            print(
                f"{label}  search*    {figures(latencies, args.seconds)} errors={errors}",
                flush=True,
            )

        def one_suggest(rng: random.Random) -> object:
            return index.suggest(rng.choice(WORDS)[: rng.randrange(1, 6)], 10)

        for clients in (1, args.clients):
            latencies, errors = closed_loop(clients, args.seconds / 2, one_suggest)
            print(
                f"{label}  suggest{clients:<3} {figures(latencies, args.seconds / 2)} "
                f"errors={errors}",
                flush=True,
            )
        if args.freshness:
            fresh_dir = workdir / "freshness"
            fresh_dir.mkdir()
            samples = freshness(index, args.freshness, fresh_dir)
            print(f"{label}  freshness  {figures(samples, sum(samples))}", flush=True)
    finally:
        if isinstance(index, OpenSearchIndex):
            index.client.indices.delete(index=f"{alias}-v*", params={"ignore_unavailable": "true"})
            index.client.indices.delete_index_template(name=f"{alias}-template", ignore=[404])
        index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--opensearch-url", help="needed for --adapters opensearch")
    parser.add_argument("--adapters", nargs="+", default=["opensearch", "fts5"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--freshness", type=int, default=100, help="changes to time (0: skip)")
    parser.add_argument("--refresh-interval", default="500ms", help="OpenSearch refresh interval")
    parser.add_argument(
        "--refresh",
        default="false",
        choices=("false", "wait_for", "true"),
        help="OpenSearch bulk refresh parameter (false: rely on the interval)",
    )
    parser.add_argument("--skip-search", action="store_true", help="only indexing and freshness")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=250.0,
        help="also measure search with clients pausing this long on average (search*; 0: skip)",
    )
    args = parser.parse_args()
    if "opensearch" in args.adapters and not args.opensearch_url:
        raise SystemExit("--opensearch-url is needed (deploy/local/stack up opensearch)")
    workdir = Path(tempfile.mkdtemp(prefix="cairn-search-bench-"))
    try:
        for size in args.sizes:
            for adapter in args.adapters:
                run(adapter, size, args, workdir / f"{adapter}-{size}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
