"""What every webhook source shares: bounded reading, parsing, durable publish, the answers.

A source (GitHub, GitLab, Gitea/Forgejo, Bitbucket Cloud) is a `WebhookSource`: it
authenticates the raw body, names the delivery from its headers and normalises the payload
into a `GitEventReceived` or an `Ignored`. `receive_git_delivery` runs the same pipeline for
every source, so adding one is a module implementing the protocol plus one route:

    size (Content-Length, then the streamed body) -> authenticate -> identify -> parse
    -> normalise -> publish to `cairn.git.events` -> 202

A host's CI/CD events (GitHub `deployment`/`workflow_run`, GitLab `Deployment Hook`/
`Pipeline Hook`) arrive on the same route and normalise into a `CiEventReceived`, which is
published to `cairn.ci.events` instead.

The answers are the HTTP contract of every receiver:

- 202 `{"status": "accepted", "delivery": id, "offset": n}` only after `EventLog.publish`
  returned, i.e. the event is durable (ARCHITECTURE.md, invariant 1);
- 202 `{"status": "duplicate", "delivery": id}` when the log already holds that delivery;
- 202 `{"status": "ignored", "reason": ...}` for deliveries Cairn does not use;
- 4xx/5xx `{"error": "<one sentence>"}`; 503 with `Retry-After` when the log is down.

Sources whose events are not git events (CDEvents, CI systems) reuse `read_body`,
`parse_payload` and `publish_delivery` with their own topic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from services.bus.port import EventLog, LogUnavailable, PublishResult
from services.model.ci_events import CiEventReceived
from services.model.events import GitEventReceived
from services.model.topics import CI_EVENTS, GIT_EVENTS

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_MAX_FORM_FIELDS = 100


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery that Cairn does not use; `reason` is shown to the sender."""

    reason: str


class MalformedPayload(ValueError):
    """The payload does not have the shape the source documents; the message names the field."""


class Rejected(Exception):
    """A delivery refused before publishing: an HTTP status and one sentence saying why."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class WebhookSource(Protocol):
    """One git host's webhook dialect. Pure logic: no HTTP framework, no I/O.

    `headers` are the request headers with lower-case names. `authenticate` and `identify`
    raise `Rejected`; `normalise` raises `MalformedPayload`.
    """

    name: str  # prefixes delivery ids in the log ("github:<id>"), so sources never collide

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> None: ...

    def identify(self, headers: Mapping[str, str]) -> tuple[str, str]:
        """The delivery's (event type, delivery id)."""
        ...

    def normalise(
        self, event_type: str, delivery_id: str, payload: dict[str, Any]
    ) -> GitEventReceived | CiEventReceived | Ignored: ...


