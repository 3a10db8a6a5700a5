"""GitHub's CI/CD webhooks: `deployment`, `deployment_status` and `workflow_run`.

Pure logic, called by ingest/github.py's normaliser for these event types (they reach the
same `POST /webhooks/github` route, signed the same way) and published to
`cairn.ci.events`, keyed by the repository key:

- `deployment` (created) -> `DeploymentReported` with status `pending`, at
  `deployment.created_at`;
- `deployment_status` -> `DeploymentReported` with the status's `state` (every state GitHub
  sends: `pending`, `queued`, `in_progress`, `success`, `failure`, `error`, `inactive`), at
  the status's `updated_at`. Every delivery carries the whole deployment, so any one of them
  describes it; their order is the processor's business, not arrival;
- `workflow_run` -> `PipelineRunReported`, one run per run id and attempt, status from
  `status` and `conclusion`, duration from `run_started_at` to `updated_at` once completed.

The deployment's version is its ref when the ref names a tag (a `refs/tags/` ref or a
version-looking name such as `v1.4.2`), otherwise the commit (`sha`). Events are matched to
entities by `github.com/project-slug` (`owner/name`) or by the repository key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ingest.common import Ignored, PayloadFields
from services.model.ci_events import (
    ANNOTATION_GITHUB_SLUG,
    CiChange,
    CiEventReceived,
    CiSubject,
    DeploymentReported,
    PipelineRunReported,
    as_utc,
)

SOURCE = "github"
CI_EVENT_TYPES = frozenset({"deployment", "deployment_status", "workflow_run"})

_FIELDS = PayloadFields("GitHub")
_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_VERSION_TAG = re.compile(r"v?\d+(\.\d+)+([-+.][0-9A-Za-z.-]+)?")
_DEPLOYMENT_STATES = {
    "pending": "pending",
    "queued": "queued",
    "waiting": "pending",
    "in_progress": "in_progress",
    "success": "success",
    "failure": "failure",
    "error": "error",
    "inactive": "inactive",
}
_RUN_STATUSES = {
    "requested": "queued",
    "queued": "queued",
    "pending": "pending",
    "waiting": "pending",
    "in_progress": "in_progress",
}
_CONCLUSIONS = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "cancelled": "cancelled",
    "stale": "cancelled",
    "skipped": "skipped",
    "neutral": "skipped",
    "action_required": "pending",
}


def normalise_ci(
    event_type: str, delivery_id: str, payload: dict[str, Any]
) -> CiEventReceived | Ignored:
    """The envelope for one GitHub CI/CD delivery. Raises `MalformedPayload`."""
    repository = _FIELDS.object(payload, "repository", "repository")
    key, slug = _repository_key(repository)
    subject = CiSubject(repository=key, project_slug=slug, slug_annotation=ANNOTATION_GITHUB_SLUG)
    change: CiChange
    if event_type == "deployment":
        deployment = _FIELDS.object(payload, "deployment", "deployment")
        change = _deployment(key, deployment, None, payload)
    elif event_type == "deployment_status":
        deployment = _FIELDS.object(payload, "deployment", "deployment")
        status = _FIELDS.object(payload, "deployment_status", "deployment_status")
        change = _deployment(key, deployment, status, payload)
    elif event_type == "workflow_run":
        change = _workflow_run(key, _FIELDS.object(payload, "workflow_run", "workflow_run"))
    else:
        return Ignored(f"GitHub event {event_type!r} is not a CI/CD event Cairn uses")
    return CiEventReceived(
        source=SOURCE,
        delivery_id=delivery_id,
        event_type=event_type,
        key=key,
        subject=subject,
        change=change,
        raw=payload,
    )


def _repository_key(repository: Mapping[str, Any]) -> tuple[str, str]:
    html_url = _FIELDS.string(repository, "html_url", "repository.html_url")
    host = _FIELDS.url_host(html_url, "repository.html_url")
    name = _FIELDS.string(repository, "name", "repository.name")
    owner = _FIELDS.object(repository, "owner", "repository.owner")
    login = _FIELDS.optional_string(owner, "login", "repository.owner.login")
    if login is None:
        login = _FIELDS.string(owner, "name", "repository.owner.login")
    return f"{host}/{login}/{name}".lower(), f"{login}/{name}"


def _time(data: Mapping[str, Any], key: str, path: str) -> datetime | None:
    stamp = _FIELDS.timestamp(data, key, path)
    return as_utc(stamp) if stamp is not None else None


def _login(data: Mapping[str, Any] | None, path: str) -> str | None:
    if data is None:
        return None
    return _FIELDS.optional_string(data, "login", f"{path}.login")


def _identifier(data: Mapping[str, Any], key: str, path: str) -> str:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise _FIELDS.malformed(path, "is missing" if value is None else "is not an id")
    return str(value)


def version_of(ref: str | None, sha: str | None) -> tuple[str | None, str | None]:
    """(version, kind): a tag when the ref names one, else the commit."""
    if ref:
        tag = ref[len("refs/tags/") :] if ref.startswith("refs/tags/") else None
        if tag is None and _VERSION_TAG.fullmatch(ref):
            tag = ref
        if tag:
            return tag, "tag"
        if _SHA.fullmatch(ref) and not sha:
            return ref.lower(), "commit"
    if sha:
        return sha.lower(), "commit"
    return (ref, "version") if ref else (None, None)


def _deployment(
    key: str,
    deployment: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    payload: Mapping[str, Any],
) -> DeploymentReported:
    number = _identifier(deployment, "id", "deployment.id")
    created = _time(deployment, "created_at", "deployment.created_at")
    sha = _FIELDS.optional_string(deployment, "sha", "deployment.sha")
    ref = _FIELDS.optional_string(deployment, "ref", "deployment.ref")
    version, kind = version_of(ref, sha)
    environment = _FIELDS.optional_string(deployment, "environment", "deployment.environment")
    run = _FIELDS.optional_object(payload, "workflow_run", "workflow_run")
    run_url = _FIELDS.optional_string(run, "html_url", "workflow_run.html_url") if run else None
    if status is None:
        state = "pending"
        at = created
        url, environment_url = run_url, None
    else:
        raw_state = _FIELDS.string(status, "state", "deployment_status.state")
        state = _DEPLOYMENT_STATES.get(raw_state.lower(), "")
        if not state:
            raise _FIELDS.malformed(
                "deployment_status.state", f"is {raw_state!r}, not a GitHub deployment state"
            )
        at = _time(status, "updated_at", "deployment_status.updated_at") or _time(
            status, "created_at", "deployment_status.created_at"
        )
        environment = (
            _FIELDS.optional_string(status, "environment", "deployment_status.environment")
            or environment
        )
        url = (
            _FIELDS.optional_string(status, "log_url", "deployment_status.log_url")
            or _FIELDS.optional_string(status, "target_url", "deployment_status.target_url")
            or run_url
        )
        environment_url = _FIELDS.optional_string(
            status, "environment_url", "deployment_status.environment_url"
        )
    if at is None:
        raise _FIELDS.malformed(
            "deployment_status.updated_at" if status is not None else "deployment.created_at",
            "is missing",
        )
    if environment is None:
        raise _FIELDS.malformed("deployment.environment", "is missing")
    creator = _FIELDS.optional_object(deployment, "creator", "deployment.creator")
    return DeploymentReported(
        deployment_id=f"{key}#{number}",
        environment=environment,
        status=state,  # type: ignore[arg-type]
        occurred_at=at,
        version=version,
        version_kind=kind,  # type: ignore[arg-type]
        commit=sha.lower() if sha else None,
        ref=ref,
        started_at=created,
        url=url,
        environment_url=environment_url,
        triggered_by=_login(creator, "deployment.creator"),
        description=_FIELDS.optional_string(deployment, "description", "deployment.description"),
    )


def _workflow_run(key: str, run: Mapping[str, Any]) -> PipelineRunReported:
    number = _identifier(run, "id", "workflow_run.id")
    attempt = run.get("run_attempt")
    attempt_text = (
        str(attempt) if isinstance(attempt, int) and not isinstance(attempt, bool) else "1"
    )
    raw_status = (_FIELDS.optional_string(run, "status", "workflow_run.status") or "").lower()
    conclusion = _FIELDS.optional_string(run, "conclusion", "workflow_run.conclusion")
    if raw_status == "completed":
        status = _CONCLUSIONS.get(
            (conclusion or "").lower(), "failure" if conclusion else "success"
        )
    else:
        status = _RUN_STATUSES.get(raw_status, "in_progress")
    updated = _time(run, "updated_at", "workflow_run.updated_at")
    created = _time(run, "created_at", "workflow_run.created_at")
    started = _time(run, "run_started_at", "workflow_run.run_started_at") or created
    at = updated or started
    if at is None:
        raise _FIELDS.malformed("workflow_run.updated_at", "is missing")
    finished = updated if raw_status == "completed" else None
    duration = (
        (finished - started).total_seconds()
        if finished is not None and started is not None
        else None
    )
    actor = _FIELDS.optional_object(run, "triggering_actor", "workflow_run.triggering_actor")
    if actor is None:
        actor = _FIELDS.optional_object(run, "actor", "workflow_run.actor")
    sha = _FIELDS.optional_string(run, "head_sha", "workflow_run.head_sha")
    return PipelineRunReported(
        run_id=f"{key}#{number}/{attempt_text}",
        status=status,  # type: ignore[arg-type]
        occurred_at=at,
        pipeline=_FIELDS.optional_string(run, "name", "workflow_run.name"),
        branch=_FIELDS.optional_string(run, "head_branch", "workflow_run.head_branch"),
        commit=sha.lower() if sha else None,
        started_at=started,
        finished_at=finished,
        duration_seconds=max(0.0, duration) if duration is not None else None,
        url=_FIELDS.optional_string(run, "html_url", "workflow_run.html_url"),
        triggered_by=_login(actor, "workflow_run.actor"),
    )
