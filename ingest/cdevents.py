"""CDEvents over CloudEvents HTTP: `POST /events/cdevents`.

Both CloudEvents HTTP modes are read:

- binary: the CloudEvent's attributes are `ce-*` headers (`ce-specversion: 1.0`, `ce-id`,
  `ce-source`, `ce-type`, optional `ce-time`, `ce-subject`) and the body is the CDEvent;
- structured: `Content-Type: application/cloudevents+json`, the body is the CloudEvent with
  the CDEvent in `data` (or base64 in `data_base64`).

The CDEvent's own `context` is authoritative: spec versions 0.4 (`context.version`) and 0.5
(`context.specversion`) are read; `(context.source, context.id)` identifies the event and
deduplicates it. Used types (any type version), published to `cairn.ci.events` keyed by
the subject's id:

- `service.deployed|upgraded|rolledback` -> `DeploymentReported` (`success`; a rollback is
  marked), version from the artifact's package URL; `service.removed` -> status `removed`;
- `pipelinerun.queued|started|finished` -> `PipelineRunReported` (`outcome` of a finished run);
- `incident.detected|reported|resolved` -> `IncidentReported`;
- `change.merged` -> `ChangeMerged`.

Every other CDEvents type is accepted and ignored with the reason (202). Services are
matched to entities by `cairn.dev/deployment-name` (the subject id, or its last segment)
and by `cairn.dev/artifact` (the artifact's package URL without its version).

Authentication: `Authorization: Bearer <token>` against `CAIRN_CDEVENTS_TOKEN`
(comma-separated for rotation); without a token, refused unless `--insecure-webhooks`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ingest.common import (
    Ignored,
    MalformedPayload,
    PayloadFields,
    Rejected,
    error_response,
    publish_delivery,
    read_body,
)
from ingest.deployments_api import authenticate_bearer
from services.bus.port import EventLog
from services.model.ci_events import (
    ChangeMerged,
    CiChange,
    CiEventReceived,
    CiSubject,
    DeploymentReported,
    IncidentReported,
    PipelineRunReported,
    PipelineStatus,
    artifact_version,
    parse_time,
)
from services.model.topics import CI_EVENTS

logger = logging.getLogger(__name__)

SOURCE = "cdevents"
STRUCTURED_MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
SUPPORTED_SPEC_VERSIONS = ("0.4", "0.5")

_FIELDS = PayloadFields("CDEvents")
_TYPE = re.compile(r"dev\.cdevents\.([a-z]+)\.([a-z]+)\.(\d+\.\d+\.\d+)(-[0-9A-Za-z.-]+)?")
_USED = {
    ("service", "deployed"),
    ("service", "upgraded"),
    ("service", "rolledback"),
    ("service", "removed"),
    ("pipelinerun", "queued"),
    ("pipelinerun", "started"),
    ("pipelinerun", "finished"),
    ("incident", "detected"),
    ("incident", "reported"),
    ("incident", "resolved"),
    ("change", "merged"),
}
_OUTCOMES: dict[str, PipelineStatus] = {
    "success": "success",
    "failure": "failure",
    "error": "error",
    "cancel": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
_MAX_ID = 500


@dataclass(frozen=True)
class CloudEvent:
    """The CloudEvent carrying a CDEvent, whichever HTTP mode it came in."""

    id: str
    source: str
    type: str
    data: dict[str, Any]


def read_cloud_event(body: bytes, headers: Mapping[str, str]) -> CloudEvent:
    """The CloudEvent of one request (`headers` lower-cased). Raises `Rejected` (400/415)."""
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == BATCH_MEDIA_TYPE:
        raise Rejected(415, "Batched CloudEvents are not accepted; send one CDEvent per request.")
    if media_type == STRUCTURED_MEDIA_TYPE:
        envelope = _json_object(body, "The structured CloudEvent")
        attributes: Mapping[str, Any] = envelope
        data: Any = envelope.get("data")
        if data is None and isinstance(envelope.get("data_base64"), str):
            try:
                data = json.loads(base64.b64decode(envelope["data_base64"], validate=True))
            except (binascii.Error, ValueError):
                raise Rejected(400, "The CloudEvent's data_base64 is not base64 JSON.") from None
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise Rejected(400, "The CloudEvent's data is a string that is not JSON.") from None
        if not isinstance(data, dict):
            raise Rejected(400, "The CloudEvent's data is not a CDEvent (a JSON object).")
        where = "the CloudEvent's"
    else:
        attributes = {
            name[len("ce-") :]: value for name, value in headers.items() if name.startswith("ce-")
        }
        if "specversion" not in attributes:
            raise Rejected(
                400,
                "The request is neither a structured CloudEvent (Content-Type "
                "application/cloudevents+json) nor a binary one (ce-specversion header).",
            )
        data = _json_object(body, "The CDEvent (the binary CloudEvent's body)")
        where = "the ce-"
    values: dict[str, str] = {}
    for name in ("specversion", "id", "source", "type"):
        value = attributes.get(name)
        if not isinstance(value, str) or not value.strip():
            label = f"{where}{name}" if where == "the ce-" else f"{where} '{name}'"
            raise Rejected(400, f"The CloudEvent has no {name}: {label} attribute is missing.")
        values[name] = value.strip()
    if not values["specversion"].startswith("1."):
        raise Rejected(
            400,
            f"CloudEvents spec version {values['specversion']!r} is not 1.0, which Cairn reads.",
        )
    return CloudEvent(id=values["id"], source=values["source"], type=values["type"], data=data)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise Rejected(400, f"{what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise Rejected(400, f"{what} is not a JSON object.")
    return value


@dataclass(frozen=True)
class CDEventContext:
    id: str
    source: str
    type: str
    subject: str
    predicate: str
    spec_version: str
    timestamp: datetime


def read_context(event: dict[str, Any]) -> CDEventContext:
    """The CDEvent's context. Raises `MalformedPayload` naming the field."""
    context = _FIELDS.object(event, "context", "context")
    spec = _FIELDS.optional_string(context, "specversion", "context.specversion")
    if spec is None:
        spec = _FIELDS.optional_string(context, "version", "context.version")
    if spec is None:
        raise _FIELDS.malformed("context.specversion", "is missing (0.4 names it context.version)")
    if not any(spec == v or spec.startswith(f"{v}.") for v in SUPPORTED_SPEC_VERSIONS):
        raise MalformedPayload(
            f"CDEvents spec version {spec!r} is not supported; Cairn reads "
            f"{' and '.join(SUPPORTED_SPEC_VERSIONS)}."
        )
    event_type = _FIELDS.string(context, "type", "context.type")
    match = _TYPE.fullmatch(event_type)
    if match is None:
        raise _FIELDS.malformed("context.type", f"is {event_type!r}, not a CDEvents type")
    stamp = _FIELDS.string(context, "timestamp", "context.timestamp")
    try:
        timestamp = parse_time(stamp)
    except ValueError:
        raise _FIELDS.malformed("context.timestamp", "is not an RFC 3339 time") from None
    event_id = _FIELDS.string(context, "id", "context.id")
    source = _FIELDS.string(context, "source", "context.source")
    if len(event_id) > _MAX_ID or len(source) > _MAX_ID:
        raise MalformedPayload("The CDEvent's context.id or context.source is too long.")
    return CDEventContext(
        id=event_id,
        source=source,
        type=event_type,
        subject=match.group(1),
        predicate=match.group(2),
        spec_version=spec,
        timestamp=timestamp,
    )


