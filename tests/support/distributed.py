"""Cairn on the distributed stack for end-to-end tests: Kafka, PostgreSQL and OpenSearch,
addressed by the CAIRN_TEST_* variables `make test` exports.

An installation is what one Cairn deployment owns: a Kafka namespace (its topics and
consumer groups) and a database of its own. Before any process of an installation starts,
`cairn topics` and `cairn db upgrade` are run with its settings, as an operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.bus.topics_admin import group_assignments, physical_name
from services.demo.github_payloads import GitHubRepoInfo, github_headers, push_payload
from tests.e2e.catalog_files import component, documents
from tests.support import kafka, postgres
from tests.support.server import CAIRN, CairnProcess

PROCESSOR_GROUPS = ("cairn-descriptor", "cairn-store-projection", "cairn-index-projection")
INDEX_ADAPTER = Path(__file__).resolve().parents[2] / "services" / "index" / "opensearch_index.py"
OPENSEARCH_ENV = "CAIRN_TEST_OPENSEARCH_URL"
# The distributed e2e installations index into OpenSearch (an alias of their own), which
# keeps deployments beside the entities like FTS5 does (issue 6). False makes each process
# index into FTS5 in its data dir instead (e.g. to tell an OpenSearch problem apart).
USE_OPENSEARCH = True


def opensearch_url() -> str | None:
    """The stack's OpenSearch (failing if it is not set); None when USE_OPENSEARCH is off
    and the index is FTS5 in each process's data dir."""
    if not INDEX_ADAPTER.exists() or not USE_OPENSEARCH:
        return None
    value = os.environ.get(OPENSEARCH_ENV)
    if not value:
        pytest.fail(f"{OPENSEARCH_ENV} is not set: run the tests with `make test`.", pytrace=False)
    return value


