"""CI/CD contracts: what receivers put on `cairn.ci.events` and what the deployment
processor puts on `cairn.deployments`, with the records the catalog keeps.

Framework-free. Every CI/CD source (GitHub, GitLab, CDEvents, the generic deployments API)
normalises into one `CiEventReceived`: an envelope naming the source, the delivery, the
`CiSubject` (every hint Cairn can use to find the entities the event concerns) and one change:

- `DeploymentReported`: one state of one deployment (`deployment_id` is unique per source);
- `PipelineRunReported`: one state of one pipeline run;
- `IncidentReported`: an incident detected, reported or resolved;
- `ChangeMerged`: a change (merge/pull request) merged into a repository.

Statuses are normalised into the vocabularies below. Each change carries `occurred_at`, the
event's own time: the deployment processor orders the states of one deployment by
(`occurred_at`, `status_rank`), never by arrival, so `in_progress` arriving after `success`
with the same second does not undo it.

Match keys are strings both sides compute the same way: an event's from its subject
(`subject_match_keys`), an entity's from its descriptor (`entity_match_keys`). Precedence of
the kinds, strongest first, is `MATCH_KINDS`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args
from urllib.parse import unquote

from pydantic import Field

from services.model.events import Contract, utcnow

# --- statuses ---------------------------------------------------------------------------

DeploymentStatus = Literal[
    "pending",
    "queued",
    "in_progress",
    "success",
    "failure",
    "error",
    "cancelled",
    "inactive",
    "removed",
]
DEPLOYMENT_STATUSES: tuple[str, ...] = get_args(DeploymentStatus)

PipelineStatus = Literal[
    "pending",
    "queued",
    "in_progress",
    "success",
    "failure",
    "error",
    "cancelled",
    "skipped",
]
PIPELINE_STATUSES: tuple[str, ...] = get_args(PipelineStatus)

IncidentStatus = Literal["detected", "reported", "resolved"]

# Deployments that ended with the version running.
SUCCEEDED = frozenset({"success"})
# Terminal states: the deployment or run is over.
TERMINAL = frozenset({"success", "failure", "error", "cancelled", "skipped", "removed"})

_RANKS = {
    "pending": 0,
    "queued": 0,
    "in_progress": 1,
    "success": 2,
    "failure": 2,
    "error": 2,
    "cancelled": 2,
    "skipped": 2,
    "removed": 2,
    # GitHub marks an older deployment inactive when a newer one succeeds: after its outcome.
    "inactive": 3,
    "detected": 0,
    "reported": 1,
    "resolved": 2,
}


def status_rank(status: str) -> int:
    """Where a status sits in a run's life; breaks ties between states with one timestamp."""
    return _RANKS.get(status, 1)


def state_order(status: str, at: datetime) -> tuple[datetime, int, str]:
    """The order of the states of one deployment or run: time, then life stage, then name."""
    return (as_utc(at), status_rank(status), status)


# --- time -------------------------------------------------------------------------------


def as_utc(value: datetime) -> datetime:
    """Aware and in UTC; a naive time is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time, or GitLab's `2016-08-12 15:23:28 UTC` / `... +0200`; always UTC.

    Raises ValueError when `text` is neither.
    """
    value = text.strip()
    if value.endswith(" UTC"):
        value = value[: -len(" UTC")] + "+00:00"
    return as_utc(datetime.fromisoformat(value))


