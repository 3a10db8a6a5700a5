"""Builders of GitLab webhook and system hook deliveries shaped like the real ones.

The payloads carry the fields GitLab documents for the `Push Hook` ("Webhook events"), and
for system hooks ("System hooks": `push`, `repository_update`, `project_create`,
`project_destroy`, `project_rename`, `project_transfer`), and the headers GitLab's webhook
service sends (`X-Gitlab-Event`, `X-Gitlab-Token`, `Idempotency-Key`,
`X-Gitlab-Event-UUID`, `X-Gitlab-Webhook-UUID`, `X-Gitlab-Instance`). Ids are derived from
the project's path, so a payload is a pure function of its arguments.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ZERO_SHA = "0" * 40
GITLAB_VERSION = "17.6.1"
USER = {
    "id": 4,
    "name": "Acme Demo",
    "username": "acme-demo-bot",
    "email": "demo@acme.test",
    "avatar": "https://secure.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80&d=identicon",
}


def _stable_id(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode()) % 90_000_000 + 10_000_000


@dataclass(frozen=True)
class GitLabProjectInfo:
    """A project as GitLab describes it; `path_with_namespace` may hold nested groups."""

    path_with_namespace: str
    web_url: str
    default_branch: str = "main"
    description: str = ""
    visibility_level: int = 0  # 0 private, 10 internal, 20 public

    @property
    def path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0]

    @property
    def id(self) -> int:
        return _stable_id("project", self.path_with_namespace)

    @property
    def instance_url(self) -> str:
        """The instance's base URL, as GitLab sends it in `X-Gitlab-Instance`."""
        suffix = "/" + self.path_with_namespace
        if self.web_url.endswith(suffix):
            return self.web_url[: -len(suffix)]
        parts = urlsplit(self.web_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def git_http_url(self) -> str:
        return f"{self.web_url}.git"

    @property
    def git_ssh_url(self) -> str:
        host = urlsplit(self.web_url).hostname or "localhost"
        return f"git@{host}:{self.path_with_namespace}.git"

    def moved(self, path_with_namespace: str) -> GitLabProjectInfo:
        """The same project at another path (after a rename or a transfer)."""
        return GitLabProjectInfo(
            path_with_namespace=path_with_namespace,
            web_url=f"{self.instance_url}/{path_with_namespace}",
            default_branch=self.default_branch,
            description=self.description,
            visibility_level=self.visibility_level,
        )


@dataclass(frozen=True)
class GitLabCommit:
    """One pushed commit as the `commits[]` entries of a push describe it."""

    id: str
    message: str
    timestamp: str  # ISO 8601 with offset, as GitLab sends it
    author_name: str = "Acme Demo"
    author_email: str = "demo@acme.test"
    added: tuple[str, ...] = field(default_factory=tuple)
    modified: tuple[str, ...] = field(default_factory=tuple)
    removed: tuple[str, ...] = field(default_factory=tuple)


def project_object(project: GitLabProjectInfo, *, with_id: bool = True) -> dict[str, Any]:
    """The `project` object of a push (system hook pushes leave out its `id`)."""
    data: dict[str, Any] = {"id": project.id} if with_id else {}
    data.update(
        {
            "name": project.path.replace("-", " ").title(),
            "description": project.description,
            "web_url": project.web_url,
            "avatar_url": None,
            "git_ssh_url": project.git_ssh_url,
            "git_http_url": project.git_http_url,
            "namespace": project.namespace.rsplit("/", 1)[-1].title(),
            "visibility_level": project.visibility_level,
            "path_with_namespace": project.path_with_namespace,
            "default_branch": project.default_branch,
            "ci_config_path": None,
            "homepage": project.web_url,
            "url": project.git_ssh_url,
            "ssh_url": project.git_ssh_url,
            "http_url": project.git_http_url,
        }
    )
    return data


def _legacy_repository(project: GitLabProjectInfo) -> dict[str, Any]:
    """The deprecated `repository` object GitLab still sends beside `project`."""
    return {
        "name": project.path.replace("-", " ").title(),
        "url": project.git_ssh_url,
        "description": project.description,
        "homepage": project.web_url,
        "git_http_url": project.git_http_url,
        "git_ssh_url": project.git_ssh_url,
        "visibility_level": project.visibility_level,
    }


def _commit_object(project: GitLabProjectInfo, commit: GitLabCommit) -> dict[str, Any]:
    return {
        "id": commit.id,
        "message": commit.message,
        "title": commit.message.splitlines()[0] if commit.message else "",
        "timestamp": commit.timestamp,
        "url": f"{project.web_url}/-/commit/{commit.id}",
        "author": {"name": commit.author_name, "email": commit.author_email},
        "added": list(commit.added),
        "modified": list(commit.modified),
        "removed": list(commit.removed),
    }


def push_payload(
    project: GitLabProjectInfo,
    ref: str,
    before: str,
    after: str,
    commits: Sequence[GitLabCommit] = (),
    *,
    system_hook: bool = False,
) -> dict[str, Any]:
    """A push of `ref` from `before` to `after`; `after` all zeros deletes the branch.

    As a `Push Hook` (project or group webhook) by default; with `system_hook` the body a
    system hook sends for the same push (`event_name: push`, no `object_kind`).
    """
    deleted = after == ZERO_SHA
    entries = [] if deleted else [_commit_object(project, c) for c in commits]
    payload: dict[str, Any] = {} if system_hook else {"object_kind": "push"}
    payload.update(
        {
            "event_name": "push",
            "before": before,
            "after": after,
            "ref": ref,
            "ref_protected": ref == f"refs/heads/{project.default_branch}",
            "checkout_sha": None if deleted else after,
            "message": None,
            "user_id": USER["id"],
            "user_name": USER["name"],
            "user_username": USER["username"],
            "user_email": USER["email"],
            "user_avatar": USER["avatar"],
            "project_id": project.id,
            "project": project_object(project, with_id=not system_hook),
            "commits": entries,
            "total_commits_count": len(entries),
            "push_options": {},
            "repository": _legacy_repository(project),
        }
    )
    return payload


def repository_update_payload(
    project: GitLabProjectInfo, changes: Sequence[tuple[str, str, str]]
) -> dict[str, Any]:
    """The `repository_update` system hook for one push: `changes` of (before, after, ref)."""
    return {
        "event_name": "repository_update",
        "user_id": USER["id"],
        "user_name": USER["name"],
        "user_email": USER["email"],
        "user_avatar": USER["avatar"],
        "project_id": project.id,
        "project": project_object(project, with_id=False),
        "changes": [{"before": b, "after": a, "ref": ref} for b, a, ref in changes],
        "refs": [ref for _b, _a, ref in changes],
    }


def project_event_payload(
    event_name: str, project: GitLabProjectInfo, *, previous: GitLabProjectInfo | None = None
) -> dict[str, Any]:
    """A project lifecycle system hook: `project_create`, `project_destroy`,
    `project_update`, `project_rename` or `project_transfer` (the last two need
    `previous`, the project at its old path)."""
    payload: dict[str, Any] = {
        "created_at": "2024-03-04T09:00:00Z",
        "updated_at": "2024-03-04T09:30:00Z",
        "event_name": event_name,
        "name": project.path.replace("-", " ").title(),
        "owner_email": USER["email"],
        "owner_name": USER["name"],
        "owners": [{"name": USER["name"], "email": USER["email"]}],
        "path": project.path,
        "path_with_namespace": project.path_with_namespace,
        "project_id": project.id,
        "project_namespace_id": _stable_id("namespace", project.namespace),
        "project_visibility": {0: "private", 10: "internal", 20: "public"}.get(
            project.visibility_level, "private"
        ),
    }
    if event_name in ("project_rename", "project_transfer"):
        if previous is None:
            raise ValueError(f"A {event_name} system hook needs the previous project.")
        payload["old_path_with_namespace"] = previous.path_with_namespace
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """The body GitLab would send for `payload` (JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def new_delivery_id() -> str:
    return str(uuid.uuid4())


def gitlab_headers(
    event: str,
    token: str | None,
    *,
    idempotency_key: str | None = None,
    event_uuid: str | None = None,
    instance: str = "https://gitlab.com",
) -> dict[str, str]:
    """The headers of a GitLab delivery (`event` is e.g. "Push Hook" or "System Hook").

    Without a token the `X-Gitlab-Token` header is absent, as when a webhook has no secret
    token. `idempotency_key` and `event_uuid` default to fresh UUIDs.
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"GitLab/{GITLAB_VERSION}",
        "Idempotency-Key": idempotency_key or new_delivery_id(),
        "X-Gitlab-Event": event,
        "X-Gitlab-Webhook-UUID": new_delivery_id(),
        "X-Gitlab-Instance": instance,
        "X-Gitlab-Event-UUID": event_uuid or new_delivery_id(),
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers
