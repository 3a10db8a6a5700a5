"""GitHub webhooks: signature check and normalisation into `cairn.git.events` envelopes.

Pure logic: no HTTP framework, no I/O. What becomes an event, and what is ignored at the
door (with the reason sent back to GitHub, visible in the hook's "Recent Deliveries"):

- `push` to the repository's default branch -> `PushReceived`. Pushes to other branches and
  to tags are ignored here: the catalog reads only the default branch, so they would only
  take log space. Creating or deleting the default branch is still a push and is kept.
  All-zero SHAs (GitHub's "no commit" for created/deleted refs) become `None`.
- `repository` with `deleted`, `archived`, `unarchived`, `renamed`, `transferred` ->
  `RepositoryChanged`; for renamed/transferred `previous` is the repository under its old
  name/owner, with its URLs rewritten to the old path where they end in `/<owner>/<name>`.
- `repository` `created`, and `edited` that changes the default branch ->
  `ResyncRequested`: a new repository may already hold catalog files (templates, imports)
  and no push event announces them; a new default branch changes what the catalog reads.
  Other `edited`, `publicized` and `privatized` deliveries change nothing in the catalog.
- `deployment`, `deployment_status`, `workflow_run` -> a `CiEventReceived` for
  `cairn.ci.events` (ingest/ci_github.py).
- `ping` and every other event -> ignored.

The repository key's host is the hostname of `repository.html_url` (so GitHub Enterprise
hosts stay apart); a `file:` URL, as the demo repositories use, has host `localhost`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from ingest.ci_github import CI_EVENT_TYPES, normalise_ci
from ingest.common import Ignored, MalformedPayload, Rejected, SharedSecret, verify_sha256_header
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

__all__ = [
    "GitHubWebhooks",
    "Ignored",
    "MalformedPayload",
    "normalise",
    "verify_signature",
]

SOURCE = "github"
SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"

_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_MAX_DELIVERY_ID = 200
_ZERO_SHA = re.compile(r"0{40}|0{64}")
_REPOSITORY_CHANGES: dict[str, Literal["deleted", "archived", "unarchived"]] = {
    "deleted": "deleted",
    "archived": "archived",
    "unarchived": "unarchived",
}
_UNUSED_REPOSITORY_ACTIONS = ("publicized", "privatized")


# `sha256=<hex HMAC-SHA256 of the body>`; several secrets allow rotation: configure old and
# new, switch GitHub, drop the old.
verify_signature = verify_sha256_header
_PROOF = SharedSecret("GitHub", "CAIRN_GITHUB_WEBHOOK_SECRET")


class GitHubWebhooks:
    """The GitHub `WebhookSource`: `X-Hub-Signature-256`, `X-GitHub-Event`, `X-GitHub-Delivery`.

    With secrets configured every delivery must be signed by one of them, even when
    `insecure` is set. Without secrets, deliveries are refused unless `insecure` is set.
    """

    name = SOURCE

    def __init__(self, secrets: Sequence[bytes], *, insecure: bool = False) -> None:
        self._secrets = list(secrets)
        self._insecure = insecure

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> None:
        _PROOF.check(
            bool(self._secrets),
            self._insecure,
            headers.get(SIGNATURE_HEADER),
            "X-Hub-Signature-256",
            lambda header: verify_signature(body, header, self._secrets),
        )

    def identify(self, headers: Mapping[str, str]) -> tuple[str, str]:
        event_type = headers.get(EVENT_HEADER, "").strip()
        delivery_id = headers.get(DELIVERY_HEADER, "").strip()
        if not event_type:
            raise Rejected(400, "The delivery has no X-GitHub-Event header.")
        if not _EVENT_NAME.fullmatch(event_type):
            raise Rejected(400, "The X-GitHub-Event header is not a GitHub event name.")
        if not delivery_id:
            raise Rejected(400, "The delivery has no X-GitHub-Delivery header.")
        if len(delivery_id) > _MAX_DELIVERY_ID or not delivery_id.isprintable():
            raise Rejected(400, "The X-GitHub-Delivery header is not a delivery id.")
        return event_type, delivery_id

    def normalise(
        self, event_type: str, delivery_id: str, payload: dict[str, Any]
    ) -> GitEventReceived | CiEventReceived | Ignored:
        return normalise(event_type, delivery_id, payload)


def normalise(
    event_type: str, delivery_id: str, payload: dict[str, Any]
) -> GitEventReceived | CiEventReceived | Ignored:
    """The envelope for one GitHub delivery, or why Cairn ignores it (see the module doc).

    Raises `MalformedPayload` naming the first field that is missing or of the wrong type.
    """
    if not isinstance(payload, dict):
        raise MalformedPayload("The GitHub payload is not a JSON object.")
    if event_type == "push":
        return _push(delivery_id, payload)
    if event_type == "repository":
        return _repository_event(delivery_id, payload)
    if event_type in CI_EVENT_TYPES:  # deployments and workflow runs: ingest/ci_github.py
        return normalise_ci(event_type, delivery_id, payload)
    if event_type == "ping":
        return Ignored(
            "GitHub ping received: the webhook reaches Cairn, which uses push and repository events"
        )
    return Ignored(f"GitHub event {event_type!r} is not used by Cairn")


# --- push ------------------------------------------------------------------------------


def _push(delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    repository = _repository(_object(payload, "repository", "repository"))
    ref = _string(payload, "ref", "ref")
    default_ref = f"refs/heads/{repository.default_branch}"
    if ref != default_ref:
        return Ignored(f"push to {ref} is not the default branch ({repository.default_branch})")
    change = PushReceived(
        ref=ref,
        before=_sha(payload, "before"),
        after=_sha(payload, "after"),
        deleted=_boolean(payload, "deleted", "deleted"),
        commits=_commits(payload),
    )
    return _envelope("push", delivery_id, repository, change, payload)


def _sha(payload: dict[str, Any], key: str) -> str | None:
    value = _optional_string(payload, key, key)
    if value is None or _ZERO_SHA.fullmatch(value):
        return None
    return value


def _commits(payload: dict[str, Any]) -> list[CommitSeen]:
    commits = payload.get("commits")
    if commits is None:
        return []
    if not isinstance(commits, list):
        raise MalformedPayload("The GitHub payload field 'commits' is not a list.")
    seen = []
    for index, commit in enumerate(commits):
        path = f"commits[{index}]"
        if not isinstance(commit, dict):
            raise MalformedPayload(f"The GitHub payload field '{path}' is not an object.")
        commit_id = _string(commit, "id", f"{path}.id")
        stamp = _optional_string(commit, "timestamp", f"{path}.timestamp")
        timestamp = None
        if stamp is not None:
            try:
                timestamp = datetime.fromisoformat(stamp)
            except ValueError:
                raise MalformedPayload(
                    f"The GitHub payload field '{path}.timestamp' is not an ISO 8601 time."
                ) from None
        seen.append(CommitSeen(id=commit_id, timestamp=timestamp))
    return seen


# --- repository ------------------------------------------------------------------------


def _repository_event(delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    repository = _repository(_object(payload, "repository", "repository"))
    action = _string(payload, "action", "action")
    change: GitChange
    if action in _REPOSITORY_CHANGES:
        change = RepositoryChanged(action=_REPOSITORY_CHANGES[action])
    elif action == "renamed":
        old_name = _string(
            _path_object(payload, ("changes", "repository", "name")),
            "from",
            "changes.repository.name.from",
        )
        change = RepositoryChanged(action="renamed", previous=_moved(repository, name=old_name))
    elif action == "transferred":
        change = RepositoryChanged(
            action="transferred",
            previous=_moved(repository, owner=_previous_owner(payload)),
        )
    elif action == "created":
        change = ResyncRequested(reason=f"repository {repository.full_name} was created")
    elif action == "edited":
        old_branch = _edited_default_branch(payload)
        if old_branch is None:
            return Ignored("repository edited without a default-branch change: nothing to re-read")
        change = ResyncRequested(
            reason=(
                f"default branch of {repository.full_name} changed from {old_branch} "
                f"to {repository.default_branch}"
            )
        )
    elif action in _UNUSED_REPOSITORY_ACTIONS:
        return Ignored(f"repository {action}: visibility does not change the catalog")
    else:
        return Ignored(f"repository action {action!r} is not used by Cairn")
    return _envelope("repository", delivery_id, repository, change, payload)


def _previous_owner(payload: dict[str, Any]) -> str:
    source = _path_object(payload, ("changes", "owner", "from"))
    for kind in ("organization", "user"):
        account = source.get(kind)
        if isinstance(account, dict):
            return _string(account, "login", f"changes.owner.from.{kind}.login")
    raise MalformedPayload(
        "The GitHub payload field 'changes.owner.from' names neither an organization nor a user."
    )


def _edited_default_branch(payload: dict[str, Any]) -> str | None:
    changes = payload.get("changes")
    if not isinstance(changes, dict):
        return None
    default_branch = changes.get("default_branch")
    if not isinstance(default_branch, dict):
        return None
    return _optional_string(default_branch, "from", "changes.default_branch.from")


def _moved(
    repository: Repository, *, owner: str | None = None, name: str | None = None
) -> Repository:
    """The repository as it was addressed before a rename or transfer."""
    old_owner = owner or repository.owner
    old_name = name or repository.name
    current_tail = f"/{repository.owner}/{repository.name}"
    old_tail = f"/{old_owner}/{old_name}"

    def relocate(url: str) -> str:
        for suffix in (".git", ""):
            if url.endswith(current_tail + suffix):
                return url[: -len(current_tail + suffix)] + old_tail + suffix
        return url

    return repository.model_copy(
        update={
            "owner": old_owner,
            "name": old_name,
            "html_url": relocate(repository.html_url),
            "clone_url": relocate(repository.clone_url),
        }
    )


def _repository(data: dict[str, Any]) -> Repository:
    html_url = _string(data, "html_url", "repository.html_url")
    owner = _object(data, "owner", "repository.owner")
    login = owner.get("login")
    if not isinstance(login, str) or not login:
        login = _string(owner, "name", "repository.owner.login")
    default_branch = _optional_string(data, "default_branch", "repository.default_branch")
    if not default_branch:
        default_branch = _optional_string(data, "master_branch", "repository.master_branch")
    if not default_branch:
        raise MalformedPayload("The GitHub payload field 'repository.default_branch' is missing.")
    try:
        return Repository(
            host=_host(html_url),
            owner=login,
            name=_string(data, "name", "repository.name"),
            clone_url=_string(data, "clone_url", "repository.clone_url"),
            html_url=html_url,
            default_branch=default_branch,
            archived=_boolean(data, "archived", "repository.archived"),
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        raise MalformedPayload(f"The GitHub payload field 'repository' is invalid: {exc}") from exc


def _host(html_url: str) -> str:
    parts = urlsplit(html_url)
    if parts.scheme == "file":
        return "localhost"
    if not parts.hostname:
        raise MalformedPayload(
            "The GitHub payload field 'repository.html_url' is not an absolute URL with a host."
        )
    return parts.hostname.lower()


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


# --- typed field access with the field's path in every error ----------------------------


def _object(data: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        raise MalformedPayload(f"The GitHub payload field '{path}' is missing.")
    if not isinstance(value, dict):
        raise MalformedPayload(f"The GitHub payload field '{path}' is not an object.")
    return value


def _path_object(data: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    current: Mapping[str, Any] = data
    for depth, key in enumerate(keys, start=1):
        current = _object(current, key, ".".join(keys[:depth]))
    return dict(current)


def _optional_string(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedPayload(f"The GitHub payload field '{path}' is not a string.")
    return value


def _string(data: Mapping[str, Any], key: str, path: str) -> str:
    value = _optional_string(data, key, path)
    if not value:
        raise MalformedPayload(f"The GitHub payload field '{path}' is missing.")
    return value


def _boolean(data: Mapping[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedPayload(f"The GitHub payload field '{path}' is not a boolean.")
    return value
