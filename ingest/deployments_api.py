"""`POST /api/deployments`: any system that can send JSON reports a deployment.

Authenticated with `Authorization: Bearer <token>`, compared in constant time with every
token in `CAIRN_DEPLOYMENTS_TOKEN` (comma-separated, so a token can be rotated); without a
configured token every request is refused unless Cairn runs with `--insecure-webhooks`.
The body is one JSON object:

| field | meaning |
| --- | --- |
| `entity` | the entity deployed (`component:default/payments`, or `payments` for a component) |
| `repository` | or the repository (`github.com/acme/payments` or its URL) |
| `deployment_name` / `artifact` | or a name / package URL matched with the entity's annotations |
| `environment` | required: where it was deployed (`production`) |
| `version` | the version deployed (a tag, a release, an artifact version) |
| `commit` | the commit deployed (lets lead time from commit to deployment be computed) |
| `status` | required: `pending`, `queued`, `in_progress`, `success`, `failure`, `error`, |
| | `cancelled`, `inactive`, `removed` (or `started`, `running`, `succeeded`, `failed`) |
| `started_at` / `finished_at` | ISO 8601 times |
| `occurred_at` | the time of this report (default: `finished_at`, `started_at`, then now) |
| `url` | the run that deployed it |
| `triggered_by`, `description`, `environment_url`, `rollback` | optional |
| `id` | your id for the deployment: reports with one id update one deployment |

Without `id`, a deployment is identified by what it deploys where and when it started. An
`Idempotency-Key` header deduplicates retries. Answers: 202 once durable on
`cairn.ci.events`; 400 naming the field; 401; 413; 503 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ingest.common import (
    MalformedPayload,
    PayloadFields,
    Rejected,
    error_response,
    parse_payload,
    publish_delivery,
    read_body,
)
from services.bus.port import EventLog
from services.model.ci_events import (
    DEPLOYMENT_STATUSES,
    CiEventReceived,
    CiSubject,
    DeploymentReported,
    artifact_name,
    as_utc,
    parse_time,
)
from services.model.events import utcnow
from services.model.refs import InvalidRef, parse_ref
from services.model.topics import CI_EVENTS

logger = logging.getLogger(__name__)

SOURCE = "api"
IDEMPOTENCY_HEADER = "idempotency-key"
_FIELDS = PayloadFields("deployment")
_MAX_ID = 200
_SYNONYMS = {
    "started": "in_progress",
    "running": "in_progress",
    "in-progress": "in_progress",
    "succeeded": "success",
    "successful": "success",
    "deployed": "success",
    "failed": "failure",
    "canceled": "cancelled",
}
_REPOSITORY = re.compile(r"[A-Za-z0-9.-]+(:\d+)?(/[^/\s]+){2,}")


def verify_bearer(header: str | None, tokens: Sequence[bytes]) -> bool:
    """Whether `header` is `Bearer <one of tokens>`; every token is compared in constant time."""
    if header is None:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    try:
        candidate = given.strip().encode("latin-1")
    except UnicodeEncodeError:
        return False
    valid = False
    for token in tokens:
        valid |= hmac.compare_digest(candidate, token)
    return valid


def authenticate_bearer(
    headers: Mapping[str, str],
    tokens: Sequence[bytes],
    *,
    insecure: bool,
    variable: str,
    what: str,
) -> None:
    """Raises `Rejected` (401) unless the request carries one of `tokens` (see module doc)."""
    if not tokens:
        if insecure:
            return
        raise Rejected(
            401,
            f"{what} are refused because no token is configured; set {variable} and send "
            "it as 'Authorization: Bearer <token>', or start Cairn with --insecure-webhooks.",
        )
    header = headers.get("authorization")
    if header is None:
        raise Rejected(
            401, f"The request has no Authorization header; send 'Bearer <token>' ({variable})."
        )
    if not verify_bearer(header, tokens):
        raise Rejected(401, f"The bearer token matches no token configured in {variable}.")


def _repository_key(text: str) -> str:
    value = text.strip()
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _FIELDS.malformed("repository", "is not an http(s) URL or host/owner/name")
        path = parts.path.strip("/").removesuffix(".git")
        value = f"{parts.hostname}/{path}"
    value = value.strip("/").removesuffix(".git")
    if not _REPOSITORY.fullmatch(value):
        raise _FIELDS.malformed("repository", "is not host/owner/name or a repository URL")
    return value.lower()


def _time(payload: Mapping[str, Any], key: str) -> datetime | None:
    stamp = _FIELDS.optional_string(payload, key, key)
    if stamp is None:
        return None
    try:
        return parse_time(stamp)
    except ValueError:
        raise _FIELDS.malformed(key, "is not an ISO 8601 time") from None


def _status(payload: Mapping[str, Any]) -> str:
    raw = _FIELDS.string(payload, "status", "status").strip().lower()
    status = _SYNONYMS.get(raw, raw)
    if status not in DEPLOYMENT_STATUSES:
        raise _FIELDS.malformed(
            "status", f"is {raw!r}, not one of {', '.join(DEPLOYMENT_STATUSES)}"
        )
    return status


def normalise_deployment(payload: dict[str, Any], delivery_id: str) -> CiEventReceived:
    """The envelope for one report. Raises `MalformedPayload` naming the field."""
    entity = _FIELDS.optional_string(payload, "entity", "entity")
    entity_ref: str | None = None
    if entity is not None:
        try:
            entity_ref = str(parse_ref(entity.strip(), default_kind="component"))
        except InvalidRef as exc:
            raise _FIELDS.malformed("entity", f"is not an entity ref ({exc})") from None
    repository_text = _FIELDS.optional_string(payload, "repository", "repository")
    repository = _repository_key(repository_text) if repository_text else None
    name = _FIELDS.optional_string(payload, "deployment_name", "deployment_name")
    artifact = _FIELDS.optional_string(payload, "artifact", "artifact")
    if artifact is not None and artifact_name(artifact) is None:
        raise _FIELDS.malformed("artifact", "is not a package URL (pkg:type/name@version)")
    if not (entity_ref or repository or name or artifact):
        raise MalformedPayload(
            "The deployment names nothing to attach it to; give 'entity', 'repository', "
            "'deployment_name' or 'artifact'."
        )
    environment = _FIELDS.string(payload, "environment", "environment").strip()
    status = _status(payload)
    version = _FIELDS.optional_string(payload, "version", "version")
    commit = _FIELDS.optional_string(payload, "commit", "commit")
    started = _time(payload, "started_at")
    finished = _time(payload, "finished_at")
    occurred = _time(payload, "occurred_at") or finished or started or utcnow()
    target = entity_ref or repository or name or artifact or ""
    given_id = payload.get("id")
    if given_id is not None:
        if isinstance(given_id, bool) or not isinstance(given_id, str | int) or given_id == "":
            raise _FIELDS.malformed("id", "is not a string or number")
        if len(str(given_id)) > _MAX_ID:
            raise _FIELDS.malformed("id", f"is longer than {_MAX_ID} characters")
        deployment_id = str(given_id)
    else:
        started_text = as_utc(started).isoformat() if started else ""
        identity = "\n".join((target, environment.lower(), version or commit or "", started_text))
        deployment_id = hashlib.sha256(identity.encode()).hexdigest()[:32]
    rollback = _FIELDS.boolean(payload, "rollback", "rollback")
    kind = "version" if version else ("commit" if commit else ("artifact" if artifact else None))
    return CiEventReceived(
        source=SOURCE,
        delivery_id=delivery_id,
        event_type="deployment",
        key=entity_ref or repository or target,
        subject=CiSubject(
            entity_ref=entity_ref,
            repository=repository,
            deployment_name=name,
            artifact=artifact,
        ),
        change=DeploymentReported(
            deployment_id=deployment_id,
            environment=environment,
            status=status,  # type: ignore[arg-type]
            occurred_at=occurred,
            version=version or commit or artifact,
            version_kind=kind,  # type: ignore[arg-type]
            commit=commit.lower() if commit else None,
            artifact=artifact,
            started_at=started,
            finished_at=finished,
            url=_FIELDS.optional_string(payload, "url", "url"),
            environment_url=_FIELDS.optional_string(payload, "environment_url", "environment_url"),
            triggered_by=_FIELDS.optional_string(payload, "triggered_by", "triggered_by"),
            description=_FIELDS.optional_string(payload, "description", "description"),
            rollback=rollback,
        ),
        raw=payload,
    )


def create_deployments_router(
    tokens: Sequence[bytes], log: EventLog, max_bytes: int, *, insecure: bool = False
) -> APIRouter:
    """`POST /api/deployments`, publishing accepted reports to `cairn.ci.events`."""
    if not tokens and not insecure:
        logger.info(
            "No CAIRN_DEPLOYMENTS_TOKEN is configured: POST /api/deployments refuses every "
            "report until one is set."
        )
    router = APIRouter(tags=["ingest"])

    @router.post(
        "/api/deployments",
        status_code=202,
        summary="Report a deployment from any CI/CD system",
        response_class=JSONResponse,
    )
    async def report_deployment(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, max_bytes)
            headers = {name.lower(): value for name, value in request.headers.items()}
            authenticate_bearer(
                headers,
                tokens,
                insecure=insecure,
                variable="CAIRN_DEPLOYMENTS_TOKEN",
                what="Deployment reports",
            )
            key = headers.get(IDEMPOTENCY_HEADER, "").strip()
            if key and (len(key) > _MAX_ID or not key.isprintable()):
                raise Rejected(400, "The Idempotency-Key header is not a usable key.")
            delivery = key or str(uuid.uuid4())
            payload = parse_payload(body, headers.get("content-type"))
            try:
                event = normalise_deployment(payload, delivery)
            except MalformedPayload as exc:
                raise Rejected(400, str(exc)) from exc
        except Rejected as rejected:
            return error_response(rejected.status, rejected.message, rejected.headers)
        return await publish_delivery(
            log,
            CI_EVENTS.name,
            event.key,
            event.model_dump_json().encode(),
            delivery=delivery,
            dedupe_id=f"{SOURCE}:{delivery}",
        )

    return router
