"""Builders of CI/CD deliveries shaped like the real ones, for the demo, tests and benchmarks.

- GitHub `deployment`, `deployment_status` and `workflow_run` deliveries with the fields
  GitHub documents (webhook-events-and-payloads), sent to `/webhooks/github` with
  `github_payloads.github_headers`;
- GitLab `Deployment Hook` and `Pipeline Hook` bodies ("Webhook events"), sent to
  `/webhooks/gitlab` with `gitlab_payloads.gitlab_headers`;
- CDEvents (spec 0.4 and 0.5) and the CloudEvents HTTP requests carrying them, in binary
  and structured mode;
- the generic `POST /api/deployments` body.

Ids derive from the arguments, so a payload is a pure function of them.
"""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from services.demo.github_payloads import (
    API_URL,
    GitHubRepoInfo,
    _account,
    _organization,
    _sender,
    repository_object,
)
from services.demo.gitlab_payloads import USER, GitLabProjectInfo, project_object


def _stable_id(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode()) % 900_000_000 + 100_000_000


def iso(at: datetime) -> str:
    """GitHub's time format: UTC, seconds, `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gitlab_time(at: datetime) -> str:
    """GitLab's webhook time format: `2021-04-28 21:50:00 +0000`."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


# --- GitHub ---------------------------------------------------------------------------


def _deployment_object(
    repo: GitHubRepoInfo,
    deployment_id: int,
    *,
    sha: str,
    ref: str,
    environment: str,
    created_at: datetime,
    creator: str,
    description: str | None,
) -> dict[str, Any]:
    api = f"{API_URL}/repos/{repo.full_name}"
    return {
        "url": f"{api}/deployments/{deployment_id}",
        "id": deployment_id,
        "node_id": f"DE_kwDO{deployment_id}",
        "task": "deploy",
        "original_environment": environment,
        "environment": environment,
        "description": description,
        "created_at": iso(created_at),
        "updated_at": iso(created_at),
        "statuses_url": f"{api}/deployments/{deployment_id}/statuses",
        "repository_url": api,
        "creator": _account(creator, kind="User"),
        "sha": sha,
        "ref": ref,
        "payload": {},
        "transient_environment": False,
        "production_environment": environment == "production",
        "performed_via_github_app": None,
    }


def github_deployment_payload(
    repo: GitHubRepoInfo,
    deployment_id: int,
    *,
    sha: str,
    ref: str = "main",
    environment: str = "production",
    created_at: datetime,
    creator: str = "acme-deployer",
    description: str | None = "Deploy request from the release workflow",
) -> dict[str, Any]:
    """A `deployment` delivery (action `created`)."""
    return {
        "action": "created",
        "deployment": _deployment_object(
            repo,
            deployment_id,
            sha=sha,
            ref=ref,
            environment=environment,
            created_at=created_at,
            creator=creator,
            description=description,
        ),
        "workflow": None,
        "workflow_run": None,
        "repository": repository_object(repo),
        "organization": _organization(repo.owner),
        "sender": _sender(),
    }


def github_deployment_status_payload(
    repo: GitHubRepoInfo,
    deployment_id: int,
    state: str,
    *,
    sha: str,
    ref: str = "main",
    environment: str = "production",
    created_at: datetime,
    at: datetime,
    creator: str = "acme-deployer",
    log_url: str | None = None,
    environment_url: str | None = None,
) -> dict[str, Any]:
    """A `deployment_status` delivery: `state` is error, failure, inactive, in_progress,
    queued, pending or success, set at `at`."""
    status_id = _stable_id("status", repo.full_name, str(deployment_id), state, iso(at))
    api = f"{API_URL}/repos/{repo.full_name}"
    run_url = log_url or f"{repo.html_url}/actions/runs/{_stable_id('run', str(deployment_id))}"
    return {
        "action": "created",
        "deployment_status": {
            "url": f"{api}/deployments/{deployment_id}/statuses/{status_id}",
            "id": status_id,
            "node_id": f"DES_kwDO{status_id}",
            "state": state,
            "creator": _account(creator, kind="User"),
            "description": f"Deployment {state}",
            "environment": environment,
            "target_url": run_url,
            "created_at": iso(at),
            "updated_at": iso(at),
            "deployment_url": f"{api}/deployments/{deployment_id}",
            "repository_url": api,
            "environment_url": environment_url or "",
            "log_url": run_url,
            "performed_via_github_app": None,
        },
        "deployment": _deployment_object(
            repo,
            deployment_id,
            sha=sha,
            ref=ref,
            environment=environment,
            created_at=created_at,
            creator=creator,
            description="Deploy request from the release workflow",
        ),
        "check_run": None,
        "workflow": None,
        "workflow_run": None,
        "repository": repository_object(repo),
        "organization": _organization(repo.owner),
        "sender": _sender(),
    }


