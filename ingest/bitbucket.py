"""Bitbucket Cloud webhooks: signature check and normalisation into `cairn.git.events`.

Pure logic: no HTTP framework, no I/O. A webhook with a secret is signed in `X-Hub-Signature`
as `sha256=<hex HMAC-SHA256 of the body>`; the event is `X-Event-Key` and the delivery
`X-Request-UUID` (the same on Bitbucket's retries, which count up `X-Attempt-Number`).

The main branch. Bitbucket's `repo:push` payload describes the repository without its main
branch: the `repository` object carries `mainbranch` only where Bitbucket includes it (the
REST API's repository does; webhook deliveries usually do not). So:

- when `repository.mainbranch.name` is present, only a change to that branch is used;
- when it is absent, a change to a branch named `main` or `master`
  (`CONVENTIONAL_MAIN_BRANCHES`, tried in that order) is taken as the main branch, and
  pushes to any other branch are ignored with that explanation. A repository whose main
  branch has another name is caught up by a push to it only once Bitbucket names it.

What becomes an event, and what is ignored at the door with the reason sent back:

- `repo:push` with a change (`push.changes[]`) to the main branch -> `PushReceived` from
  `old.target.hash` to `new.target.hash`; `new: null` is a deleted branch. One push can
  change several refs: the main branch's change is the one used, tags are ignored.
- `repo:deleted` -> `RepositoryChanged` `deleted`.
- `repo:updated` that changes the repository's address (`changes.links.old.html.href` or
  `changes.full_name.old`) -> `RepositoryChanged` `renamed` (same workspace) or
  `transferred`, with `previous` at the old address; other updates are ignored.
- every other event key -> ignored.

The repository key is `host/workspace/slug` from `repository.links.html.href`; the clone URL
is that address with `.git`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from ingest.common import (
    Ignored,
    MalformedPayload,
    PayloadFields,
    Rejected,
    SharedSecret,
    verify_sha256_header,
)
from services.model.events import (
    CommitSeen,
    GitChange,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
)

__all__ = ["CONVENTIONAL_MAIN_BRANCHES", "BitbucketWebhooks", "normalise", "verify_signature"]

SOURCE = "bitbucket"
SIGNATURE_HEADER = "x-hub-signature"
EVENT_HEADER = "x-event-key"
DELIVERY_HEADER = "x-request-uuid"

CONVENTIONAL_MAIN_BRANCHES = ("main", "master")

_FIELDS = PayloadFields("Bitbucket")
_EVENT_KEY = re.compile(r"[a-z_]{1,40}:[a-z_:]{1,60}")
_MAX_DELIVERY_ID = 200


# `sha256=<hex HMAC-SHA256 of the body>`, as GitHub signs.
verify_signature = verify_sha256_header
_PROOF = SharedSecret("Bitbucket", "CAIRN_BITBUCKET_WEBHOOK_SECRET")


class BitbucketWebhooks:
    """The Bitbucket Cloud `WebhookSource`: `X-Hub-Signature`, `X-Event-Key`, `X-Request-UUID`.

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
            "X-Hub-Signature",
            lambda header: verify_signature(body, header, self._secrets),
        )

    def identify(self, headers: Mapping[str, str]) -> tuple[str, str]:
        event_key = headers.get(EVENT_HEADER, "").strip()
        delivery_id = headers.get(DELIVERY_HEADER, "").strip()
        if not event_key:
            raise Rejected(400, "The delivery has no X-Event-Key header.")
        if not _EVENT_KEY.fullmatch(event_key):
            raise Rejected(400, "The X-Event-Key header is not a Bitbucket event key.")
        if not delivery_id:
            raise Rejected(400, "The delivery has no X-Request-UUID header.")
        if len(delivery_id) > _MAX_DELIVERY_ID or not delivery_id.isprintable():
            raise Rejected(400, "The X-Request-UUID header is not a delivery id.")
        return event_key, delivery_id

    def normalise(
        self, event_type: str, delivery_id: str, payload: dict[str, Any]
    ) -> GitEventReceived | Ignored:
        return normalise(event_type, delivery_id, payload)


def normalise(
    event_key: str, delivery_id: str, payload: dict[str, Any]
) -> GitEventReceived | Ignored:
    """The envelope for one Bitbucket Cloud delivery, or why Cairn ignores it.

    Raises `MalformedPayload` naming the first field that is missing or of the wrong type.
    """
    if not isinstance(payload, dict):
        raise MalformedPayload("The Bitbucket payload is not a JSON object.")
    if event_key == "repo:push":
        return _push(event_key, delivery_id, payload)
    if event_key == "repo:deleted":
        repository = _repository(_FIELDS.object(payload, "repository", "repository"))
        change = RepositoryChanged(action="deleted")
        return _envelope(event_key, delivery_id, repository, change, payload)
    if event_key == "repo:updated":
        return _updated(event_key, delivery_id, payload)
    return Ignored(f"Bitbucket event {event_key!r} is not used by Cairn")


# --- push ------------------------------------------------------------------------------


