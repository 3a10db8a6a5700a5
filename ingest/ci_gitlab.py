"""GitLab's CI/CD webhooks: `Deployment Hook` and `Pipeline Hook`.

Pure logic, called by ingest/gitlab.py's normaliser for these event types (they reach the
same `POST /webhooks/gitlab` route, with the same `X-Gitlab-Token`) and published to
`cairn.ci.events`, keyed by the project's repository key (`host/namespace/name`):

- `Deployment Hook` -> `DeploymentReported`: `status` (`running`, `success`, `failed`,
  `canceled`, ...) at `status_changed_at`, the environment, the job's URL
  (`deployable_url`), the environment's URL, the commit (the full SHA at the end of
  `commit_url`, else `short_sha`), the ref and the user;
- `Pipeline Hook` -> `PipelineRunReported`: `object_attributes` `status`, `ref` (the branch,
  unless `tag`), `sha`, `duration`, `url`, at `finished_at` (or `created_at` before it ends).

GitLab writes times as `2021-04-28 21:50:00 +0200` or `2016-08-12 15:23:28 UTC`. Events are
matched to entities by `gitlab.com/project-slug` (`path_with_namespace`) or the repository.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ingest.ci_github import version_of
from ingest.common import Ignored, PayloadFields
from services.model.ci_events import (
    ANNOTATION_GITLAB_SLUG,
    CiChange,
    CiEventReceived,
    CiSubject,
    DeploymentReported,
    DeploymentStatus,
    PipelineRunReported,
    PipelineStatus,
    parse_time,
)

SOURCE = "gitlab"
CI_EVENT_TYPES = frozenset({"Deployment Hook", "Pipeline Hook"})

_FIELDS = PayloadFields("GitLab")
_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_DEPLOYMENT_STATUSES: dict[str, DeploymentStatus] = {
    "created": "queued",
    "blocked": "pending",
    "running": "in_progress",
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "canceling": "in_progress",
    "skipped": "cancelled",
}
_PIPELINE_STATUSES: dict[str, PipelineStatus] = {
    "created": "queued",
    "waiting_for_resource": "queued",
    "preparing": "queued",
    "pending": "pending",
    "scheduled": "pending",
    "manual": "pending",
    "waiting_for_callback": "pending",
    "running": "in_progress",
    "canceling": "in_progress",
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "skipped",
}


def normalise_ci(
    event_type: str, delivery_id: str, payload: dict[str, Any]
) -> CiEventReceived | Ignored:
    """The envelope for one GitLab CI/CD delivery. Raises `MalformedPayload`."""
    project = _FIELDS.object(payload, "project", "project")
    key, slug = _project_key(project)
    subject = CiSubject(repository=key, project_slug=slug, slug_annotation=ANNOTATION_GITLAB_SLUG)
    change: CiChange
    if event_type == "Deployment Hook":
        change = _deployment(key, payload)
    elif event_type == "Pipeline Hook":
        change = _pipeline(key, payload)
    else:
        return Ignored(f"GitLab event {event_type!r} is not a CI/CD event Cairn uses")
    return CiEventReceived(
        source=SOURCE,
        delivery_id=delivery_id,
        event_type=event_type,
        key=key,
        subject=subject,
        change=change,
        raw=payload,
    )


def _project_key(project: Mapping[str, Any]) -> tuple[str, str]:
    web_url = _FIELDS.string(project, "web_url", "project.web_url").rstrip("/")
    host = _FIELDS.url_host(web_url, "project.web_url")
    full_path = _FIELDS.optional_string(
        project, "path_with_namespace", "project.path_with_namespace"
    )
    if full_path is None:
        full_path = web_url.split("://", 1)[-1].split("/", 1)[-1]
    full_path = full_path.strip("/")
    owner, _, name = full_path.rpartition("/")
    if not owner or not name:
        raise _FIELDS.malformed("project.path_with_namespace", "is not a namespace/project path")
    return f"{host}/{owner}/{name}".lower(), full_path


def _time(data: Mapping[str, Any], key: str, path: str) -> datetime | None:
    stamp = _FIELDS.optional_string(data, key, path)
    if stamp is None:
        return None
    try:
        return parse_time(stamp)
    except ValueError:
        raise _FIELDS.malformed(path, "is not a time") from None


def _identifier(data: Mapping[str, Any], key: str, path: str) -> str:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise _FIELDS.malformed(path, "is missing" if value is None else "is not an id")
    return str(value)


def _username(payload: Mapping[str, Any]) -> str | None:
    user = _FIELDS.optional_object(payload, "user", "user")
    if user is None:
        return None
    return _FIELDS.optional_string(user, "username", "user.username") or _FIELDS.optional_string(
        user, "name", "user.name"
    )


def _deployment(key: str, payload: Mapping[str, Any]) -> DeploymentReported:
    number = _identifier(payload, "deployment_id", "deployment_id")
    raw_status = _FIELDS.string(payload, "status", "status")
    status = _DEPLOYMENT_STATUSES.get(raw_status.lower())
    if status is None:
        raise _FIELDS.malformed("status", f"is {raw_status!r}, not a GitLab deployment status")
    at = _time(payload, "status_changed_at", "status_changed_at")
    if at is None:
        raise _FIELDS.malformed("status_changed_at", "is missing")
    commit_url = _FIELDS.optional_string(payload, "commit_url", "commit_url")
    tail = commit_url.rstrip("/").rsplit("/", 1)[-1] if commit_url else ""
    sha = (
        tail if _SHA.fullmatch(tail) else _FIELDS.optional_string(payload, "short_sha", "short_sha")
    )
    ref = _FIELDS.optional_string(payload, "ref", "ref")
    version, kind = version_of(ref, sha)
    return DeploymentReported(
        deployment_id=f"{key}#{number}",
        environment=_FIELDS.string(payload, "environment", "environment"),
        status=status,
        occurred_at=at,
        version=version,
        version_kind=kind,  # type: ignore[arg-type]
        commit=sha.lower() if sha else None,
        ref=ref,
        url=_FIELDS.optional_string(payload, "deployable_url", "deployable_url"),
        environment_url=_FIELDS.optional_string(
            payload, "environment_external_url", "environment_external_url"
        ),
        triggered_by=_username(payload),
        description=_FIELDS.optional_string(payload, "commit_title", "commit_title"),
    )


def _pipeline(key: str, payload: Mapping[str, Any]) -> PipelineRunReported:
    attributes = _FIELDS.object(payload, "object_attributes", "object_attributes")
    number = _identifier(attributes, "id", "object_attributes.id")
    raw_status = _FIELDS.string(attributes, "status", "object_attributes.status")
    status = _PIPELINE_STATUSES.get(raw_status.lower())
    if status is None:
        raise _FIELDS.malformed(
            "object_attributes.status", f"is {raw_status!r}, not a GitLab pipeline status"
        )
    created = _time(attributes, "created_at", "object_attributes.created_at")
    finished = _time(attributes, "finished_at", "object_attributes.finished_at")
    at = finished or created
    if at is None:
        raise _FIELDS.malformed("object_attributes.created_at", "is missing")
    duration = attributes.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        raise _FIELDS.malformed("object_attributes.duration", "is not a number")
    tag = _FIELDS.boolean(attributes, "tag", "object_attributes.tag")
    ref = _FIELDS.optional_string(attributes, "ref", "object_attributes.ref")
    sha = _FIELDS.optional_string(attributes, "sha", "object_attributes.sha")
    started = (
        finished - timedelta(seconds=float(duration))
        if finished and duration is not None
        else created
    )
    return PipelineRunReported(
        run_id=f"{key}#{number}",
        status=status,
        occurred_at=at,
        pipeline=_FIELDS.optional_string(attributes, "name", "object_attributes.name"),
        branch=None if tag else ref,
        commit=sha.lower() if sha else None,
        started_at=started,
        finished_at=finished if status in ("success", "failure", "cancelled", "skipped") else None,
        duration_seconds=float(duration) if duration is not None else None,
        url=_FIELDS.optional_string(attributes, "url", "object_attributes.url"),
        triggered_by=_username(payload),
    )