def github_workflow_run_payload(
    repo: GitHubRepoInfo,
    run_id: int,
    action: str,
    *,
    head_sha: str,
    head_branch: str = "main",
    name: str = "CI",
    started_at: datetime,
    updated_at: datetime,
    conclusion: str | None = None,
    run_attempt: int = 1,
    actor: str = "acme-dev",
) -> dict[str, Any]:
    """A `workflow_run` delivery: `action` requested, in_progress or completed."""
    status = {"requested": "queued", "in_progress": "in_progress"}.get(action, "completed")
    api = f"{API_URL}/repos/{repo.full_name}"
    workflow_id = _stable_id("workflow", repo.full_name, name)
    return {
        "action": action,
        "workflow_run": {
            "id": run_id,
            "name": name,
            "node_id": f"WFR_kwLO{run_id}",
            "head_branch": head_branch,
            "head_sha": head_sha,
            "path": ".github/workflows/ci.yml",
            "display_title": f"{name} on {head_branch}",
            "run_number": run_id % 10_000,
            "event": "push",
            "status": status,
            "conclusion": conclusion if status == "completed" else None,
            "workflow_id": workflow_id,
            "check_suite_id": run_id + 1,
            "url": f"{api}/actions/runs/{run_id}",
            "html_url": f"{repo.html_url}/actions/runs/{run_id}",
            "pull_requests": [],
            "created_at": iso(started_at),
            "updated_at": iso(updated_at),
            "actor": _account(actor, kind="User"),
            "triggering_actor": _account(actor, kind="User"),
            "run_attempt": run_attempt,
            "run_started_at": iso(started_at),
            "jobs_url": f"{api}/actions/runs/{run_id}/jobs",
            "logs_url": f"{api}/actions/runs/{run_id}/logs",
            "head_commit": {
                "id": head_sha,
                "tree_id": head_sha[::-1],
                "message": "Change",
                "timestamp": iso(started_at),
                "author": {"name": "Acme Dev", "email": "dev@acme.test"},
                "committer": {"name": "Acme Dev", "email": "dev@acme.test"},
            },
            "repository": repository_object(repo),
            "head_repository": repository_object(repo),
        },
        "workflow": {
            "id": workflow_id,
            "name": name,
            "path": ".github/workflows/ci.yml",
            "state": "active",
            "url": f"{api}/actions/workflows/{workflow_id}",
            "html_url": f"{repo.html_url}/actions/workflows/ci.yml",
        },
        "repository": repository_object(repo),
        "organization": _organization(repo.owner),
        "sender": _sender(),
    }


# --- GitLab ---------------------------------------------------------------------------


def gitlab_deployment_payload(
    project: GitLabProjectInfo,
    deployment_id: int,
    status: str,
    *,
    sha: str,
    at: datetime,
    environment: str = "production",
    ref: str = "main",
    tier: str = "production",
) -> dict[str, Any]:
    """A `Deployment Hook` body: `status` is running, success, failed or canceled."""
    job = _stable_id("job", project.path_with_namespace, str(deployment_id))
    return {
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": gitlab_time(at),
        "deployment_id": deployment_id,
        "deployable_id": job,
        "deployable_url": f"{project.web_url}/-/jobs/{job}",
        "environment": environment,
        "environment_tier": tier,
        "environment_slug": environment.lower().replace(" ", "-"),
        "environment_external_url": f"https://{environment}.acme.test",
        "project": project_object(project),
        "short_sha": sha[:8],
        "user": dict(USER),
        "user_url": f"{project.instance_url}/{USER['username']}",
        "commit_url": f"{project.web_url}/-/commit/{sha}",
        "commit_title": "Release",
        "ref": ref,
    }