_DURATION = re.compile(r"(\d+)\s*(s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A point in time from `24h`, `30m`, `7d`, `1w`, `1d12h` (that long before `now`) or an
    ISO 8601 time. Raises ValueError with a sentence saying what is accepted."""
    value = text.strip()
    if value and _DURATION.sub("", value).strip() == "":
        seconds = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION.findall(value))
        return (now or utcnow()) - timedelta(seconds=seconds)
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(
            f"'{text}' is neither a duration like 24h, 30m or 7d nor an ISO 8601 time."
        ) from None


# --- package URLs -------------------------------------------------------------------------


def artifact_name(purl: str) -> str | None:
    """A package URL without its version, qualifiers and subpath, lower-cased:
    `pkg:oci/myapp@sha256%3Aab?repository_url=x` -> `pkg:oci/myapp`. None if not a purl."""
    value = purl.strip()
    if not value.lower().startswith("pkg:"):
        return None
    value = value.split("#", 1)[0].split("?", 1)[0]
    head, _, _version = value.rpartition("@")
    if head and "/" in head:
        value = head
    return unquote(value).lower().rstrip("/")


def artifact_version(purl: str) -> str | None:
    """The version of a package URL (`sha256:ab...` for `pkg:oci/myapp@sha256%3Aab...`)."""
    value = purl.strip().split("#", 1)[0].split("?", 1)[0]
    head, at, version = value.rpartition("@")
    if not at or "/" not in head or not version:
        return None
    return unquote(version)


# --- subjects and match keys ---------------------------------------------------------------

ANNOTATION_DEPLOYMENT_NAME = "cairn.dev/deployment-name"
ANNOTATION_ARTIFACT = "cairn.dev/artifact"
ANNOTATION_GITHUB_SLUG = "github.com/project-slug"
ANNOTATION_GITLAB_SLUG = "gitlab.com/project-slug"
SLUG_ANNOTATIONS = (ANNOTATION_GITHUB_SLUG, ANNOTATION_GITLAB_SLUG)

# Strongest first: an event is attached by the first kind that finds any entity.
MATCH_KINDS = ("ref", "deployment-name", "artifact", "slug", "repository")


class CiSubject(Contract):
    """What an event is about, as the source names it: each field is one way to find the
    entities it concerns (see `subject_match_keys`)."""

    entity_ref: str | None = None  # an explicit entity ref (generic API)
    repository: str | None = None  # repository key, host/owner/name
    project_slug: str | None = None  # owner/name (GitLab: group/subgroup/name)
    slug_annotation: str | None = None  # which annotation carries the slug
    deployment_name: str | None = None  # matched with cairn.dev/deployment-name
    artifact: str | None = None  # a package URL, matched with cairn.dev/artifact


def match_key(kind: str, value: str) -> str:
    return f"{kind}:{value.strip().lower()}"


def key_kind(key: str) -> str:
    return key.split(":", 1)[0]


def _slug_key(annotation: str, slug: str) -> str:
    return match_key("slug", f"{annotation}={slug.strip().strip('/')}")


def subject_match_keys(subject: CiSubject) -> list[str]:
    """The keys an event can be matched by, strongest kind first."""
    keys: list[str] = []
    if subject.entity_ref:
        keys.append(match_key("ref", subject.entity_ref))
    if subject.deployment_name:
        name = subject.deployment_name.strip()
        keys.append(match_key("deployment-name", name))
        # CDEvents name services like `service/myapp`: the last segment is the usual name.
        tail = name.rstrip("/").rsplit("/", 1)[-1]
        if tail and tail != name:
            keys.append(match_key("deployment-name", tail))
    if subject.artifact:
        package = artifact_name(subject.artifact)
        if package:
            keys.append(match_key("artifact", package))
    if subject.project_slug and subject.slug_annotation:
        keys.append(_slug_key(subject.slug_annotation, subject.project_slug))
    if subject.repository:
        keys.append(match_key("repository", subject.repository))
    return list(dict.fromkeys(keys))


_FILE_URL_MARKERS = ("/-/blob/", "/src/branch/", "/blob/", "/src/")


def repository_of_target(target: str) -> str | None:
    """The repository key (`host/owner/name`) of a location's target, the web address of a
    catalog file as each host spells it (`.../blob/<branch>/<path>`, GitLab's `/-/blob/`,
    Gitea's `/src/branch/`, Bitbucket's `/src/`); None when it is not one of those."""
    text = target.removeprefix("url:")
    scheme, _, rest = text.partition("://")
    if not rest:
        return None
    host, _, path = rest.partition("/")
    path = "/" + path
    # The first marker with an owner and a name before it (a repository may be named `src`).
    cuts = [
        match.start()
        for marker in _FILE_URL_MARKERS
        for match in re.finditer(re.escape(marker), path)
        if len([p for p in path[: match.start()].split("/") if p]) >= 2
    ]
    if not cuts:
        return None
    parts = [p for p in path[: min(cuts)].split("/") if p]
    if scheme.lower() == "file":  # local repositories (the demo) are addressed as localhost
        host, parts = "localhost", [p.removesuffix(".git") for p in parts[-2:]]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    if len(parts) < 2 or not host:
        return None
    return "/".join([host, *parts]).lower()


def entity_match_keys(ref: str, entity: dict[str, Any]) -> list[str]:
    """The keys an entity is found by: its ref and its CI/CD annotations. The repository
    key is added by the processor, which knows whether the repository holds one component."""
    metadata = entity.get("metadata") if isinstance(entity.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    raw = metadata.get("annotations")
    annotations: dict[str, Any] = raw if isinstance(raw, dict) else {}
    keys = [match_key("ref", ref)]
    name = annotations.get(ANNOTATION_DEPLOYMENT_NAME)
    if isinstance(name, str) and name.strip():
        keys.extend(match_key("deployment-name", n) for n in name.split(",") if n.strip())
    artifact = annotations.get(ANNOTATION_ARTIFACT)
    if isinstance(artifact, str):
        for purl in artifact.split(","):
            found = artifact_name(purl)
            if found:
                keys.append(match_key("artifact", found))
    for annotation in SLUG_ANNOTATIONS:
        slug = annotations.get(annotation)
        if isinstance(slug, str) and slug.strip():
            keys.append(_slug_key(annotation, slug))
    return list(dict.fromkeys(keys))


# --- changes ---------------------------------------------------------------------------

VersionKind = Literal["commit", "tag", "artifact", "version"]


class DeploymentReported(Contract):
    """One state of one deployment. Several reports of one `deployment_id` make one
    deployment; a rollback is a deployment of an older version (`rollback` when the
    source says so, as CDEvents' `service.rolledback` does)."""

    type: Literal["deployment"] = "deployment"
    deployment_id: str
    environment: str
    status: DeploymentStatus
    occurred_at: datetime
    version: str | None = None
    version_kind: VersionKind | None = None
    commit: str | None = None
    ref: str | None = None
    artifact: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    url: str | None = None
    environment_url: str | None = None
    triggered_by: str | None = None
    description: str | None = None
    rollback: bool = False


class PipelineRunReported(Contract):
    """One state of one pipeline (workflow) run."""

    type: Literal["pipeline_run"] = "pipeline_run"
    run_id: str
    status: PipelineStatus
    occurred_at: datetime
    pipeline: str | None = None
    branch: str | None = None
    commit: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    url: str | None = None
    triggered_by: str | None = None


class IncidentReported(Contract):
    """An incident detected, reported (a ticket opened) or resolved."""

    type: Literal["incident"] = "incident"
    incident_id: str
    status: IncidentStatus
    occurred_at: datetime
    environment: str | None = None
    description: str | None = None
    url: str | None = None


class ChangeMerged(Contract):
    """A change (merge or pull request) merged into a repository."""

    type: Literal["change_merged"] = "change_merged"
    change_id: str
    occurred_at: datetime
    repository: str | None = None  # as the source names it (an id or a URL)
    url: str | None = None


CiChange = Annotated[
    DeploymentReported | PipelineRunReported | IncidentReported | ChangeMerged,
    Field(discriminator="type"),
]


class CiEventReceived(Contract):
    """Value of `cairn.ci.events`, keyed by `key`: the repository key when the event names
    a repository, else the entity ref or the subject the source names."""

    schema_version: Literal[1] = 1
    source: str  # github | gitlab | cdevents | api
    delivery_id: str
    event_type: str
    key: str
    received_at: datetime = Field(default_factory=utcnow)
    subject: CiSubject
    change: CiChange
    raw: dict[str, Any] = Field(default_factory=dict)


# --- records the catalog keeps ---------------------------------------------------------


class StatusTransition(Contract):
    status: str
    at: datetime


class _RunRecord(Contract):
    """What a deployment and a pipeline run both keep: every reported state merged in
    event order, when it ran, where to see it and what it concerns."""

    id: str  # `<source>:<id the source gave>`
    source: str
    status: str
    status_at: datetime
    transitions: list[StatusTransition] = Field(default_factory=list)
    commit: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    url: str | None = None
    triggered_by: str | None = None
    repository: str | None = None
    entity_refs: list[str] = Field(default_factory=list)

    @property
    def sort_at(self) -> datetime:
        """When it began, as far as anyone said."""
        if self.started_at is not None:
            return self.started_at
        return min((t.at for t in self.transitions), default=self.status_at)


class DeploymentRecord(_RunRecord):
    """A deployment as the catalog keeps it."""

    environment: str
    version: str | None = None
    version_kind: str | None = None
    ref: str | None = None
    artifact: str | None = None
    succeeded_at: datetime | None = None
    environment_url: str | None = None
    description: str | None = None
    rollback: bool = False


class PipelineRunRecord(_RunRecord):
    pipeline: str | None = None
    branch: str | None = None
    duration_seconds: float | None = None


class IncidentRecord(Contract):
    id: str  # `<source>:<incident_id>`
    source: str
    status: str
    status_at: datetime
    transitions: list[StatusTransition] = Field(default_factory=list)
    environment: str | None = None
    description: str | None = None
    url: str | None = None
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    entity_refs: list[str] = Field(default_factory=list)


class MergedChangeRecord(Contract):
    id: str  # `<source>:<change_id>`
    source: str
    merged_at: datetime
    repository: str | None = None
    url: str | None = None
    entity_refs: list[str] = Field(default_factory=list)


class EnvironmentState(Contract):
    """What one entity runs in one environment, and how its last deployment went.

    `version`/`deployed_at` are those of the newest deployment that succeeded (none after a
    removal); `last_*` describe the newest deployment whatever its outcome.
    """

    environment: str
    version: str | None = None
    deployed_at: datetime | None = None
    deployment_id: str | None = None
    last_status: str
    last_version: str | None = None
    last_at: datetime
    last_deployment_id: str
    last_url: str | None = None


class DeploymentRecorded(Contract):
    """Value of `cairn.deployments`, keyed by entity ref: the entity's environments after a
    deployment of it changed (`deployment`), or after history was attached to it (None)."""

    schema_version: Literal[1] = 1
    ref: str
    deployment: DeploymentRecord | None = None
    environments: list[EnvironmentState] = Field(default_factory=list)
    recorded_at: datetime = Field(default_factory=utcnow)
