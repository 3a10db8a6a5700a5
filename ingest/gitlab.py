"""GitLab webhooks and system hooks: token check and normalisation into `cairn.git.events`.

Pure logic: no HTTP framework, no I/O. GitLab authenticates a delivery with the webhook's
secret token, sent as is in `X-Gitlab-Token` (no signature); it is compared in constant
time with every configured token. The delivery id is `Idempotency-Key` (the same on every
retry of one webhook execution) or, from GitLab versions without it, `X-Gitlab-Event-UUID`.

What becomes an event, and what is ignored at the door with the reason sent back:

- `Push Hook` to the project's default branch (`project.default_branch`) -> `PushReceived`,
  `after` being `checkout_sha`. A deleted branch (`after` all zeros, `checkout_sha` null)
  is a push with `deleted`. Pushes to other branches are ignored; so are `Tag Push Hook`s.
- `System Hook` (instance-wide, configured by an administrator):
  - `push` -> as a `Push Hook`; `tag_push` -> ignored;
  - `repository_update` -> `ResyncRequested` when its `refs` include the default branch;
  - `project_destroy` -> `RepositoryChanged` `deleted`;
  - `project_rename` / `project_transfer` -> `RepositoryChanged` `renamed` / `transferred`,
    `previous` being the project at `old_path_with_namespace`;
  - `project_create` and every other event name -> ignored.
- `Project Hook` (a group webhook's project events) `project_destroy` -> `deleted`.
- `Deployment Hook` and `Pipeline Hook` -> a `CiEventReceived` for `cairn.ci.events`
  (ingest/ci_gitlab.py).

Project lifecycle payloads carry only the project's path, not its URL: the URL is the
instance's base URL from `X-Gitlab-Instance` joined with the path, and they do not name the
default branch either, so the moved repository is assumed to keep `main`
(`ASSUMED_DEFAULT_BRANCH`; the descriptor processor re-reads it at its new path).

The repository key is `host/namespace/name`: the host of `project.web_url`, and
`path_with_namespace` split at its last `/`, so a project in a nested group
`group/subgroup/name` has the owner `group/subgroup`.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from ingest.ci_gitlab import CI_EVENT_TYPES, normalise_ci
from ingest.common import Ignored, MalformedPayload, PayloadFields, Rejected, SharedSecret
from services.model.ci_events import CiEventReceived
from services.model.events import (
    CommitSeen,
    GitChange,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
    ResyncRequested,
)

__all__ = ["ASSUMED_DEFAULT_BRANCH", "GitLabWebhooks", "normalise", "verify_token"]

SOURCE = "gitlab"
TOKEN_HEADER = "x-gitlab-token"
EVENT_HEADER = "x-gitlab-event"
IDEMPOTENCY_HEADER = "idempotency-key"
EVENT_UUID_HEADER = "x-gitlab-event-uuid"
INSTANCE_HEADER = "x-gitlab-instance"

ASSUMED_DEFAULT_BRANCH = "main"

_FIELDS = PayloadFields("GitLab")
_EVENT_NAME = re.compile(r"[A-Za-z0-9 _.-]{1,100}")
_MAX_DELIVERY_ID = 200
_ZERO_SHA = re.compile(r"0{40}|0{64}")
_MOVES: dict[str, Literal["renamed", "transferred"]] = {
    "project_rename": "renamed",
    "project_transfer": "transferred",
}


def verify_token(header: str | None, tokens: Sequence[bytes]) -> bool:
    """Whether `header` equals one of `tokens`; every token is compared in constant time.

    Several tokens allow rotation: configure old and new, switch GitLab, drop the old.
    Header values arrive decoded as Latin-1, so they are re-encoded that way to compare the
    bytes GitLab sent.
    """
    if header is None:
        return False
    try:
        given = header.encode("latin-1")
    except UnicodeEncodeError:
        return False
    valid = False
    for token in tokens:
        valid |= hmac.compare_digest(given, token)
    return valid


_PROOF = SharedSecret("GitLab", "CAIRN_GITLAB_WEBHOOK_TOKEN", proof="token", secret="Secret token")


class GitLabWebhooks:
    """The GitLab `WebhookSource`: `X-Gitlab-Token`, `X-Gitlab-Event`, `Idempotency-Key`.

    With tokens configured every delivery must carry one of them, even when `insecure` is
    set. Without tokens, deliveries are refused unless `insecure` is set.
    """

    name = SOURCE

    def __init__(self, tokens: Sequence[bytes], *, insecure: bool = False) -> None:
        self._tokens = list(tokens)
        self._insecure = insecure

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> None:
        _PROOF.check(
            bool(self._tokens),
            self._insecure,
            headers.get(TOKEN_HEADER),
            "X-Gitlab-Token",
            lambda header: verify_token(header, self._tokens),
        )

    def identify(self, headers: Mapping[str, str]) -> tuple[str, str]:
        event_type = headers.get(EVENT_HEADER, "").strip()
        if not event_type:
            raise Rejected(400, "The delivery has no X-Gitlab-Event header.")
        if not _EVENT_NAME.fullmatch(event_type):
            raise Rejected(400, "The X-Gitlab-Event header is not a GitLab event name.")
        for header, name in (
            (IDEMPOTENCY_HEADER, "Idempotency-Key"),
            (EVENT_UUID_HEADER, "X-Gitlab-Event-UUID"),
        ):
            delivery_id = headers.get(header, "").strip()
            if not delivery_id:
                continue
            if len(delivery_id) > _MAX_DELIVERY_ID or not delivery_id.isprintable():
                raise Rejected(400, f"The {name} header is not a delivery id.")
            return event_type, delivery_id
        raise Rejected(
            400, "The delivery has neither an Idempotency-Key nor an X-Gitlab-Event-UUID header."
        )

    def normalise(
        self, event_type: str, delivery_id: str, payload: dict[str, Any]
    ) -> GitEventReceived | CiEventReceived | Ignored:
        return normalise(event_type, delivery_id, payload)

    def normalise_delivery(
        self,
        event_type: str,
        delivery_id: str,
        payload: dict[str, Any],
        headers: Mapping[str, str],
    ) -> GitEventReceived | CiEventReceived | Ignored:
        return normalise(event_type, delivery_id, payload, instance=headers.get(INSTANCE_HEADER))


def normalise(
    event_type: str,
    delivery_id: str,
    payload: dict[str, Any],
    *,
    instance: str | None = None,
) -> GitEventReceived | CiEventReceived | Ignored:
    """The envelope for one GitLab delivery, or why Cairn ignores it (see the module doc).

    `instance` is the `X-Gitlab-Instance` header, needed only by project lifecycle events.
    Raises `MalformedPayload` naming the first field that is missing or of the wrong type.
    """
    if not isinstance(payload, dict):
        raise MalformedPayload("The GitLab payload is not a JSON object.")
    if event_type == "Push Hook":
        return _push(event_type, delivery_id, payload)
    if event_type == "System Hook":
        return _system_hook(event_type, delivery_id, payload, instance)
    if event_type == "Project Hook":
        return _group_project_hook(event_type, delivery_id, payload, instance)
    if event_type in CI_EVENT_TYPES:  # deployments and pipelines: ingest/ci_gitlab.py
        return normalise_ci(event_type, delivery_id, payload)
    if event_type == "Tag Push Hook":
        return Ignored(
            "GitLab tag pushes do not change the catalog, which reads the default branch"
        )
    return Ignored(f"GitLab event {event_type!r} is not used by Cairn")


def _event_name(payload: dict[str, Any]) -> str:
    name = _FIELDS.optional_string(payload, "event_name", "event_name")
    if name is None:
        # Newer system hook events (merge requests, subscriptions) name themselves this way.
        name = _FIELDS.optional_string(payload, "object_kind", "object_kind")
    if name is None:
        raise _FIELDS.malformed("event_name", "is missing")
    return name


def _system_hook(
    event_type: str, delivery_id: str, payload: dict[str, Any], instance: str | None
) -> GitEventReceived | Ignored:
    name = _event_name(payload)
    if name == "push":
        return _push(event_type, delivery_id, payload)
    if name == "tag_push":
        return Ignored(
            "GitLab tag pushes do not change the catalog, which reads the default branch"
        )
    if name == "repository_update":
        return _repository_update(event_type, delivery_id, payload)
    if name == "project_destroy":
        repository = _instance_project(payload, "path_with_namespace", instance)
        return _envelope(event_type, delivery_id, repository, _deleted(), payload)
    if name in _MOVES:
        repository = _instance_project(payload, "path_with_namespace", instance)
        previous = _instance_project(payload, "old_path_with_namespace", instance)
        change = RepositoryChanged(action=_MOVES[name], previous=previous)
        return _envelope(event_type, delivery_id, repository, change, payload)
    if name == "project_create":
        return Ignored(
            "GitLab project_create names no default branch; the project's first push "
            "announces its catalog files"
        )
    return Ignored(f"GitLab system hook event {name!r} is not used by Cairn")


def _group_project_hook(
    event_type: str, delivery_id: str, payload: dict[str, Any], instance: str | None
) -> GitEventReceived | Ignored:
    name = _event_name(payload)
    if name == "project_destroy":
        repository = _instance_project(payload, "path_with_namespace", instance)
        return _envelope(event_type, delivery_id, repository, _deleted(), payload)
    return Ignored(f"GitLab project event {name!r} is not used by Cairn")


def _deleted() -> RepositoryChanged:
    return RepositoryChanged(action="deleted")


# --- push ------------------------------------------------------------------------------


def _push(event_type: str, delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    project = _FIELDS.object(payload, "project", "project")
    if "default_branch" in project and project["default_branch"] is None:
        return Ignored("the GitLab project has no default branch yet (it is empty)")
    repository = _project_repository(project)
    ref = _FIELDS.string(payload, "ref", "ref")
    default_ref = f"refs/heads/{repository.default_branch}"
    if ref != default_ref:
        return Ignored(f"push to {ref} is not the default branch ({repository.default_branch})")
    after = _sha(payload, "after")
    checkout_sha = _sha(payload, "checkout_sha")
    deleted = (after is None and "after" in payload) or (
        "checkout_sha" in payload and checkout_sha is None
    )
    change = PushReceived(
        ref=ref,
        before=_sha(payload, "before"),
        after=None if deleted else (checkout_sha or after),
        deleted=deleted,
        commits=_commits(payload),
    )
    return _envelope(event_type, delivery_id, repository, change, payload)


def _sha(payload: dict[str, Any], key: str) -> str | None:
    value = _FIELDS.optional_string(payload, key, key)
    if value is None or _ZERO_SHA.fullmatch(value):
        return None
    return value


def _commits(payload: dict[str, Any]) -> list[CommitSeen]:
    seen = []
    for index, commit in enumerate(_FIELDS.optional_list(payload, "commits", "commits")):
        path = f"commits[{index}]"
        if not isinstance(commit, dict):
            raise _FIELDS.malformed(path, "is not an object")
        seen.append(
            CommitSeen(
                id=_FIELDS.string(commit, "id", f"{path}.id"),
                timestamp=_FIELDS.timestamp(commit, "timestamp", f"{path}.timestamp"),
            )
        )
    return seen


def _repository_update(
    event_type: str, delivery_id: str, payload: dict[str, Any]
) -> GitEventReceived | Ignored:
    project = _FIELDS.object(payload, "project", "project")
    if "default_branch" in project and project["default_branch"] is None:
        return Ignored("the GitLab project has no default branch yet (it is empty)")
    repository = _project_repository(project)
    refs = set()
    for index, ref in enumerate(_FIELDS.optional_list(payload, "refs", "refs")):
        if not isinstance(ref, str):
            raise _FIELDS.malformed(f"refs[{index}]", "is not a string")
        refs.add(ref)
    for index, change in enumerate(_FIELDS.optional_list(payload, "changes", "changes")):
        if not isinstance(change, dict):
            raise _FIELDS.malformed(f"changes[{index}]", "is not an object")
        refs.add(_FIELDS.string(change, "ref", f"changes[{index}].ref"))
    branch = repository.default_branch
    if f"refs/heads/{branch}" not in refs:
        return Ignored(f"repository_update does not touch the default branch ({branch})")
    change = ResyncRequested(reason=f"repository_update moved {branch} of {repository.full_name}")
    return _envelope(event_type, delivery_id, repository, change, payload)


# --- repositories ----------------------------------------------------------------------


def _split_path(full_path: str, path: str) -> tuple[str, str]:
    owner, _, name = full_path.strip("/").rpartition("/")
    if not owner or not name:
        raise _FIELDS.malformed(path, "is not a namespace/project path")
    return owner, name


def _project_repository(project: dict[str, Any]) -> Repository:
    web_url = _FIELDS.string(project, "web_url", "project.web_url").rstrip("/")
    host = _FIELDS.url_host(web_url, "project.web_url")
    full_path = _FIELDS.optional_string(
        project, "path_with_namespace", "project.path_with_namespace"
    )
    if full_path is None:
        full_path = web_url.split("://", 1)[-1].split("/", 1)[-1]
    owner, name = _split_path(full_path, "project.path_with_namespace")
    clone_url = (
        _FIELDS.optional_string(project, "git_http_url", "project.git_http_url")
        or _FIELDS.optional_string(project, "http_url", "project.http_url")
        or f"{web_url}.git"
    )
    default_branch = _FIELDS.string(project, "default_branch", "project.default_branch")
    return _repository(host, owner, name, clone_url, web_url, default_branch)


def _instance_project(payload: dict[str, Any], key: str, instance: str | None) -> Repository:
    """The project a lifecycle system hook names by path, addressed on its instance."""
    if not instance or not instance.strip():
        raise MalformedPayload(
            "The GitLab delivery has no X-Gitlab-Instance header, so the project's URL "
            "cannot be built; GitLab 15.5 and later send it."
        )
    base = instance.strip().rstrip("/")
    if "://" not in base:
        base = f"https://{base}"
    try:
        host = _FIELDS.url_host(base, INSTANCE_HEADER)
    except MalformedPayload:
        raise MalformedPayload(
            "The X-Gitlab-Instance header is not the URL of a GitLab instance."
        ) from None
    full_path = _FIELDS.string(payload, key, key).strip("/")
    owner, name = _split_path(full_path, key)
    web_url = f"{base}/{full_path}"
    return _repository(host, owner, name, f"{web_url}.git", web_url, ASSUMED_DEFAULT_BRANCH)


def _repository(
    host: str, owner: str, name: str, clone_url: str, html_url: str, default_branch: str
) -> Repository:
    try:
        return Repository(
            provider="gitlab",
            host=host,
            owner=owner,
            name=name,
            clone_url=clone_url,
            html_url=html_url,
            default_branch=default_branch,
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        raise MalformedPayload(f"The GitLab payload's project is invalid: {exc}") from exc


def _envelope(
    event_type: str,
    delivery_id: str,
    repository: Repository,
    change: GitChange,
    payload: dict[str, Any],
) -> GitEventReceived:
    return GitEventReceived(
        source=SOURCE,
        delivery_id=delivery_id,
        event_type=event_type,
        repository=repository,
        change=change,
        raw=payload,
    )
