"""Gitea and Forgejo webhooks: signature check and normalisation into `cairn.git.events`.

Pure logic: no HTTP framework, no I/O. Forgejo is a Gitea fork with the same payloads; it
sends every header twice, as `X-Forgejo-*` and as `X-Gitea-*`, so one source serves both
(`POST /webhooks/gitea` and `POST /webhooks/forgejo`) and names its deliveries `gitea:<id>`:
a delivery that reaches both routes is still processed once.

The signature (`X-Forgejo-Signature` or `X-Gitea-Signature`) is the bare hex HMAC-SHA256
of the JSON payload under the webhook's secret. For a webhook configured with the
`application/x-www-form-urlencoded` content type Gitea signs the JSON it puts in the form's
`payload` field, not the form-encoded body, so that field is what is verified.

What becomes an event, and what is ignored at the door with the reason sent back:

- `push` to the repository's default branch -> `PushReceived`; an all-zero `after` is a
  deleted branch. Pushes to other branches and to tags are ignored.
- `delete` of the default branch -> a `PushReceived` with `deleted` (Gitea announces a
  deleted branch with this event, not with a push); other deletions are ignored.
- `repository` `deleted` -> `RepositoryChanged` `deleted`; `created` -> `ResyncRequested`
  (a repository made from a template or a migration holds files no push announced).
- `create` and every other event -> ignored.

The repository key is `host/owner/name` from `repository.html_url`, `repository.owner.login`
and `repository.name`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from ingest.common import (
    Ignored,
    MalformedPayload,
    PayloadFields,
    Rejected,
    SharedSecret,
    hmac_sha256_matches,
)
from services.model.events import (
    CommitSeen,
    GitChange,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
    ResyncRequested,
)

__all__ = ["GiteaWebhooks", "normalise", "verify_signature"]

SOURCE = "gitea"
# (lower-case header, as named in errors); Forgejo's own header first.
SIGNATURE_HEADERS = (
    ("x-forgejo-signature", "X-Forgejo-Signature"),
    ("x-gitea-signature", "X-Gitea-Signature"),
)
EVENT_HEADERS = (("x-forgejo-event", "X-Forgejo-Event"), ("x-gitea-event", "X-Gitea-Event"))
DELIVERY_HEADERS = (
    ("x-forgejo-delivery", "X-Forgejo-Delivery"),
    ("x-gitea-delivery", "X-Gitea-Delivery"),
)

_FIELDS = PayloadFields("Gitea")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_MAX_DELIVERY_ID = 200
_ZERO_SHA = re.compile(r"0{40}|0{64}")
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def verify_signature(signed: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """Whether `header` is the bare hex HMAC-SHA256 of `signed` under any of `secrets`.

    Every secret is tried (no early exit) and compared in constant time.
    """
    if header is None:
        return False
    given = header.strip()
    if not _SIGNATURE.fullmatch(given):
        return False
    given = given.lower()
    return hmac_sha256_matches(signed, given, secrets)


def signed_content(body: bytes, content_type: str | None) -> bytes:
    """What Gitea signed: the body, or for a form-encoded delivery its `payload` field."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE:
        return body
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except ValueError:
        return body
    values = fields.get("payload", [])
    return values[0].encode("utf-8") if len(values) == 1 else body