def run_cairn(
    env: dict[str, str], *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a `cairn` command with exactly these CAIRN_* settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    full.update(env)
    done = subprocess.run(
        [str(CAIRN), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"cairn {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done


@dataclass
class Installation:
    namespace: str
    database_url: str
    env: dict[str, str]


@dataclass
class Installations:
    """Installations made on demand (one per key, e.g. per data dir) and removed at close."""

    partitions: int = 4
    session_timeout: float = 6.0
    _made: dict[str, Installation] = field(default_factory=dict)
    _cleanup: ExitStack = field(default_factory=ExitStack)

    def get(self, key: str | Path) -> Installation:
        name = str(key)
        if name not in self._made:
            self._made[name] = self._create()
        return self._made[name]

    def new(self) -> Installation:
        return self._create()

    def _create(self) -> Installation:
        bootstrap = kafka.bootstrap()
        database = self._cleanup.enter_context(postgres.fresh_database())
        namespace = kafka.fresh_namespace()
        env = {
            "CAIRN_KAFKA_BOOTSTRAP": bootstrap,
            "CAIRN_KAFKA_NAMESPACE": namespace,
            "CAIRN_DATABASE_URL": database,
            "CAIRN_TOPIC_PARTITIONS": str(self.partitions),
            "CAIRN_KAFKA_SESSION_TIMEOUT_SECONDS": str(self.session_timeout),
        }
        search = opensearch_url()
        if search is not None:
            # The installation's own alias (and indexes behind it), removed at close.
            alias = f"{namespace}entities"
            env.update({"CAIRN_OPENSEARCH_URL": search, "CAIRN_OPENSEARCH_INDEX": alias})
            self._cleanup.callback(delete_indexes, search, alias)
        # As an operator would before starting any role (at once: they are independent).
        with ThreadPoolExecutor(2) as pool:
            for done in pool.map(
                lambda args: run_cairn(env, *args), [("topics",), ("db", "upgrade")]
            ):
                assert done.returncode == 0
        self._cleanup.callback(kafka.delete_topics, bootstrap, namespace)
        return Installation(namespace=namespace, database_url=database, env=env)

    def close(self) -> None:
        self._cleanup.close()


def delete_indexes(url: str, alias: str) -> None:
    """Remove an installation's OpenSearch indexes (`<alias>-v<N>-<stamp>`)."""
    httpx.delete(f"{url.rstrip('/')}/{alias}-*", params={"ignore_unavailable": "true"}, timeout=30)


# --- many small repositories, cheaply -------------------------------------------------

_COMMITTER = "Cairn Tests <tests@cairn.invalid>"


@dataclass
class FleetRepo:
    info: GitHubRepoInfo
    commits: list[str]  # shas, oldest first
    expected: dict[str, str]  # entity ref -> description, after the last commit


def fleet_descriptor(index: int, name: str, revision: int) -> str:
    """Repository `index` at `revision`: a component; even repositories add a worker at
    even revisions (so intermediate revisions differ from the final one)."""
    texts = [component(name, owner=f"team-{index % 7}", description=f"{name} revision {revision}")]
    if index % 2 == 0 and revision % 2 == 0:
        texts.append(
            component(f"{name}-worker", owner=f"team-{index % 7}", description=f"worker {revision}")
        )
    return documents(*texts)


def fleet_expected(index: int, name: str, revision: int) -> dict[str, str]:
    expected = {f"component:default/{name}": f"{name} revision {revision}"}
    if index % 2 == 0 and revision % 2 == 0:
        expected[f"component:default/{name}-worker"] = f"worker {revision}"
    return expected


Describe = Callable[[int, str, int], tuple[str, dict[str, str]]]


def describe_fleet_repo(index: int, name: str, revision: int) -> tuple[str, dict[str, str]]:
    return fleet_descriptor(index, name, revision), fleet_expected(index, name, revision)


def build_fleet(
    root: Path,
    count: int,
    commits: int,
    prefix: str,
    host_base: str = "https://github.com/",
    describe: Describe = describe_fleet_repo,
) -> list[FleetRepo]:
    """`count` bare repositories under root/remotes/acme with `commits` commits each, written
    with one `git fast-import` per repository (an empty bare repository is copied).
    `describe(index, name, revision)` gives the catalog file and the entities it means."""
    template = root / "fleet-template.git"
    if not template.exists():
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(template)],
            check=True,
        )
    fleet: list[FleetRepo] = []
    for index in range(count):
        name = f"{prefix}-{index:03d}"
        bare = root / "remotes" / "acme" / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(template, bare)
        stream = bytearray()
        for revision in range(1, commits + 1):
            text = describe(index, name, revision)[0].encode()
            message = f"revision {revision}".encode()
            stream += b"commit refs/heads/main\n"
            stream += f"mark :{revision}\n".encode()
            stream += f"committer {_COMMITTER} {1_700_000_000 + revision} +0000\n".encode()
            stream += f"data {len(message)}\n".encode() + message + b"\n"
            stream += b"M 100644 inline catalog-info.yaml\n"
            stream += f"data {len(text)}\n".encode() + text + b"\n\n"
        marks = bare / "marks"
        subprocess.run(
            ["git", "fast-import", "--quiet", f"--export-marks={marks}"],
            cwd=bare,
            input=bytes(stream),
            check=True,
            env={**os.environ, "GIT_DIR": str(bare)},
        )
        by_mark = dict(line.split() for line in marks.read_text().splitlines())
        marks.unlink()
        fleet.append(
            FleetRepo(
                info=GitHubRepoInfo(
                    owner="acme",
                    name=name,
                    clone_url=f"{host_base}acme/{name}.git",
                    html_url=f"{host_base}acme/{name}",
                    default_branch="main",
                ),
                commits=[by_mark[f":{revision}"] for revision in range(1, commits + 1)],
                expected=describe(index, name, commits)[1],
            )
        )
    return fleet


def fleet_pushes(fleet: list[FleetRepo]) -> list[tuple[FleetRepo, str, str]]:
    """Every repository's pushes, one per commit, a repository's pushes one after another
    (a burst per repository, as when a branch is pushed commit by commit)."""
    return [
        (repo, repo.commits[i - 1] if i else "0" * 40, sha)
        for repo in fleet
        for i, sha in enumerate(repo.commits)
    ]


# --- the roles as separate processes ----------------------------------------------------


@dataclass
class Cluster:
    """`cairn ingest`, `cairn api` and N `cairn processors`, each its own process."""

    installation: Installation
    root: Path
    git_config: Path
    secret: str
    ingest: CairnProcess | None = None
    api: CairnProcess | None = None
    workers: list[CairnProcess] = field(default_factory=list)

    def process(self, command: str, name: str, **env: str) -> CairnProcess:
        data_dir = self.root / name / "data"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        return CairnProcess(
            data_dir=data_dir,
            secret=self.secret,
            git_config=self.git_config,
            extra_env={**self.installation.env, **env},
            command=command,
        )

    def start(self, workers: int, **env: str) -> Cluster:
        self.ingest = self.process("ingest", "ingest", **env)
        self.api = self.process("api", "api", **env)
        self.workers = [self.process("processors", f"worker-{i}", **env) for i in range(workers)]
        start_all([self.ingest, self.api, *self.workers])
        return self

    def add_worker(self, name: str, **env: str) -> CairnProcess:
        worker = self.process("processors", name, **env)
        self.workers.append(worker)
        return worker.start()

    def stop(self) -> None:
        for process in [*self.workers, self.ingest, self.api]:
            if process is not None:
                process.stop()

    def partition_shares(self) -> dict[str, list[int]]:
        """Per processors' consumer group: how many partitions each member holds."""
        namespace = self.installation.namespace
        return {
            group: sorted(
                len(held)
                for held in group_assignments(
                    kafka.bootstrap(), physical_name(namespace, group)
                ).values()
            )
            for group in PROCESSOR_GROUPS
        }

    def groups_split_over(self, members: int) -> dict[str, list[int]] | None:
        """The shares, once every group has exactly `members` members each holding some."""
        shares = self.partition_shares()
        ok = all(len(held) == members and min(held) > 0 for held in shares.values())
        return shares if ok else None

    def catalog(self) -> dict[str, str]:
        """Every entity the API serves (from the store): ref -> description."""
        assert self.api is not None
        response = self.api.get("/api/catalog/entities", fields="kind,metadata")
        assert response.status_code == 200, response.text
        return {
            f"{e['kind'].lower()}:{e['metadata'].get('namespace', 'default')}/"
            f"{e['metadata']['name']}": e["metadata"].get("description", "")
            for e in response.json()
        }


def start_all(processes: list[CairnProcess]) -> None:
    """Start processes at once (each waits until it answers /readyz)."""
    errors: list[BaseException] = []

    def start(process: CairnProcess) -> None:
        try:
            process.start()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def deliver_push(
    client: httpx.Client,
    ingest: CairnProcess,
    push: tuple[FleetRepo, str, str],
    delivery: str | None = None,
) -> httpx.Response:
    """One push delivered as GitHub would (signed); `delivery` repeats a delivery id."""
    repo, before, after = push
    body = json.dumps(push_payload(repo.info, "refs/heads/main", before, after, [])).encode()
    headers = github_headers("push", delivery or str(uuid.uuid4()), body, ingest.secret.encode())
    return client.post(f"{ingest.base_url}/webhooks/github", content=body, headers=headers)


def send_pushes(
    ingest: CairnProcess, pushes: list[tuple[FleetRepo, str, str]], concurrency: int = 8
) -> list[int]:
    """Deliver the pushes, several at once; their status codes."""
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(concurrency) as pool:
        return [
            response.status_code
            for response in pool.map(lambda push: deliver_push(client, ingest, push), pushes)
        ]
