"""GitHub deployments and workflow runs through `cairn up`: attached to the repository's
component, shown by the entity, by search and by /api/deployments and /api/pipelines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.demo.ci_payloads import (
    github_deployment_payload,
    github_deployment_status_payload,
    github_workflow_run_payload,
    iso,
)
from services.demo.github_payloads import CommitInfo, GitHubRepoInfo, push_payload
from tests.e2e.catalog_files import component
from tests.e2e.conftest import Workspace
from tests.support.server import CairnProcess, wait_until


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _publish(
    cairn: CairnProcess, workspace: Workspace, name: str
) -> tuple[GitHubRepoInfo, str, datetime]:
    """A repository holding one component, pushed with its commit's time."""
    repo, info = workspace.repo(name)
    before, after = repo.commit_and_push({"catalog-info.yaml": component(name)})
    committed = datetime.fromisoformat(repo.commit_timestamp()).astimezone(UTC)
    commit = CommitInfo(id=after, tree_id="0" * 40, message="change", timestamp=iso(committed))
    payload = push_payload(info, "refs/heads/main", before, after, [commit])
    assert cairn.send("push", payload).status_code == 202
    wait_until(lambda: cairn.entity("component", name), what=f"{name} in the catalog")
    return info, after, committed


def _deployments(cairn: CairnProcess, **params: Any) -> list[dict[str, Any]]:
    response = cairn.get("/api/deployments", **params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_deployment_states_sent_out_of_order_end_in_success_on_the_entity(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    name = _name("payments")
    info, sha, committed = _publish(cairn, workspace, name)
    ref = f"component:default/{name}"
    created = datetime.now(UTC).replace(microsecond=0)
    done = created + timedelta(seconds=20)
    assert (
        cairn.send(
            "deployment", github_deployment_payload(info, 501, sha=sha, created_at=created)
        ).json()["status"]
        == "accepted"
    )
    for state, at in (("success", done), ("in_progress", done), ("queued", created)):
        payload = github_deployment_status_payload(
            info, 501, state, sha=sha, created_at=created, at=at
        )
        assert cairn.send("deployment_status", payload).status_code == 202

    def settled() -> list[dict[str, Any]]:
        items = _deployments(cairn, entity=ref)
        return items if items and len(items[0]["transitions"]) == 4 else []

    [deployment] = wait_until(settled, what="all four states merged")
    assert deployment["status"] == "success"
    assert [t["status"] for t in deployment["transitions"]] == [
        "pending",
        "queued",
        "in_progress",
        "success",
    ]
    assert (deployment["environment"], deployment["version"]) == ("production", sha)
    assert deployment["entities"] == [ref] and deployment["triggered_by"] == "acme-deployer"
    assert deployment["lead_time_seconds"] == (done - committed).total_seconds()

    entity = cairn.entity_when("component", name)
    [production] = entity["status"]["deployments"]
    assert (production["environment"], production["version"], production["lastStatus"]) == (
        "production",
        sha,
        "success",
    )
    links = {link["type"]: link["url"] for link in entity["metadata"]["links"]}
    assert "entity=component%3Adefault%2F" in links["cairn.dev/deployments"]
    hits = wait_until(
        lambda: cairn.search(q=name, deployed_to="production")["items"],
        what="the deployment in the search index",
    )
    assert [(h["ref"], h["deployments"][0]["version"]) for h in hits] == [(ref, sha)]
    assert cairn.search(q=name, deployed_to="staging")["items"] == []


def test_a_failed_deployment_shows_as_the_last_outcome_while_the_old_version_runs(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    name = _name("orders")
    info, sha, _committed = _publish(cairn, workspace, name)
    at = datetime.now(UTC).replace(microsecond=0)
    for number, state, version, when in (
        (601, "success", sha, at),
        (602, "failure", "f" * 40, at + timedelta(minutes=1)),
    ):
        payload = github_deployment_status_payload(
            info, number, state, sha=version, created_at=when, at=when
        )
        assert cairn.send("deployment_status", payload).status_code == 202
    wait_until(
        lambda: cairn.search(q=name, last_deploy_status="failure", deployed_since="1h")["items"],
        what="the failure searchable",
    )
    entity = cairn.entity_when("component", name)
    [production] = entity["status"]["deployments"]
    assert (production["version"], production["lastStatus"], production["lastVersion"]) == (
        sha,
        "failure",
        "f" * 40,
    )


def test_workflow_runs_are_listed_as_pipeline_runs(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    name = _name("builds")
    info, sha, _committed = _publish(cairn, workspace, name)
    start = datetime.now(UTC).replace(microsecond=0)
    for action in ("completed", "requested", "in_progress"):
        payload = github_workflow_run_payload(
            info,
            7001,
            action,
            head_sha=sha,
            started_at=start,
            updated_at=start + timedelta(seconds=75),
            conclusion="failure",
        )
        assert cairn.send("workflow_run", payload).status_code == 202

    def finished() -> list[dict[str, Any]]:
        items = cairn.get("/api/pipelines", entity=name).json()["items"]
        return items if items and len(items[0]["transitions"]) == 3 else []

    [run] = wait_until(finished, what="the run's three states")
    assert (run["status"], run["branch"], run["commit"]) == ("failure", "main", sha)
    assert run["duration_seconds"] == 75.0 and run["pipeline"] == "CI"


def test_a_deployment_with_a_bad_signature_is_refused(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    _repo, info = workspace.repo(_name("unsigned"))
    now = datetime.now(UTC)
    payload = github_deployment_status_payload(
        info, 1, "success", sha="a" * 40, created_at=now, at=now
    )
    response = cairn.send("deployment_status", payload, secret="wrong-secret")
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
