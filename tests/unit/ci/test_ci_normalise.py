"""Every CI/CD source normalises into `CiEventReceived` as documented: GitHub deployments,
statuses and workflow runs, GitLab deployment and pipeline hooks, every CDEvents
conformance example (used ones become changes, the others are ignored with a reason), and
the generic deployment report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest import cdevents, github, gitlab
from ingest.common import Ignored, MalformedPayload, Rejected
from ingest.deployments_api import normalise_deployment, verify_bearer
from services.demo.ci_payloads import (
    cdevent,
    cloud_event_binary,
    cloud_event_structured,
    deployment_report,
    github_deployment_payload,
    github_deployment_status_payload,
    github_workflow_run_payload,
    gitlab_deployment_payload,
    gitlab_pipeline_payload,
)
from services.demo.github_payloads import GitHubRepoInfo
from services.demo.gitlab_payloads import GitLabProjectInfo
from services.model.ci_events import (
    ChangeMerged,
    CiEventReceived,
    DeploymentReported,
    IncidentReported,
    PipelineRunReported,
)
from tests.conftest import SHARED_DATA

CONFORMANCE = SHARED_DATA / "cdevents-conformance"
EXAMPLES = sorted(CONFORMANCE.glob("v*/*.json"))
USED = {
    "service_deployed": DeploymentReported,
    "service_upgraded": DeploymentReported,
    "service_rolledback": DeploymentReported,
    "service_removed": DeploymentReported,
    "pipelinerun_queued": PipelineRunReported,
    "pipelinerun_started": PipelineRunReported,
    "pipelinerun_finished": PipelineRunReported,
    "incident_detected": IncidentReported,
    "incident_reported": IncidentReported,
    "incident_resolved": IncidentReported,
    "change_merged": ChangeMerged,
}
REPO = GitHubRepoInfo(
    owner="Acme",
    name="Payments",
    clone_url="https://github.com/Acme/Payments.git",
    html_url="https://github.com/Acme/Payments",
)
PROJECT = GitLabProjectInfo("acme/platform/payments", "https://gitlab.com/acme/platform/payments")
SHA = "a1" * 20
T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def envelope(outcome: CiEventReceived | Ignored | Any) -> CiEventReceived:
    assert isinstance(outcome, CiEventReceived), outcome
    return outcome


# --- GitHub --------------------------------------------------------------------------


def test_a_github_deployment_is_pending_until_a_status_arrives() -> None:
    payload = github_deployment_payload(REPO, 77, sha=SHA, ref="v1.4.2", created_at=T0)
    event = envelope(github.normalise("deployment", "d-1", payload))
    change = event.change
    assert isinstance(change, DeploymentReported)
    assert (event.source, event.key) == ("github", "github.com/acme/payments")
    assert event.subject.project_slug == "Acme/Payments"
    assert event.subject.slug_annotation == "github.com/project-slug"
    assert (change.deployment_id, change.status) == ("github.com/acme/payments#77", "pending")
    assert (change.version, change.version_kind, change.commit) == ("v1.4.2", "tag", SHA)
    assert (change.occurred_at, change.started_at) == (T0, T0)
    assert change.triggered_by == "acme-deployer"


@pytest.mark.parametrize(
    "state", ["pending", "queued", "in_progress", "success", "failure", "error", "inactive"]
)
def test_every_github_deployment_state_is_kept(state: str) -> None:
    at = T0 + timedelta(minutes=2)
    payload = github_deployment_status_payload(
        REPO, 77, state, sha=SHA, created_at=T0, at=at, environment_url="https://pay.acme.test"
    )
    change = envelope(github.normalise("deployment_status", "d-2", payload)).change
    assert isinstance(change, DeploymentReported)
    assert (change.status, change.occurred_at, change.environment) == (state, at, "production")
    assert change.version == SHA and change.version_kind == "commit"
    assert change.url is not None and "/actions/runs/" in change.url
    assert change.environment_url == "https://pay.acme.test"


def test_an_unknown_github_deployment_state_names_the_field() -> None:
    payload = github_deployment_status_payload(REPO, 1, "exploded", sha=SHA, created_at=T0, at=T0)
    with pytest.raises(MalformedPayload, match=r"deployment_status\.state"):
        github.normalise("deployment_status", "d", payload)


@pytest.mark.parametrize(
    ("action", "conclusion", "status"),
    [
        ("requested", None, "queued"),
        ("in_progress", None, "in_progress"),
        ("completed", "success", "success"),
        ("completed", "failure", "failure"),
        ("completed", "timed_out", "failure"),
        ("completed", "cancelled", "cancelled"),
        ("completed", "skipped", "skipped"),
    ],
)
def test_github_workflow_runs_become_pipeline_runs(
    action: str, conclusion: str | None, status: str
) -> None:
    payload = github_workflow_run_payload(
        REPO,
        9001,
        action,
        head_sha=SHA,
        head_branch="feature/x",
        started_at=T0,
        updated_at=T0 + timedelta(seconds=95),
        conclusion=conclusion,
        run_attempt=2,
    )
    change = envelope(github.normalise("workflow_run", "d-3", payload)).change
    assert isinstance(change, PipelineRunReported)
    assert change.run_id == "github.com/acme/payments#9001/2"
    assert (change.status, change.branch, change.commit) == (status, "feature/x", SHA)
    assert change.duration_seconds == (95.0 if action == "completed" else None)
    assert change.triggered_by == "acme-dev"


# --- GitLab --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("running", "in_progress"),
        ("success", "success"),
        ("failed", "failure"),
        ("canceled", "cancelled"),
    ],
)
def test_gitlab_deployment_hooks_become_deployments(status: str, expected: str) -> None:
    payload = gitlab_deployment_payload(PROJECT, 31, status, sha=SHA, at=T0, environment="staging")
    event = envelope(gitlab.normalise("Deployment Hook", "k", payload))
    change = event.change
    assert isinstance(change, DeploymentReported)
    assert event.key == "gitlab.com/acme/platform/payments"
    assert (event.subject.project_slug, event.subject.slug_annotation) == (
        "acme/platform/payments",
        "gitlab.com/project-slug",
    )
    assert (change.deployment_id, change.status) == (
        "gitlab.com/acme/platform/payments#31",
        expected,
    )
    assert (change.environment, change.commit, change.occurred_at) == ("staging", SHA, T0)
    assert change.url is not None and "/-/jobs/" in change.url
    assert change.triggered_by == "acme-demo-bot"


def test_gitlab_pipeline_hooks_become_pipeline_runs() -> None:
    payload = gitlab_pipeline_payload(
        PROJECT, 555, "success", sha=SHA, created_at=T0, finished_at=T0 + timedelta(minutes=4)
    )
    change = envelope(gitlab.normalise("Pipeline Hook", "k", payload)).change
    assert isinstance(change, PipelineRunReported)
    assert (change.status, change.branch, change.commit) == ("success", "main", SHA)
    assert (change.duration_seconds, change.finished_at) == (240.0, T0 + timedelta(minutes=4))
    tag = gitlab_pipeline_payload(PROJECT, 556, "running", sha=SHA, created_at=T0, tag=True)
    running = envelope(gitlab.normalise("Pipeline Hook", "k", tag)).change
    assert isinstance(running, PipelineRunReported)
    assert (running.status, running.branch, running.finished_at) == ("in_progress", None, None)


def test_a_gitlab_deployment_without_a_project_names_the_field() -> None:
    payload = gitlab_deployment_payload(PROJECT, 1, "success", sha=SHA, at=T0)
    del payload["project"]
    with pytest.raises(MalformedPayload, match="'project' is missing"):
        gitlab.normalise("Deployment Hook", "k", payload)


# --- CDEvents ------------------------------------------------------------------------


def test_the_conformance_examples_of_both_spec_versions_are_all_there() -> None:
    assert {p.parent.name for p in EXAMPLES} == {"v0.4.1", "v0.5.1"}
    assert len(EXAMPLES) >= 80


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_every_conformance_example_is_read_or_ignored_with_a_reason(path: Path, mode: str) -> None:
    event = json.loads(path.read_bytes())
    body, headers = (cloud_event_binary if mode == "binary" else cloud_event_structured)(event)
    cloud_event = cdevents.read_cloud_event(body, {k.lower(): v for k, v in headers.items()})
    assert cloud_event.data == event
    outcome = cdevents.normalise(cloud_event.data, cloud_event.id)
    if path.stem in USED:
        read = envelope(outcome)
        assert isinstance(read.change, USED[path.stem])
        assert read.event_type == event["context"]["type"]
        assert read.raw == event
    else:
        assert isinstance(outcome, Ignored)
        assert "is not used by Cairn" in outcome.reason


def _example(version: str, name: str) -> dict[str, Any]:
    return dict(json.loads((CONFORMANCE / version / f"{name}.json").read_bytes()))


@pytest.mark.parametrize("version", ["v0.4.1", "v0.5.1"])
def test_a_deployed_service_is_a_successful_deployment_of_its_artifact(version: str) -> None:
    event = envelope(cdevents.normalise(_example(version, "service_deployed"), "x"))
    change = event.change
    assert isinstance(change, DeploymentReported)
    assert change.status == "success" and change.environment == "test123"
    assert (
        change.version == "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
    )
    assert change.deployment_id == "/event/source/123#271069a8-fc18-44f1-b38f-9d70a1695819"
    assert event.subject.deployment_name == "mySubject123"
    rolled = envelope(cdevents.normalise(_example(version, "service_rolledback"), "x")).change
    assert isinstance(rolled, DeploymentReported) and rolled.rollback
    removed = envelope(cdevents.normalise(_example(version, "service_removed"), "x")).change
    assert isinstance(removed, DeploymentReported)
    assert (removed.status, removed.version) == ("removed", None)


def test_a_finished_pipeline_run_carries_its_outcome() -> None:
    change = envelope(cdevents.normalise(_example("v0.5.1", "pipelinerun_finished"), "x")).change
    assert isinstance(change, PipelineRunReported)
    assert (change.status, change.pipeline) == ("failure", "myPipeline")
    assert change.url == "https://www.example.com/mySubject123"


def test_an_unsupported_spec_version_is_refused_with_the_versions_read() -> None:
    event = cdevent("dev.cdevents.service.deployed.0.1.1", "svc", {}, spec="0.3.0")
    with pytest.raises(MalformedPayload, match=r"0\.4 and 0\.5"):
        cdevents.normalise(event, "x")


def test_a_request_that_is_no_cloud_event_is_refused() -> None:
    with pytest.raises(Rejected, match="ce-specversion"):
        cdevents.read_cloud_event(b"{}", {"content-type": "application/json"})
    with pytest.raises(Rejected) as batch:
        cdevents.read_cloud_event(b"[]", {"content-type": "application/cloudevents-batch+json"})
    assert batch.value.status == 415
    body, headers = cloud_event_binary(cdevent("dev.cdevents.service.deployed.0.2.0", "s", {}))
    lowered = {k.lower(): v for k, v in headers.items() if k.lower() != "ce-type"}
    with pytest.raises(Rejected, match="type"):
        cdevents.read_cloud_event(body, lowered)


# --- the generic report --------------------------------------------------------------


def test_a_generic_report_names_its_entity_and_version() -> None:
    body = deployment_report(
        entity="payments",
        environment="production",
        status="succeeded",
        version="1.4.2",
        commit=SHA.upper(),
        started_at=T0,
        finished_at=T0 + timedelta(minutes=1),
    )
    event = normalise_deployment(body, "k1")
    change = event.change
    assert isinstance(change, DeploymentReported)
    assert (event.key, event.subject.entity_ref) == ("component:default/payments",) * 2
    assert (change.status, change.version, change.commit) == ("success", "1.4.2", SHA)
    assert change.occurred_at == T0 + timedelta(minutes=1)
    again = normalise_deployment(body, "k2").change
    assert isinstance(again, DeploymentReported)
    assert again.deployment_id == change.deployment_id


def test_a_repository_url_becomes_its_key() -> None:
    body = deployment_report(
        repository="https://GitHub.com/Acme/Payments.git", environment="qa", status="failed"
    )
    assert normalise_deployment(body, "k").subject.repository == "github.com/acme/payments"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"environment": "prod", "status": "success"}, "names nothing to attach"),
        ({"entity": "x", "status": "success"}, "'environment' is missing"),
        ({"entity": "x", "environment": "prod", "status": "great"}, "'status' is 'great'"),
        ({"entity": "x", "environment": "p", "status": "success", "started_at": "now"}, "ISO 8601"),
        ({"entity": ":x", "environment": "p", "status": "success"}, "'entity' is not an entity"),
        ({"artifact": "docker.io/x", "environment": "p", "status": "success"}, "package URL"),
    ],
)
def test_a_malformed_report_names_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedPayload, match=message):
        normalise_deployment(body, "k")


def test_bearer_tokens_compare_against_every_configured_one() -> None:
    tokens = [b"old", b"new"]
    assert verify_bearer("Bearer new", tokens)
    assert verify_bearer("bearer old", tokens)
    assert not verify_bearer("Bearer other", tokens)
    assert not verify_bearer("new", tokens)
    assert not verify_bearer(None, tokens)