class PayloadFields:
    """Typed access to a delivery's JSON, naming the host and the field's path in errors.

    Every accessor raises `MalformedPayload` ("The GitLab payload field 'project.web_url'
    is missing.") so a sender's 400 says exactly what was wrong.
    """

    def __init__(self, host: str) -> None:
        self.host = host

    def malformed(self, path: str, problem: str) -> MalformedPayload:
        return MalformedPayload(f"The {self.host} payload field '{path}' {problem}.")

    def optional_object(
        self, data: Mapping[str, Any], key: str, path: str
    ) -> dict[str, Any] | None:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.malformed(path, "is not an object")
        return value

    def object(self, data: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        value = self.optional_object(data, key, path)
        if value is None:
            raise self.malformed(path, "is missing")
        return value

    def optional_list(self, data: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.malformed(path, "is not a list")
        return value

    def optional_string(self, data: Mapping[str, Any], key: str, path: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.malformed(path, "is not a string")
        return value or None

    def string(self, data: Mapping[str, Any], key: str, path: str) -> str:
        value = self.optional_string(data, key, path)
        if value is None:
            raise self.malformed(path, "is missing")
        return value

    def boolean(self, data: Mapping[str, Any], key: str, path: str) -> bool:
        value = data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.malformed(path, "is not a boolean")
        return value

    def timestamp(self, data: Mapping[str, Any], key: str, path: str) -> datetime | None:
        stamp = self.optional_string(data, key, path)
        if stamp is None:
            return None
        try:
            return datetime.fromisoformat(stamp)
        except ValueError:
            raise self.malformed(path, "is not an ISO 8601 time") from None

    def url_host(self, url: str, path: str) -> str:
        """The lower-cased host of an absolute URL; a `file:` URL (demo repositories) is
        `localhost`."""
        parts = urlsplit(url)
        if parts.scheme == "file":
            return "localhost"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.malformed(path, "is not an absolute http(s) URL")
        return parts.hostname.lower()


@runtime_checkable
class ReadsDeliveryHeaders(Protocol):
    """A source whose normalisation also needs the delivery's headers.

    GitLab system hooks about a project's lifecycle carry only the project's path; the
    instance that sent them is named in the `X-Gitlab-Instance` header. Such a source
    implements `normalise_delivery`, which `receive_git_delivery` calls instead of
    `normalise`; `headers` have lower-case names.
    """

    def normalise_delivery(
        self,
        event_type: str,
        delivery_id: str,
        payload: dict[str, Any],
        headers: Mapping[str, str],
    ) -> GitEventReceived | CiEventReceived | Ignored: ...


def hmac_sha256_matches(body: bytes, given_hex: str, secrets: Sequence[bytes]) -> bool:
    """Whether `given_hex` is the HMAC-SHA256 of `body` under any secret (rotation).

    Every secret is compared, in constant time, so timing tells nothing about which matched.
    """
    valid = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        valid |= hmac.compare_digest(expected, given_hex)
    return valid


_SHA256_HEADER = re.compile(r"sha256=([0-9a-fA-F]{64})")


def verify_sha256_header(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body>` under any of `secrets` (the
    form GitHub's `X-Hub-Signature-256` and Bitbucket's `X-Hub-Signature` take)."""
    if header is None:
        return False
    match = _SHA256_HEADER.fullmatch(header.strip())
    return match is not None and hmac_sha256_matches(body, match.group(1).lower(), secrets)


@dataclass(frozen=True)
class SharedSecret:
    """How a Git host proves that a delivery is its own, and what to tell the sender when it
    does not: the product, the setting holding the secrets, what the host calls the secret
    and whether it signs the body with it (`signature`) or sends it as is (`token`)."""

    product: str
    setting: str
    proof: str = "signature"  # or "token"
    secret: str = "secret"

    def check(
        self,
        configured: bool,
        insecure: bool,
        header: str | None,
        header_name: str,
        valid: Callable[[str], bool],
    ) -> None:
        """Accept the delivery, or raise Rejected(401) saying what to fix. With secrets
        configured every delivery must prove itself, even when `insecure` is set; without,
        deliveries are refused unless `insecure` is set."""
        if not configured:
            if insecure:
                return
            unproven = (
                "Unsigned deliveries"
                if self.proof == "signature"
                else f"Deliveries without a {self.proof}"
            )
            raise Rejected(
                401,
                f"{unproven} are refused because no {self.product} webhook {self.secret} is "
                f"configured; set {self.setting} (and the same {self.secret} on the "
                f"{self.product} webhook) or start Cairn with --insecure-webhooks.",
            )
        if not header:
            raise Rejected(
                401,
                f"The delivery has no {header_name} header; set the webhook's {self.secret} "
                f"on {self.product} to the value of {self.setting}.",
            )
        if not valid(header):
            raise Rejected(
                401,
                f"The {header_name} header does not match the delivery under any "
                f"configured {self.secret}; check the webhook's {self.secret} against "
                f"{self.setting}.",
            )


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def _too_large(max_bytes: int) -> Rejected:
    return Rejected(
        413,
        f"The delivery is larger than the {max_bytes}-byte limit; "
        "raise CAIRN_MAX_PAYLOAD_BYTES if such deliveries are expected.",
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `max_bytes`.

    The declared Content-Length is checked first, then the streamed bytes are counted, so a
    missing or lying Content-Length cannot make the receiver buffer more than the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise Rejected(400, "The Content-Length header is not a whole number.") from None
        if length < 0:
            raise Rejected(400, "The Content-Length header is negative.")
        if length > max_bytes:
            raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > max_bytes:
            raise _too_large(max_bytes)
        body.extend(chunk)
    return bytes(body)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def parse_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object a delivery carries, as `application/json` or a form's `payload` field.

    GitHub (and Gitea) can be configured to send `application/x-www-form-urlencoded` with
    the JSON in a `payload` field; the signature covers the form-encoded body as sent.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    text: str | bytes = body
    if media_type == _FORM_MEDIA_TYPE:
        try:
            fields = parse_qs(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
                max_num_fields=_MAX_FORM_FIELDS,
            )
        except ValueError:
            raise Rejected(400, "The form-encoded delivery body could not be decoded.") from None
        values = fields.get("payload", [])
        if len(values) != 1:
            raise Rejected(400, "The form-encoded delivery has no single 'payload' field.")
        text = values[0]
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise Rejected(400, "The delivery body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise Rejected(400, f"The delivery body is {_json_kind(payload)}, not a JSON object.")
    return payload


class PublishesOnLoop(Protocol):
    """An event log that can publish from an event loop without holding a thread while it
    waits for the write to be durable (the Kafka log); same contract as `publish`."""

    async def publish_async(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult: ...


async def _publish(
    log: EventLog, topic: str, key: str, value: bytes, dedupe_id: str
) -> PublishResult:
    # getattr, not isinstance on a runtime protocol: this runs for every delivery.
    if getattr(log, "publish_async", None) is not None:
        native = cast(PublishesOnLoop, log)
        return await native.publish_async(topic, key, value, delivery_id=dedupe_id)
    return await run_in_threadpool(log.publish, topic, key, value, delivery_id=dedupe_id)


async def publish_delivery(
    log: EventLog,
    topic: str,
    key: str,
    value: bytes,
    *,
    delivery: str,
    dedupe_id: str,
) -> JSONResponse:
    """Publish one record durably and answer the sender; 2xx only if `publish` returned.

    `delivery` is the sender's own delivery id (echoed back); `dedupe_id` is the log's
    once-only key for it. A log that cannot publish from the event loop (the embedded
    SQLite log) publishes in a worker thread.
    """
    try:
        result = await _publish(log, topic, key, value, dedupe_id)
    except LogUnavailable as exc:
        logger.warning("Delivery %s not accepted: the event log is unavailable: %s", delivery, exc)
        return error_response(
            503,
            "The event log cannot take writes right now, so the delivery was not accepted; "
            "retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except Exception:
        logger.exception("Delivery %s not accepted: publishing to %s failed.", delivery, topic)
        return error_response(
            500, "The delivery could not be recorded because of an internal error."
        )
    if result.duplicate:
        return JSONResponse({"status": "duplicate", "delivery": delivery}, status_code=202)
    return JSONResponse(
        {"status": "accepted", "delivery": delivery, "offset": result.offset}, status_code=202
    )


async def receive_git_delivery(
    request: Request, source: WebhookSource, log: EventLog, max_bytes: int
) -> JSONResponse:
    """Run one git-host delivery through the shared pipeline and answer it."""
    try:
        body = await read_body(request, max_bytes)
        headers = {name.lower(): value for name, value in request.headers.items()}
        source.authenticate(body, headers)
        event_type, delivery = source.identify(headers)
        payload = parse_payload(body, headers.get("content-type"))
        try:
            # Not isinstance on the runtime protocol, which walks it on every delivery.
            if getattr(source, "normalise_delivery", None) is not None:
                reads_headers = cast(ReadsDeliveryHeaders, source)
                outcome = reads_headers.normalise_delivery(event_type, delivery, payload, headers)
            else:
                outcome = source.normalise(event_type, delivery, payload)
        except MalformedPayload as exc:
            raise Rejected(400, str(exc)) from exc
    except Rejected as rejected:
        return error_response(rejected.status, rejected.message, rejected.headers)
    if isinstance(outcome, Ignored):
        return JSONResponse({"status": "ignored", "reason": outcome.reason}, status_code=202)
    # A host's CI/CD events (deployments, pipelines) share its route and go to the CI topic.
    if isinstance(outcome, CiEventReceived):
        topic, key = CI_EVENTS.name, outcome.key
    else:
        topic, key = GIT_EVENTS.name, outcome.repository.key
    return await publish_delivery(
        log,
        topic,
        key,
        outcome.model_dump_json().encode(),
        delivery=delivery,
        dedupe_id=f"{source.name}:{delivery}",
    )