def _push(event_key: str, delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    data = _FIELDS.object(payload, "repository", "repository")
    repository = _repository(data)
    main_branch = _main_branch(data)
    push = _FIELDS.object(payload, "push", "push")
    changed: list[str] = []
    for index, change in enumerate(_FIELDS.optional_list(push, "changes", "push.changes")):
        path = f"push.changes[{index}]"
        if not isinstance(change, dict):
            raise _FIELDS.malformed(path, "is not an object")
        new = _FIELDS.optional_object(change, "new", f"{path}.new")
        old = _FIELDS.optional_object(change, "old", f"{path}.old")
        ref, ref_path = (new, f"{path}.new") if new is not None else (old, f"{path}.old")
        if ref is None:
            raise _FIELDS.malformed(f"{path}.new", "and 'old' are both missing")
        kind = _FIELDS.string(ref, "type", f"{ref_path}.type")
        name = _FIELDS.string(ref, "name", f"{ref_path}.name")
        if kind != "branch":
            changed.append(f"{kind} {name}")
            continue
        changed.append(f"refs/heads/{name}")
        if not _is_main(name, main_branch):
            continue
        received = PushReceived(
            ref=f"refs/heads/{name}",
            before=_target_hash(old, f"{path}.old"),
            after=_target_hash(new, f"{path}.new"),
            deleted=new is None,
            commits=_commits(change, path),
        )
        on_branch = repository.model_copy(update={"default_branch": name})
        return _envelope(event_key, delivery_id, on_branch, received, payload)
    if not changed:
        return Ignored("the push changed no refs")
    refs = ", ".join(changed)
    if main_branch is not None:
        return Ignored(f"push to {refs} is not the main branch ({main_branch})")
    return Ignored(
        f"push to {refs} is not to main or master; Bitbucket's push payload does not name the "
        "repository's main branch, so Cairn reads pushes to a branch named main or master"
    )


def _is_main(branch: str, main_branch: str | None) -> bool:
    if main_branch is not None:
        return branch == main_branch
    return branch in CONVENTIONAL_MAIN_BRANCHES


def _main_branch(data: dict[str, Any]) -> str | None:
    main = _FIELDS.optional_object(data, "mainbranch", "repository.mainbranch")
    if main is None:
        return None
    return _FIELDS.optional_string(main, "name", "repository.mainbranch.name")


def _target_hash(ref: dict[str, Any] | None, path: str) -> str | None:
    if ref is None:
        return None
    target = _FIELDS.object(ref, "target", f"{path}.target")
    return _FIELDS.string(target, "hash", f"{path}.target.hash")


def _commits(change: dict[str, Any], path: str) -> list[CommitSeen]:
    seen = []
    for index, commit in enumerate(_FIELDS.optional_list(change, "commits", f"{path}.commits")):
        at = f"{path}.commits[{index}]"
        if not isinstance(commit, dict):
            raise _FIELDS.malformed(at, "is not an object")
        seen.append(
            CommitSeen(
                id=_FIELDS.string(commit, "hash", f"{at}.hash"),
                timestamp=_FIELDS.timestamp(commit, "date", f"{at}.date"),
            )
        )
    return seen


# --- repository ------------------------------------------------------------------------


def _updated(
    event_key: str, delivery_id: str, payload: dict[str, Any]
) -> GitEventReceived | Ignored:
    repository = _repository(_FIELDS.object(payload, "repository", "repository"))
    changes = _FIELDS.optional_object(payload, "changes", "changes") or {}
    previous = _previous_address(changes, repository)
    if previous is None or previous.key == repository.key:
        return Ignored("repo:updated did not change the repository's name or workspace")
    action: Literal["renamed", "transferred"] = (
        "renamed" if previous.owner.lower() == repository.owner.lower() else "transferred"
    )
    change = RepositoryChanged(action=action, previous=previous)
    return _envelope(event_key, delivery_id, repository, change, payload)


def _previous_address(changes: dict[str, Any], repository: Repository) -> Repository | None:
    """The repository at its address before a `repo:updated`, if the update moved it."""
    links = _FIELDS.optional_object(changes, "links", "changes.links")
    old_links = _FIELDS.optional_object(links or {}, "old", "changes.links.old")
    old_html = _FIELDS.optional_object(old_links or {}, "html", "changes.links.old.html")
    href = _FIELDS.optional_string(old_html or {}, "href", "changes.links.old.html.href")
    if href is None:
        full_name = _FIELDS.optional_object(changes, "full_name", "changes.full_name")
        old_name = _FIELDS.optional_string(full_name or {}, "old", "changes.full_name.old")
        if old_name is None:
            return None
        parts = urlsplit(repository.html_url)
        href = f"{parts.scheme}://{parts.netloc}/{old_name.strip('/')}"
    href = href.rstrip("/")
    owner, name = _address(href, "changes.links.old.html.href")
    return repository.model_copy(
        update={
            "host": _FIELDS.url_host(href, "changes.links.old.html.href"),
            "owner": owner,
            "name": name,
            "html_url": href,
            "clone_url": f"{href}.git",
        }
    )


def _address(href: str, path: str) -> tuple[str, str]:
    owner, _, name = urlsplit(href).path.strip("/").rpartition("/")
    if not owner or not name or "/" in owner:
        raise _FIELDS.malformed(path, "is not a https://<host>/<workspace>/<repository> address")
    return owner, name


def _repository(data: dict[str, Any]) -> Repository:
    links = _FIELDS.object(data, "links", "repository.links")
    html = _FIELDS.object(links, "html", "repository.links.html")
    href = _FIELDS.string(html, "href", "repository.links.html.href").rstrip("/")
    host = _FIELDS.url_host(href, "repository.links.html.href")
    owner, name = _address(href, "repository.links.html.href")
    try:
        return Repository(
            provider="bitbucket",
            host=host,
            owner=owner,
            name=name,
            clone_url=f"{href}.git",
            html_url=href,
            default_branch=_main_branch(data) or CONVENTIONAL_MAIN_BRANCHES[0],
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        raise MalformedPayload(
            f"The Bitbucket payload field 'repository' is invalid: {exc}"
        ) from exc


def _envelope(
    event_key: str,
    delivery_id: str,
    repository: Repository,
    change: GitChange,
    payload: dict[str, Any],
) -> GitEventReceived:
    return GitEventReceived(
        source=SOURCE,
        delivery_id=delivery_id,
        event_type=event_key,
        repository=repository,
        change=change,
        raw=payload,
    )
