"""CI/CD events on the distributed stack: `cairn ingest`, `cairn api` and a `cairn processors`
worker (faust) as separate processes. A GitHub deployment and a CDEvents service deployment
reach `/api/deployments` and the entity's environments through the API process, the worker
projects them into its search index, `cairn up` on the same Kafka takes over the
deployment processor's consumer group where the worker left it, and `cairn replay` of that
group makes a new worker re-read everything into the same states."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.bus.topics_admin import physical_name
from services.demo.ci_payloads import (
    cdevent,
    cloud_event_structured,
    github_deployment_payload,
    github_deployment_status_payload,
    iso,
)
from services.demo.github_payloads import CommitInfo, push_payload
from services.index.fts5 import Fts5SearchIndex
from services.index.port import SearchQuery
from services.model.topics import CI_EVENTS
from tests.e2e.catalog_files import component
from tests.e2e.conftest import Workspace
from tests.support import kafka
from tests.support.distributed import Cluster, Installations, run_cairn
from tests.support.server import CairnProcess, wait_until

TOKEN = secrets.token_hex(16)


@pytest.fixture
def cluster(workspace: Workspace, tmp_path: Path) -> Iterator[Cluster]:
    installations = Installations()
    made = Cluster(
        installations.new(), tmp_path, workspace.git_config, secret=secrets.token_hex(16)
    )
    yield made
    made.stop()
    installations.close()


def _deployments(api: CairnProcess, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/api/deployments", **params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _environments(
    api: CairnProcess,
    name: str,
    *,
    having: set[str] | None = None,
    last_status: tuple[str, str] | None = None,
) -> dict[str, dict[str, Any]] | None:
    """The entity's environments by name, once they are the ones `having` names and the
    `last_status` (environment, status) holds; None before."""
    entity = api.entity("component", name)
    states = (entity or {}).get("status", {}).get("deployments", [])
    environments = {state["environment"]: state for state in states}
    if having is not None and set(environments) != having:
        return None
    if last_status is not None:
        environment, status = last_status
        if environments.get(environment, {}).get("lastStatus") != status:
            return None
    return environments


def _deployed_to(cluster: Cluster, name: str, environment: str) -> list[str]:
    """Refs the search index finds for `name` deployed to `environment`: through the API
    when the installation shares an OpenSearch index, else in the worker's own FTS5 index."""
    assert cluster.api is not None
    if "CAIRN_OPENSEARCH_URL" in cluster.installation.env:
        hits = cluster.api.search(q=name, deployed_to=environment)["items"]
        return [hit["ref"] for hit in hits]
    index = Fts5SearchIndex(cluster.workers[0].data_dir / "index.db")
    try:
        page = index.search(SearchQuery(text=name, filters={"deployed_to": [environment]}))
    finally:
        index.close()
    return [hit.ref for hit in page.items]


def _ci_events_read(log_text: str) -> int:
    """CI/CD events the embedded runner's deployment loop handled, from its log lines."""
    return sum(int(n) for n in re.findall(rf"(\d+) from {re.escape(CI_EVENTS.name)}", log_text))


