"""Deployments and pipeline runs over HTTP: `GET /api/deployments`, `GET /api/pipelines`.

Both list newest first (by when the deployment or run began) with a keyset cursor, and take
filters that repeat for OR within a field and AND across fields:

- `entity` (an entity ref; a bare name is a Component), `system`, `owner` (of the entities
  the record is attached to), `environment` (deployments), `status`, `repository`
  (`host/owner/name`), `since` (`24h`, `7d`, `30m` or an ISO 8601 time), `unmatched`
  (`true`: only records attached to no entity yet; `false`: only attached ones),
  `limit` (1-500) and `cursor`.

A deployment shows the entities it is attached to, its status and every transition, its
times, the run's URL, who triggered it, whether it was a rollback, and, when the commit was
seen in a push, the commit's time and the lead time from commit to deployment.

The entity endpoints carry, for an entity with CI/CD records, its environments in
`status.deployments` and links to these listings in `metadata.links`
(`entity_decorator`, applied by CatalogQueries.decorate_entity).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.model.ci_events import (
    DeploymentRecord,
    EnvironmentState,
    PipelineRunRecord,
    StatusTransition,
    as_utc,
    parse_since,
)
from services.model.refs import InvalidRef, parse_ref
from services.store.deployments_store import (
    MAX_PAGE,
    CiPage,
    CiQuery,
    DeploymentReads,
    InvalidCursor,
)

Values = Annotated[list[str] | None, Query(description="repeat for OR")]
MAX_VALUE_LENGTH = 500
DEPLOYMENTS_PARAMETERS = frozenset(
    {
        "entity",
        "system",
        "owner",
        "environment",
        "status",
        "repository",
        "since",
        "unmatched",
        "limit",
        "cursor",
    }
)
PIPELINES_PARAMETERS = DEPLOYMENTS_PARAMETERS - {"environment"}


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class TransitionItem(BaseModel):
    status: str
    at: datetime


class DeploymentItem(BaseModel):
    id: str
    source: str
    entities: list[str]
    matched: bool
    repository: str | None
    environment: str
    version: str | None
    version_kind: str | None
    commit: str | None
    ref: str | None
    artifact: str | None
    status: str
    transitions: list[TransitionItem]
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    url: str | None
    environment_url: str | None
    triggered_by: str | None
    description: str | None
    rollback: bool
    commit_at: datetime | None
    lead_time_seconds: float | None


class DeploymentList(BaseModel):
    items: list[DeploymentItem]
    next_cursor: str | None


class PipelineRunItem(BaseModel):
    id: str
    source: str
    entities: list[str]
    matched: bool
    repository: str | None
    pipeline: str | None
    branch: str | None
    commit: str | None
    status: str
    transitions: list[TransitionItem]
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    url: str | None
    triggered_by: str | None


class PipelineRunList(BaseModel):
    items: list[PipelineRunItem]
    next_cursor: str | None


def _bad(parameter: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"error": message, "parameter": parameter})


def _check_parameters(request: Request, known: frozenset[str], path: str) -> None:
    for name in request.query_params:
        if name not in known:
            raise BadParameter(
                name, f"Unknown parameter {name!r}: {path} takes {', '.join(sorted(known))}."
            )
    for name, value in request.query_params.multi_items():
        if not value.strip() or len(value) > MAX_VALUE_LENGTH:
            raise BadParameter(
                name, f"Parameter {name!r} needs a value of 1 to {MAX_VALUE_LENGTH} characters."
            )


def _refs(values: list[str] | None, default_kind: str, parameter: str) -> list[str]:
    refs = []
    for value in values or []:
        try:
            refs.append(str(parse_ref(value.strip(), default_kind=default_kind)))
        except InvalidRef as exc:
            raise BadParameter(parameter, f"Parameter {parameter!r}: {exc}") from None
    return refs


def _query(
    entity: list[str] | None,
    system: list[str] | None,
    owner: list[str] | None,
    environment: list[str] | None,
    status: list[str] | None,
    repository: list[str] | None,
    since: str | None,
    unmatched: bool | None,
    limit: int,
    cursor: str | None,
) -> CiQuery:
    when = None
    if since is not None:
        try:
            when = parse_since(since)
        except ValueError as exc:
            raise BadParameter("since", str(exc)) from None
    return CiQuery(
        entities=_refs(entity, "component", "entity"),
        systems=_refs(system, "system", "system"),
        owners=_refs(owner, "group", "owner"),
        environments=environment or [],
        statuses=status or [],
        repositories=repository or [],
        since=when,
        unmatched=unmatched,
        limit=limit,
        cursor=cursor,
    )


_R = TypeVar("_R", bound=BaseModel)


def _listed(
    request: Request,
    path: str,
    known: frozenset[str],
    read: Callable[[CiQuery], CiPage[_R]],
    query: Callable[[], CiQuery],
) -> CiPage[_R] | JSONResponse:
    """One page of a listing, or the 400 naming the parameter that is wrong."""
    try:
        _check_parameters(request, known, path)
        return read(query())
    except BadParameter as exc:
        return _bad(exc.parameter, str(exc))
    except InvalidCursor as exc:
        return _bad("cursor", str(exc))


def _transitions(transitions: list[StatusTransition]) -> list[TransitionItem]:
    return [TransitionItem(status=t.status, at=t.at) for t in transitions]


def deployment_item(
    record: DeploymentRecord, commit_times: dict[tuple[str, str], datetime]
) -> DeploymentItem:
    commit_at = None
    if record.repository and record.commit:
        commit_at = commit_times.get((record.repository.lower(), record.commit.lower()))
    deployed = record.succeeded_at or record.finished_at
    lead_time = (
        (as_utc(deployed) - as_utc(commit_at)).total_seconds()
        if deployed is not None and commit_at is not None
        else None
    )
    duration = (
        (record.finished_at - record.started_at).total_seconds()
        if record.finished_at is not None and record.started_at is not None
        else None
    )
    return DeploymentItem(
        id=record.id,
        source=record.source,
        entities=record.entity_refs,
        matched=bool(record.entity_refs),
        repository=record.repository,
        environment=record.environment,
        version=record.version,
        version_kind=record.version_kind,
        commit=record.commit,
        ref=record.ref,
        artifact=record.artifact,
        status=record.status,
        transitions=_transitions(record.transitions),
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_seconds=max(0.0, duration) if duration is not None else None,
        url=record.url,
        environment_url=record.environment_url,
        triggered_by=record.triggered_by,
        description=record.description,
        rollback=record.rollback,
        commit_at=commit_at,
        lead_time_seconds=lead_time,
    )


def pipeline_item(record: PipelineRunRecord) -> PipelineRunItem:
    return PipelineRunItem(
        id=record.id,
        source=record.source,
        entities=record.entity_refs,
        matched=bool(record.entity_refs),
        repository=record.repository,
        pipeline=record.pipeline,
        branch=record.branch,
        commit=record.commit,
        status=record.status,
        transitions=_transitions(record.transitions),
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_seconds=record.duration_seconds,
        url=record.url,
        triggered_by=record.triggered_by,
    )


def create_deployments_api_router(reads: DeploymentReads) -> APIRouter:
    router = APIRouter(tags=["deployments"])

    @router.get("/api/deployments", response_model=DeploymentList)
    def deployments(
        request: Request,
        entity: Values = None,
        system: Values = None,
        owner: Values = None,
        environment: Values = None,
        status: Values = None,
        repository: Values = None,
        since: str | None = None,
        unmatched: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> Any:
        page = _listed(
            request,
            "/api/deployments",
            DEPLOYMENTS_PARAMETERS,
            reads.list_deployments,
            lambda: _query(
                entity,
                system,
                owner,
                environment,
                status,
                repository,
                since,
                unmatched,
                limit,
                cursor,
            ),
        )
        if isinstance(page, JSONResponse):
            return page
        times = reads.commit_times(
            (r.repository, r.commit) for r in page.items if r.repository and r.commit
        )
        return DeploymentList(
            items=[deployment_item(record, times) for record in page.items],
            next_cursor=page.next_cursor,
        )

    @router.get("/api/pipelines", response_model=PipelineRunList)
    def pipelines(
        request: Request,
        entity: Values = None,
        system: Values = None,
        owner: Values = None,
        status: Values = None,
        repository: Values = None,
        since: str | None = None,
        unmatched: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> Any:
        page = _listed(
            request,
            "/api/pipelines",
            PIPELINES_PARAMETERS,
            reads.list_pipeline_runs,
            lambda: _query(
                entity, system, owner, None, status, repository, since, unmatched, limit, cursor
            ),
        )
        if isinstance(page, JSONResponse):
            return page
        return PipelineRunList(
            items=[pipeline_item(record) for record in page.items], next_cursor=page.next_cursor
        )

    return router


# --- what the entity endpoints carry -------------------------------------------------------


def environment_status(state: EnvironmentState) -> dict[str, Any]:
    """One environment in an entity's `status.deployments`, in Backstage's camelCase."""
    return {
        "environment": state.environment,
        "version": state.version,
        "deployedAt": state.deployed_at.isoformat() if state.deployed_at else None,
        "deploymentId": state.deployment_id,
        "lastStatus": state.last_status,
        "lastVersion": state.last_version,
        "lastDeployedAt": state.last_at.isoformat(),
        "lastDeploymentId": state.last_deployment_id,
        "lastUrl": state.last_url,
    }


def _entity_ref(entity: dict[str, Any]) -> str | None:
    metadata = entity.get("metadata")
    kind = entity.get("kind")
    if not isinstance(metadata, dict) or not isinstance(kind, str):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return f"{kind}:{namespace}/{name}".lower()


def entity_decorator(reads: DeploymentReads) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Adds, to a rendered entity with CI/CD records, its environments (`status.deployments`)
    and links to its deployments and pipeline runs (`metadata.links`); other entities are
    returned unchanged."""

    def decorate(entity: dict[str, Any]) -> dict[str, Any]:
        ref = _entity_ref(entity)
        if ref is None:
            return entity
        summary = reads.entity_summary(ref)
        if not (summary.deployments or summary.pipeline_runs):
            return entity
        metadata = dict(entity.get("metadata") or {})
        links = [link for link in metadata.get("links") or [] if isinstance(link, dict)]
        query = urlencode({"entity": ref})
        if summary.deployments:
            links.append(
                {
                    "url": f"/api/deployments?{query}",
                    "title": "Deployments",
                    "type": "cairn.dev/deployments",
                }
            )
        if summary.pipeline_runs:
            links.append(
                {
                    "url": f"/api/pipelines?{query}",
                    "title": "Pipeline runs",
                    "type": "cairn.dev/pipelines",
                }
            )
        metadata["links"] = links
        decorated = {**entity, "metadata": metadata}
        if summary.environments:
            status = dict(entity.get("status") or {})
            status["deployments"] = [environment_status(s) for s in summary.environments]
            decorated["status"] = status
        return decorated

    return decorate
