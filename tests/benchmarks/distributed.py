"""Distributed stack (Kafka + PostgreSQL, roles in separate processes): entity changes per
second into PostgreSQL with 1 and 2 workers, webhook acceptance latency at a fixed rate,
and freshness (202 to visible in the API) at a steady push rate.

    tests/run_with_stack.sh .venv/bin/python -m tests.benchmarks.distributed
    # or, with CAIRN_TEST_KAFKA_BOOTSTRAP and CAIRN_TEST_DATABASE_URL exported:
    .venv/bin/python -m tests.benchmarks.distributed [--only changes,acceptance,freshness]

`changes` is `projection` (the store projection draining a backlog) and `end-to-end`
(webhooks of many-entity repositories); either can be asked for alone.

Every part starts its own installation (Kafka namespace with 12 partitions per topic, fresh
database): `cairn ingest`, `cairn api` and N `cairn processors` as subprocesses, real bare
git repositories reached through `url.<base>.insteadOf`, signed GitHub push webhooks.
The projection and the rate runs (acceptance, freshness) also print each process's CPU
share while they run (cpu_shares.py). Figures only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from services.bus.kafka_log import KafkaEventLog
from services.bus.port import OutgoingRecord
from services.demo.github_payloads import github_headers, push_payload
from services.model.catalog import location_id
from services.model.entity import Entity, finalize_entity
from services.model.events import EntityChanged, RelationRecord
from services.model.relations import derive_relations
from services.model.topics import ENTITY_CHANGES
from services.store.deliveries import SqlDeliveryLedger
from services.store.sql_store import SqlCatalogStore
from tests.benchmarks.common import Workspace, progress, summary
from tests.benchmarks.cpu_shares import CpuShares
from tests.e2e.catalog_files import component, documents
from tests.support.distributed import (
    Cluster,
    FleetRepo,
    Installations,
    build_fleet,
    deliver_push,
    send_pushes,
    start_all,
)
from tests.support.server import CairnProcess, wait_until

PARTITIONS = 12
_STAGES = re.compile(
    r": (read|unchanged) fetch=([\d.]+)ms(?: read=([\d.]+)ms reconcile=([\d.]+)ms)?"
)


def _many(per_repo: int) -> Callable[[int, str, int], tuple[str, dict[str, str]]]:
    def describe(index: int, name: str, revision: int) -> tuple[str, dict[str, str]]:
        names = [f"{name}-c{j}" for j in range(per_repo)]
        text = documents(
            *[
                component(n, owner=f"team-{j % 9}", description=f"{n} r{revision}")
                for j, n in enumerate(names)
            ]
        )
        return text, {f"component:default/{n}": f"{n} r{revision}" for n in names}

    return describe


def _one_per_repo(index: int, name: str, revision: int) -> tuple[str, dict[str, str]]:
    text = component(name, owner=f"team-{index % 9}", description=f"{name} rev {revision}")
    return text, {f"component:default/{name}": f"{name} rev {revision}"}


def _cluster(ws: Workspace, installations: Installations, name: str, workers: int) -> Cluster:
    cluster = Cluster(installations.new(), ws.root / name, ws.git_config, secrets.token_hex(8))
    cluster.start(workers=workers)
    if workers:
        wait_until(
            lambda: cluster.groups_split_over(workers), timeout=120, what="workers in groups"
        )
    return cluster


def _cpu_shares(cluster: Cluster) -> CpuShares:
    """CPU by role while a part runs: the cluster's processes, the stack's, this client."""
    roles = {os.getpid(): "load client"}
    for role, process in (("ingest", cluster.ingest), ("api", cluster.api)):
        if process is not None and process.process is not None:
            roles[process.process.pid] = role
    for worker in cluster.workers:
        if worker.process is not None:
            roles[worker.process.pid] = "workers"
    return CpuShares(roles)


def _stage_medians(workers: list[CairnProcess]) -> str:
    fetch: list[float] = []
    read: list[float] = []
    reconcile: list[float] = []
    for worker in workers:
        for match in _STAGES.finditer(worker.log(full=True)):
            fetch.append(float(match.group(2)))
            if match.group(3):
                read.append(float(match.group(3)))
                reconcile.append(float(match.group(4)))
    parts = [
        f"{label} median {statistics.median(values):.1f} ms (n={len(values)})"
        for label, values in (("fetch", fetch), ("read", read), ("reconcile", reconcile))
        if values
    ]
    return ", ".join(parts) or "no git events logged"


def _wait_for_count(url: str, total: int, timeout: float) -> tuple[float, int, float]:
    """Poll the store: (first time it held a row, how many it held then, time it held all)."""
    store = SqlCatalogStore(url)
    first: tuple[float, int] | None = None
    deadline = time.perf_counter() + timeout
    try:
        while time.perf_counter() < deadline:
            count = store.count_entities()
            now = time.perf_counter()
            if count and first is None:
                first = (now, count)
            if count >= total:
                start, held = first or (now, count)
                return start, held, now
            time.sleep(0.05)
    finally:
        store.close()
    raise SystemExit(f"the store did not reach {total} entities within {timeout:.0f} s")


# --- entity changes per second into PostgreSQL ---------------------------------------------


def measure_end_to_end(
    ws: Workspace, installations: Installations, workers: int, repos: int, per_repo: int
) -> float:
    """Webhooks -> descriptor (git) -> Kafka -> store projection -> PostgreSQL."""
    total = repos * per_repo
    progress(f"end to end: {workers} worker(s), {repos} pushes of {per_repo}-entity repositories")
    cluster = _cluster(ws, installations, f"e2e-{workers}", workers)
    try:
        fleet = build_fleet(
            ws.root, repos, 1, f"chg{workers}-{secrets.token_hex(3)}", describe=_many(per_repo)
        )
        assert cluster.ingest is not None
        started = time.perf_counter()
        statuses = send_pushes(cluster.ingest, [(r, "0" * 40, r.commits[-1]) for r in fleet])
        assert statuses == [202] * len(statuses), statuses
        _first, _held, done = _wait_for_count(cluster.installation.database_url, total, 600)
        progress(f"  {total} entities in {done - started:.2f} s; {_stage_medians(cluster.workers)}")
    finally:
        cluster.stop()
    return total / (done - started)


def _synthetic_changes(count: int) -> list[OutgoingRecord]:
    records = []
    for i in range(count):
        name = f"bench-{i:06d}"
        entity = finalize_entity(
            Entity.model_validate(
                {
                    "apiVersion": "backstage.io/v1alpha1",
                    "kind": "Component",
                    "metadata": {"name": name, "description": f"synthetic component {i}"},
                    "spec": {
                        "type": "service",
                        "lifecycle": "production",
                        "owner": f"team-{i % 40}",
                        "system": f"system-{i % 100}",
                    },
                }
            ),
            location_url=f"https://github.com/acme/bench-{i // 50}/blob/main/catalog-info.yaml",
            origin_location_url=f"https://github.com/acme/bench-{i // 50}",
        )
        target = f"https://github.com/acme/bench-{i // 50}/blob/main/catalog-info.yaml"
        change = EntityChanged(
            ref=str(entity.ref),
            location_id=location_id(target),
            location_target=target,
            entity=entity.to_backstage(),
            relations=[
                RelationRecord(source_ref=e.source_ref, type=e.type, target_ref=e.target_ref)
                for e in derive_relations(entity)
            ],
        )
        records.append(
            OutgoingRecord(ENTITY_CHANGES.name, str(entity.ref), change.model_dump_json().encode())
        )
    return records


def measure_projection(
    ws: Workspace, installations: Installations, workers: int, count: int
) -> float:
    """The store projection alone: `count` entity changes waiting on the topic, then
    `workers` processors start and drain them into an empty database."""
    progress(f"projection: {count} entity changes, {workers} worker(s)")
    installation = installations.new()
    ledger = SqlDeliveryLedger(f"sqlite:///{ws.root / f'ledger-{workers}.db'}")
    ledger.create_schema()
    log = KafkaEventLog(
        installation.env["CAIRN_KAFKA_BOOTSTRAP"],
        ledger,
        namespace=installation.namespace,
        publish_timeout=60,
    )
    changes = _synthetic_changes(count)
    for start in range(0, count, 2000):
        log.publish_batch(changes[start : start + 2000])
    log.close()
    cluster = Cluster(installation, ws.root / f"projection-{workers}", ws.git_config, "x")
    try:
        cluster.workers = [cluster.process("processors", f"w{i}") for i in range(workers)]
        start_all(cluster.workers)
        with _cpu_shares(cluster) as shares:
            first, held, last = _wait_for_count(installation.database_url, count, 600)
        progress(f"  {count - held} entities in {last - first:.2f} s after the first")
        progress("  from the workers' start to the last, " + shares.report(count, "change"))
    finally:
        cluster.stop()
    return (count - held) / max(last - first, 1e-3)


# --- webhook acceptance latency ------------------------------------------------------------


def _open_loop(rate: float, seconds: float, send: Callable[[int], None], threads: int) -> None:
    """Call send(i) at t0 + i/rate (not waiting for earlier calls), for `seconds`."""
    count = int(rate * seconds)
    started = time.perf_counter() + 0.2
    with ThreadPoolExecutor(threads) as pool:
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i)


class _Sender:
    """A lean keep-alive HTTP/1.1 client per thread: the load generator shares the 2 cores
    with the product, and httpx costs about as much CPU per request as the receiver does."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = HTTPConnection(self._host, self._port, timeout=30)
                self._local.connection = connection
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                return int(response.status)
            except ConnectionError:  # RemoteDisconnected, reset, broken pipe
                # The server closed an idle keep-alive connection: one retry on a new one.
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def measure_acceptance(
    ws: Workspace, installations: Installations, rate: float, seconds: float, workers: int
) -> tuple[list[float], dict[int, int], float]:
    """Signed GitHub pushes at `rate`: each one's time from sending to its answer, the
    answers' statuses, and the ingest process's CPU milliseconds per delivery. The
    deliveries are built and signed before the run (a sender's work, not the receiver's)."""
    progress(
        f"acceptance: {rate:.0f} webhooks/s for {seconds:.0f} s ({workers} worker(s) processing)"
    )
    cluster = _cluster(ws, installations, "acceptance", workers)
    try:
        fleet = build_fleet(ws.root, 20, 1, f"acc-{secrets.token_hex(3)}")
        assert cluster.ingest is not None
        ingest = cluster.ingest
        pushes = [(r, "0" * 40, r.commits[-1]) for r in fleet]
        send_pushes(ingest, pushes)  # warm: mirrors cloned, connections open
        deliveries = []
        for i in range(int(rate * seconds)):
            repo, before, after = pushes[i % len(pushes)]
            body = json.dumps(
                push_payload(repo.info, "refs/heads/main", before, after, [])
            ).encode()
            headers = github_headers("push", str(uuid.uuid4()), body, ingest.secret.encode())
            deliveries.append((body, headers))
        sender = _Sender(ingest.base_url)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()

        def send(i: int) -> None:
            body, headers = deliveries[i]
            began = time.perf_counter()
            status = sender.post("/webhooks/github", body, headers)
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
                statuses[status] = statuses.get(status, 0) + 1

        with _cpu_shares(cluster) as shares:
            _open_loop(rate, seconds, send, threads=32)
        cpu_ms = 1000 * shares.cpu_seconds("ingest") / len(deliveries)
        progress("  " + shares.report())
    finally:
        cluster.stop()
    return latencies, statuses, cpu_ms