def normalise(event: dict[str, Any], delivery_id: str) -> CiEventReceived | Ignored:
    """The envelope for one CDEvent, or why Cairn ignores it. Raises `MalformedPayload`."""
    context = read_context(event)
    if (context.subject, context.predicate) not in _USED:
        return Ignored(
            f"CDEvents type {context.type} is not used by Cairn, which reads service "
            "deployed/upgraded/rolledback/removed, pipelinerun, incident and change.merged events"
        )
    subject = _FIELDS.object(event, "subject", "subject")
    subject_id = _FIELDS.string(subject, "id", "subject.id")
    subject_source = _FIELDS.optional_string(subject, "source", "subject.source") or context.source
    content = _FIELDS.optional_object(subject, "content", "subject.content") or {}
    hints = CiSubject()
    change: CiChange
    if context.subject == "service":
        change, hints = _service(context, subject_id, content)
    elif context.subject == "pipelinerun":
        change = _pipeline_run(context, subject_source, subject_id, content)
    elif context.subject == "incident":
        change, hints = _incident(context, subject_source, subject_id, content)
    else:
        change, hints = _change_merged(context, subject_id, content)
    return CiEventReceived(
        source=SOURCE,
        delivery_id=delivery_id,
        event_type=context.type,
        key=hints.repository or subject_id,
        subject=hints,
        change=change,
        raw=event,
    )


def _environment(content: Mapping[str, Any]) -> str | None:
    environment = _FIELDS.optional_object(content, "environment", "subject.content.environment")
    if environment is None:
        return None
    return _FIELDS.optional_string(
        environment, "name", "subject.content.environment.name"
    ) or _FIELDS.optional_string(environment, "id", "subject.content.environment.id")


def _service(
    context: CDEventContext, subject_id: str, content: Mapping[str, Any]
) -> tuple[DeploymentReported, CiSubject]:
    environment = _environment(content)
    if environment is None:
        raise _FIELDS.malformed("subject.content.environment.id", "is missing")
    artifact = _FIELDS.optional_string(content, "artifactId", "subject.content.artifactId")
    removed = context.predicate == "removed"
    if artifact is None and not removed:
        raise _FIELDS.malformed("subject.content.artifactId", "is missing")
    version = (artifact_version(artifact) or artifact) if artifact else None
    change = DeploymentReported(
        deployment_id=f"{context.source}#{context.id}",
        environment=environment,
        status="removed" if removed else "success",
        occurred_at=context.timestamp,
        version=version,
        version_kind="artifact" if version else None,
        artifact=artifact,
        finished_at=context.timestamp,
        rollback=context.predicate == "rolledback",
        description=f"{context.subject}.{context.predicate}",
    )
    return change, CiSubject(deployment_name=subject_id, artifact=artifact)