def test_deployments_reach_the_api_through_the_faust_worker_and_cairn_up_takes_over(
    cluster: Cluster, workspace: Workspace
) -> None:
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    ref = f"component:default/{name}"
    cluster.start(workers=1, CAIRN_CDEVENTS_TOKEN=TOKEN)
    ingest, api = cluster.ingest, cluster.api
    assert ingest is not None and api is not None

    repo, info = workspace.repo(name)
    annotated = component(name).replace(
        "metadata:\n", f"metadata:\n  annotations:\n    cairn.dev/deployment-name: {name}\n", 1
    )
    before, sha = repo.commit_and_push({"catalog-info.yaml": annotated})
    committed = datetime.fromisoformat(repo.commit_timestamp()).astimezone(UTC)
    commit = CommitInfo(id=sha, tree_id="0" * 40, message="change", timestamp=iso(committed))
    push = push_payload(info, "refs/heads/main", before, sha, [commit])
    assert ingest.send("push", push).status_code == 202
    wait_until(lambda: api.entity("component", name), timeout=60, what=f"{name} in the catalog")

    created = datetime.now(UTC).replace(microsecond=0)
    done = created + timedelta(seconds=40)
    deployment = github_deployment_payload(info, 901, sha=sha, created_at=created)
    assert ingest.send("deployment", deployment).json()["status"] == "accepted"
    for state, at in (("in_progress", created + timedelta(seconds=5)), ("success", done)):
        status = github_deployment_status_payload(
            info, 901, state, sha=sha, created_at=created, at=at
        )
        assert ingest.send("deployment_status", status).status_code == 202
    deployed = cdevent(
        "dev.cdevents.service.deployed.0.3.0",
        f"service/{name}",
        {"environment": {"id": "staging"}, "artifactId": f"pkg:oci/{name}@sha256%3Abeef"},
        spec="0.5.1",
        at=created,
    )
    body, headers = cloud_event_structured(deployed, TOKEN)
    answer = ingest.post_webhook("/events/cdevents", body, headers)
    assert answer.status_code == 202 and answer.json()["status"] == "accepted", answer.text

    environments = wait_until(
        lambda: _environments(api, name, having={"production", "staging"}),
        timeout=60,
        what="production and staging on the entity",
    )
    assert (environments["production"]["version"], environments["production"]["lastStatus"]) == (
        sha,
        "success",
    )
    assert environments["staging"]["version"] == "sha256:beef"

    [production] = _deployments(api, entity=ref, environment="production")
    assert (production["status"], production["entities"]) == ("success", [ref])
    assert production["lead_time_seconds"] == (done - committed).total_seconds()
    [staging] = _deployments(api, entity=ref, environment="staging")
    assert staging["matched"] is True and staging["version"] == "sha256:beef"

    assert wait_until(
        lambda: _deployed_to(cluster, name, "production"),
        timeout=60,
        what="the deployment in the search index",
    ) == [ref]
    assert _deployed_to(cluster, name, "qa") == []

    # The worker's consumer group is the embedded runner's: once it committed the four
    # CI/CD events, `cairn up` on the same Kafka and database reads only what follows.
    namespace = cluster.installation.namespace
    group = physical_name(namespace, "cairn-deployments")
    topic = physical_name(namespace, CI_EVENTS.name)
    wait_until(
        lambda: kafka.group_committed(kafka.bootstrap(), group, topic) == 4,
        timeout=60,
        what="the worker's deployments group past the four CI/CD events",
    )
    for worker in cluster.workers:
        worker.stop()
    up = cluster.process("up", "up", CAIRN_CDEVENTS_TOKEN=TOKEN).start()
    try:
        failed_at = done + timedelta(minutes=5)
        failure = github_deployment_status_payload(
            info, 902, "failure", sha="e" * 40, created_at=failed_at, at=failed_at
        )
        assert up.send("deployment_status", failure).status_code == 202
        latest = wait_until(
            lambda: _environments(api, name, last_status=("production", "failure")),
            timeout=60,
            what="the failed deployment on the entity",
        )
        assert latest["production"]["version"] == sha  # the failure did not replace it
        # The runner logs a batch after its writes are visible: wait for the line.
        wait_until(lambda: _ci_events_read(up.log(full=True)), what="the runner's log line")
        assert _ci_events_read(up.log(full=True)) == 1
    finally:
        up.stop()

    # Replaying the group from the start through a new worker converges to the same states.
    replayed = run_cairn(cluster.installation.env, "replay", "--group", "deployments")
    assert topic in replayed.stdout and physical_name(namespace, "cairn.git.events") in (
        replayed.stdout
    )
    assert kafka.group_committed(kafka.bootstrap(), group, topic) == 0
    cluster.add_worker("replayer")
    wait_until(
        lambda: kafka.group_committed(kafka.bootstrap(), group, topic) == 5,
        timeout=90,
        what="the replayed group past all five CI/CD events",
    )
    assert _environments(api, name) == latest