# --- freshness at a steady push rate -------------------------------------------------------


def _move_branch(repo: FleetRepo, root: Path, sha: str) -> None:
    """Point the bare repository's main branch at `sha` (as a `git push` would)."""
    ref = root / "remotes" / "acme" / f"{repo.info.name}.git" / "refs" / "heads" / "main"
    temp = ref.with_suffix(".tmp")
    temp.write_text(sha + "\n")
    temp.replace(ref)


def measure_freshness(
    ws: Workspace,
    installations: Installations,
    rate: float,
    seconds: float,
    repos: int,
    workers: int,
) -> list[float]:
    pushes = int(rate * seconds)
    commits = pushes // repos + 2
    progress(f"freshness: {rate:.0f} pushes/s for {seconds:.0f} s over {repos} repositories")
    fleet = build_fleet(
        ws.root, repos, commits, f"fresh-{secrets.token_hex(3)}", describe=_one_per_repo
    )
    for repo in fleet:
        _move_branch(repo, ws.root, repo.commits[0])
    cluster = _cluster(ws, installations, "freshness", workers)
    try:
        assert cluster.ingest is not None and cluster.api is not None
        ingest, api = cluster.ingest, cluster.api
        send_pushes(ingest, [(r, "0" * 40, r.commits[0]) for r in fleet])
        wait_until(lambda: len(cluster.catalog()) == repos, timeout=120, what="warm-up")

        accepted: dict[tuple[str, int], float] = {}
        seen: dict[str, int] = {}
        samples: list[float] = []
        lock = threading.Lock()
        local = threading.local()
        stop = threading.Event()

        def send(i: int) -> None:
            repo = fleet[i % repos]
            revision = 2 + i // repos  # 1-based revision this push makes the head
            before, after = repo.commits[revision - 2], repo.commits[revision - 1]
            with lock:
                _move_branch(repo, ws.root, after)
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=30)
            response = deliver_push(client, ingest, (repo, before, after))
            if response.status_code == 202:
                with lock:
                    accepted[(repo.info.name, revision)] = time.perf_counter()

        def watch() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    body = client.get(
                        f"{api.base_url}/api/catalog/entities", params={"fields": "metadata"}
                    ).json()
                    now = time.perf_counter()
                    with lock:
                        for entity in body:
                            name = entity["metadata"]["name"]
                            revision = int(entity["metadata"]["description"].rsplit(" ", 1)[1])
                            for r in range(seen.get(name, 1) + 1, revision + 1):
                                if (name, r) in accepted:
                                    samples.append(max(0.0, now - accepted[(name, r)]))
                            seen[name] = max(seen.get(name, 1), revision)
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with _cpu_shares(cluster) as shares:
            _open_loop(rate, seconds, send, threads=32)
        progress("  while pushing, " + shares.report(per=pushes, unit="push"))
        deadline = time.perf_counter() + 120
        while len(samples) < len(accepted) and time.perf_counter() < deadline:
            time.sleep(0.2)
        stop.set()
        watcher.join()
        progress(
            f"  {len(samples)}/{len(accepted)} accepted pushes seen; "
            + _stage_medians(cluster.workers)
        )
    finally:
        cluster.stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="changes,acceptance,freshness")
    parser.add_argument("--changes", type=int, default=20000, help="entity changes to drain")
    parser.add_argument("--repos", type=int, default=60, help="repositories, end-to-end run")
    parser.add_argument("--per-repo", type=int, default=50, help="entities per repository")
    parser.add_argument("--rate", type=float, default=200, help="webhooks/s, acceptance")
    parser.add_argument(
        "--acceptance-workers",
        type=int,
        default=1,
        help="processors running during the acceptance run (0: the ingest alone)",
    )
    parser.add_argument("--fresh-rate", type=float, default=100, help="pushes/s, freshness")
    parser.add_argument("--seconds", type=float, default=15, help="length of the rate runs")
    parser.add_argument("--fresh-repos", type=int, default=100)
    parser.add_argument("--fresh-workers", type=int, default=2)
    args = parser.parse_args()
    parts = set(args.only.split(","))
    ws = Workspace()
    installations = Installations(partitions=PARTITIONS)
    lines: list[str] = []
    try:
        if parts & {"changes", "projection"}:
            for workers in (1, 2):
                rate = measure_projection(ws, installations, workers, args.changes)
                lines.append(
                    f"entity changes/s into PostgreSQL, {workers} worker(s), store projection "
                    f"draining {args.changes} changes: {rate:.0f}"
                )
        if parts & {"changes", "end-to-end"}:
            for workers in (1, 2):
                rate = measure_end_to_end(ws, installations, workers, args.repos, args.per_repo)
                lines.append(
                    f"entity changes/s into PostgreSQL, {workers} worker(s), end to end from "
                    f"{args.repos} webhooks of {args.per_repo}-entity repositories: {rate:.0f}"
                )
        if "acceptance" in parts:
            latencies, statuses, cpu_ms = measure_acceptance(
                ws, installations, args.rate, args.seconds, args.acceptance_workers
            )
            lines.append(
                f"webhook acceptance at {args.rate:.0f}/s ({args.acceptance_workers} worker(s) "
                f"processing): {summary(latencies)}; "
                f"max {max(latencies) * 1000:.1f} ms; statuses {statuses}; "
                f"ingest CPU {cpu_ms:.2f} ms per webhook"
            )
        if "freshness" in parts:
            samples = measure_freshness(
                ws,
                installations,
                args.fresh_rate,
                args.seconds,
                args.fresh_repos,
                args.fresh_workers,
            )
            lines.append(
                f"freshness 202 -> visible in /api/catalog/entities at {args.fresh_rate:.0f} "
                f"pushes/s ({args.fresh_workers} workers): {summary(samples)}"
            )
    finally:
        installations.close()
        ws.close()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