def _pipeline_run(
    context: CDEventContext, subject_source: str, subject_id: str, content: Mapping[str, Any]
) -> PipelineRunReported:
    status: PipelineStatus
    if context.predicate == "queued":
        status = "queued"
    elif context.predicate == "started":
        status = "in_progress"
    else:
        outcome = _FIELDS.optional_string(content, "outcome", "subject.content.outcome")
        status = _OUTCOMES.get((outcome or "success").lower(), "failure")
    url = _FIELDS.optional_string(content, "url", "subject.content.url") or _FIELDS.optional_string(
        content, "uri", "subject.content.uri"
    )
    return PipelineRunReported(
        run_id=f"{subject_source}#{subject_id}",
        status=status,
        occurred_at=context.timestamp,
        pipeline=_FIELDS.optional_string(content, "pipelineName", "subject.content.pipelineName"),
        started_at=context.timestamp if context.predicate == "started" else None,
        finished_at=context.timestamp if context.predicate == "finished" else None,
        url=url,
    )


def _incident(
    context: CDEventContext, subject_source: str, subject_id: str, content: Mapping[str, Any]
) -> tuple[IncidentReported, CiSubject]:
    service = _FIELDS.optional_object(content, "service", "subject.content.service")
    service_id = (
        _FIELDS.optional_string(service, "id", "subject.content.service.id") if service else None
    )
    artifact = _FIELDS.optional_string(content, "artifactId", "subject.content.artifactId")
    change = IncidentReported(
        incident_id=f"{subject_source}#{subject_id}",
        status=context.predicate,  # type: ignore[arg-type]
        occurred_at=context.timestamp,
        environment=_environment(content),
        description=_FIELDS.optional_string(content, "description", "subject.content.description"),
        url=_FIELDS.optional_string(content, "ticketURI", "subject.content.ticketURI"),
    )
    return change, CiSubject(deployment_name=service_id, artifact=artifact)


def _change_merged(
    context: CDEventContext, subject_id: str, content: Mapping[str, Any]
) -> tuple[ChangeMerged, CiSubject]:
    repository = _FIELDS.optional_object(content, "repository", "subject.content.repository")
    name = source = None
    if repository is not None:
        name = _FIELDS.optional_string(repository, "id", "subject.content.repository.id")
        source = _FIELDS.optional_string(repository, "source", "subject.content.repository.source")
    key = None
    if name and source:
        host = urlsplit(source).hostname
        if host and name.strip("/").count("/") >= 1:
            key = f"{host}/{name.strip('/')}".lower()
    change = ChangeMerged(
        change_id=f"{context.source}#{subject_id}",
        occurred_at=context.timestamp,
        repository=key or name,
    )
    return change, CiSubject(repository=key)


def create_cdevents_router(
    tokens: Sequence[bytes], log: EventLog, max_bytes: int, *, insecure: bool = False
) -> APIRouter:
    """`POST /events/cdevents`, publishing used CDEvents to `cairn.ci.events`."""
    if not tokens and not insecure:
        logger.info(
            "No CAIRN_CDEVENTS_TOKEN is configured: POST /events/cdevents refuses every "
            "event until one is set."
        )
    router = APIRouter(tags=["ingest"])

    @router.post(
        "/events/cdevents",
        status_code=202,
        summary="Receive a CDEvent (CloudEvents HTTP, binary or structured mode)",
        response_class=JSONResponse,
    )
    async def receive_cdevent(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, max_bytes)
            headers = {name.lower(): value for name, value in request.headers.items()}
            authenticate_bearer(
                headers,
                tokens,
                insecure=insecure,
                variable="CAIRN_CDEVENTS_TOKEN",
                what="CDEvents",
            )
            cloud_event = read_cloud_event(body, headers)
            try:
                context = read_context(cloud_event.data)
                outcome = normalise(cloud_event.data, context.id)
            except MalformedPayload as exc:
                raise Rejected(400, str(exc)) from exc
        except Rejected as rejected:
            return error_response(rejected.status, rejected.message, rejected.headers)
        if isinstance(outcome, Ignored):
            return JSONResponse({"status": "ignored", "reason": outcome.reason}, status_code=202)
        return await publish_delivery(
            log,
            CI_EVENTS.name,
            outcome.key,
            outcome.model_dump_json().encode(),
            delivery=context.id,
            dedupe_id=f"{SOURCE}:{context.source}\n{context.id}",
        )

    return router