def gitlab_pipeline_payload(
    project: GitLabProjectInfo,
    pipeline_id: int,
    status: str,
    *,
    sha: str,
    created_at: datetime,
    finished_at: datetime | None = None,
    ref: str = "main",
    tag: bool = False,
) -> dict[str, Any]:
    """A `Pipeline Hook` body: `status` is pending, running, success, failed, canceled..."""
    duration = int((finished_at - created_at).total_seconds()) if finished_at is not None else None
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": pipeline_id,
            "iid": pipeline_id % 1000,
            "name": None,
            "ref": ref,
            "tag": tag,
            "sha": sha,
            "before_sha": "0" * 40,
            "source": "push",
            "status": status,
            "detailed_status": status,
            "stages": ["build", "test", "deploy"],
            "created_at": gitlab_time(created_at).replace(" +0000", " UTC"),
            "finished_at": gitlab_time(finished_at).replace(" +0000", " UTC")
            if finished_at
            else None,
            "duration": duration,
            "queued_duration": 1,
            "variables": [],
            "url": f"{project.web_url}/-/pipelines/{pipeline_id}",
        },
        "merge_request": None,
        "user": dict(USER),
        "project": project_object(project),
        "commit": {
            "id": sha,
            "message": "Release\n",
            "title": "Release",
            "timestamp": created_at.astimezone(UTC).isoformat(),
            "url": f"{project.web_url}/-/commit/{sha}",
            "author": {"name": USER["name"], "email": USER["email"]},
        },
        "source_pipeline": None,
        "builds": [],
    }


# --- CDEvents over CloudEvents --------------------------------------------------------


def cdevent(
    event_type: str,
    subject_id: str,
    content: dict[str, Any],
    *,
    source: str = "/acme/deployer",
    event_id: str | None = None,
    at: datetime | None = None,
    spec: str = "0.4.1",
) -> dict[str, Any]:
    """A CDEvent: `event_type` like `dev.cdevents.service.deployed.0.2.0`."""
    context: dict[str, Any] = {
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "timestamp": (at or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    context["specversion" if spec.startswith("0.5") else "version"] = spec
    subject: dict[str, Any] = {"id": subject_id, "source": source, "content": content}
    if not spec.startswith("0.5"):
        subject["type"] = event_type.split(".")[2]
    return {"context": context, "subject": subject}


def cloud_event_binary(
    event: dict[str, Any], token: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a binary-mode CloudEvents HTTP request carrying `event`."""
    context = event["context"]
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": context["id"],
        "ce-source": context["source"],
        "ce-type": context["type"],
        "ce-time": context["timestamp"],
    }
    subject = event.get("subject", {})
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        headers["ce-subject"] = subject["id"]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return json.dumps(event).encode(), headers


def cloud_event_structured(
    event: dict[str, Any], token: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a structured-mode CloudEvents HTTP request carrying `event`."""
    context = event["context"]
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": context["id"],
        "source": context["source"],
        "type": context["type"],
        "time": context["timestamp"],
        "datacontenttype": "application/json",
        "data": event,
    }
    subject = event.get("subject", {})
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        envelope["subject"] = subject["id"]
    headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return json.dumps(envelope).encode(), headers


# --- the generic deployments API --------------------------------------------------------


def deployment_report(
    *,
    environment: str,
    status: str,
    entity: str | None = None,
    repository: str | None = None,
    version: str | None = None,
    commit: str | None = None,
    deployment_id: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    url: str | None = None,
    triggered_by: str | None = None,
) -> dict[str, Any]:
    """A `POST /api/deployments` body."""
    body: dict[str, Any] = {"environment": environment, "status": status}
    for name, value in (
        ("entity", entity),
        ("repository", repository),
        ("version", version),
        ("commit", commit),
        ("id", deployment_id),
        ("url", url),
        ("triggered_by", triggered_by),
    ):
        if value is not None:
            body[name] = value
    if started_at is not None:
        body["started_at"] = started_at.astimezone(UTC).isoformat()
    if finished_at is not None:
        body["finished_at"] = finished_at.astimezone(UTC).isoformat()
    return body