def _first(headers: Mapping[str, str], names: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The first of `names` present in `headers`: (value, header name); ("", "") if none."""
    for header, name in names:
        value = headers.get(header, "").strip()
        if value:
            return value, name
    return "", ""


class GiteaWebhooks:
    """The Gitea/Forgejo `WebhookSource`; `product` only names the sender in messages.

    With secrets configured every delivery must be signed by one of them, even when
    `insecure` is set. Without secrets, deliveries are refused unless `insecure` is set.
    """

    name = SOURCE

    def __init__(
        self, secrets: Sequence[bytes], *, insecure: bool = False, product: str = "Gitea"
    ) -> None:
        self._secrets = list(secrets)
        self._insecure = insecure
        self._product = product
        self._proof = SharedSecret(product, "CAIRN_GITEA_WEBHOOK_SECRET")

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> None:
        header, name = _first(headers, SIGNATURE_HEADERS)
        self._proof.check(
            bool(self._secrets),
            self._insecure,
            header,
            name or "X-Gitea-Signature or X-Forgejo-Signature",
            lambda given: verify_signature(
                signed_content(body, headers.get("content-type")), given, self._secrets
            ),
        )

    def identify(self, headers: Mapping[str, str]) -> tuple[str, str]:
        event_type, _ = _first(headers, EVENT_HEADERS)
        delivery_id, delivery_header = _first(headers, DELIVERY_HEADERS)
        if not event_type:
            raise Rejected(400, "The delivery has no X-Gitea-Event or X-Forgejo-Event header.")
        if not _EVENT_NAME.fullmatch(event_type):
            raise Rejected(400, f"The event header is not a {self._product} event name.")
        if not delivery_id:
            raise Rejected(
                400, "The delivery has no X-Gitea-Delivery or X-Forgejo-Delivery header."
            )
        if len(delivery_id) > _MAX_DELIVERY_ID or not delivery_id.isprintable():
            raise Rejected(400, f"The {delivery_header} header is not a delivery id.")
        return event_type, delivery_id

    def normalise(
        self, event_type: str, delivery_id: str, payload: dict[str, Any]
    ) -> GitEventReceived | Ignored:
        return normalise(event_type, delivery_id, payload)


def normalise(
    event_type: str, delivery_id: str, payload: dict[str, Any]
) -> GitEventReceived | Ignored:
    """The envelope for one Gitea or Forgejo delivery, or why Cairn ignores it.

    Raises `MalformedPayload` naming the first field that is missing or of the wrong type.
    """
    if not isinstance(payload, dict):
        raise MalformedPayload("The Gitea payload is not a JSON object.")
    if event_type == "push":
        return _push(delivery_id, payload)
    if event_type == "delete":
        return _delete(delivery_id, payload)
    if event_type == "repository":
        return _repository_event(delivery_id, payload)
    if event_type == "create":
        return Ignored("a created branch or tag is announced again by its push event")
    return Ignored(f"Gitea event {event_type!r} is not used by Cairn")


def _push(delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    repository = _repository(_FIELDS.object(payload, "repository", "repository"))
    ref = _FIELDS.string(payload, "ref", "ref")
    default_ref = f"refs/heads/{repository.default_branch}"
    if ref != default_ref:
        return Ignored(f"push to {ref} is not the default branch ({repository.default_branch})")
    after = _sha(payload, "after")
    change = PushReceived(
        ref=ref,
        before=_sha(payload, "before"),
        after=after,
        deleted=after is None,
        commits=_commits(payload),
    )
    return _envelope("push", delivery_id, repository, change, payload)


def _delete(delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    repository = _repository(_FIELDS.object(payload, "repository", "repository"))
    ref_type = _FIELDS.string(payload, "ref_type", "ref_type")
    ref = _FIELDS.string(payload, "ref", "ref").removeprefix("refs/heads/")
    if ref_type != "branch" or ref != repository.default_branch:
        return Ignored(
            f"deleted {ref_type} {ref} is not the default branch ({repository.default_branch})"
        )
    change = PushReceived(ref=f"refs/heads/{ref}", deleted=True)
    return _envelope("delete", delivery_id, repository, change, payload)


def _repository_event(delivery_id: str, payload: dict[str, Any]) -> GitEventReceived | Ignored:
    repository = _repository(_FIELDS.object(payload, "repository", "repository"))
    action = _FIELDS.string(payload, "action", "action")
    change: GitChange
    if action == "deleted":
        change = RepositoryChanged(action="deleted")
    elif action == "created":
        change = ResyncRequested(reason=f"repository {repository.full_name} was created")
    else:
        return Ignored(f"repository action {action!r} is not used by Cairn")
    return _envelope("repository", delivery_id, repository, change, payload)


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


def _repository(data: dict[str, Any]) -> Repository:
    html_url = _FIELDS.string(data, "html_url", "repository.html_url").rstrip("/")
    owner = _FIELDS.object(data, "owner", "repository.owner")
    login = _FIELDS.optional_string(owner, "login", "repository.owner.login")
    if login is None:
        login = _FIELDS.string(owner, "username", "repository.owner.login")
    try:
        return Repository(
            provider="gitea",
            host=_FIELDS.url_host(html_url, "repository.html_url"),
            owner=login,
            name=_FIELDS.string(data, "name", "repository.name"),
            clone_url=_FIELDS.string(data, "clone_url", "repository.clone_url"),
            html_url=html_url,
            default_branch=_FIELDS.string(data, "default_branch", "repository.default_branch"),
            archived=_FIELDS.boolean(data, "archived", "repository.archived"),
        )
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        raise MalformedPayload(f"The Gitea payload field 'repository' is invalid: {exc}") from exc


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
