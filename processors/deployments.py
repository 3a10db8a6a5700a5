"""The deployment processor: CI/CD events in, deployment records and entity states out.

`DeploymentProcessor` is plain Python over the `DeploymentStore` port; drivers (the embedded
runner, a faust agent) decode records, call it and publish what it returns:

- `handle(event: CiEventReceived) -> list[OutgoingRecord]`: merges the reported state into
  its record (deployment, pipeline run, incident, merged change), attaches the record to the
  entities it concerns and, for a deployment, returns one `DeploymentRecorded` per attached
  entity for `cairn.deployments` (the entity's environments after the change);
- `handle_entity_changes(changes) -> list[OutgoingRecord]`: keeps the processor's own view of
  each entity's match keys and attaches unmatched records the entities are found by (their
  history), returning `DeploymentRecorded` for entities that gained deployments;
- `handle_git_event(event)`: keeps the commits of pushes with their times (lead time);
- `handle_records(records)`: the three above by topic, for a driver over all three topics.

Ordering: the states of one deployment are ordered by the event's own time, then life stage
(`state_order`), never by arrival; a late `in_progress` does not undo a `success`. Every
call is idempotent (a repeated event merges to the same record and re-emits the same
state), so at-least-once delivery and replays converge. Matching (strongest first): an
explicit entity ref, `cairn.dev/deployment-name`, `cairn.dev/artifact`, the project-slug
annotations, and the repository when it holds exactly one Component. An event that matches
nothing is kept unmatched and attached when a matching entity appears.

`project_deployments_to_index` is the index projection of `cairn.deployments`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from services.bus.port import LogRecord, OutgoingRecord
from services.index.document import deployed_environment, normalise_filter_value
from services.index.port import DeploymentIndex, DeploymentsWrite
from services.model.ci_events import (
    MATCH_KINDS,
    SUCCEEDED,
    TERMINAL,
    ChangeMerged,
    CiEventReceived,
    DeploymentRecord,
    DeploymentRecorded,
    DeploymentReported,
    EnvironmentState,
    IncidentRecord,
    IncidentReported,
    MergedChangeRecord,
    PipelineRunRecord,
    PipelineRunReported,
    StatusTransition,
    as_utc,
    entity_match_keys,
    key_kind,
    match_key,
    repository_of_target,
    state_order,
    subject_match_keys,
)
from services.model.events import EntityChanged, GitEventReceived, PushReceived
from services.model.topics import CI_EVENTS, DEPLOYMENTS, ENTITY_CHANGES, GIT_EVENTS
from services.store.deployments_store import (
    DEPLOYMENT,
    INCIDENT,
    MERGED_CHANGE,
    PIPELINE_RUN,
    DeploymentStore,
    EntityKeys,
)

log = logging.getLogger(__name__)

GROUP = "cairn-deployments"
INDEX_GROUP = "cairn-deployment-index"
TOPICS = (CI_EVENTS.name, GIT_EVENTS.name, ENTITY_CHANGES.name)


# --- merging reported states (pure) ------------------------------------------------------


def _transitions(
    existing: Sequence[StatusTransition], status: str, at: Any
) -> list[StatusTransition]:
    new = StatusTransition(status=status, at=as_utc(at))
    merged = {(t.status, as_utc(t.at)): t for t in existing}
    merged.setdefault((new.status, new.at), new)
    return sorted(merged.values(), key=lambda t: state_order(t.status, t.at))


def _take(latest: bool, new: Any, old: Any) -> Any:
    """A field of the merged record: the latest report's value wins when it has one."""
    if latest:
        return new if new is not None else old
    return old if old is not None else new


def merge_deployment(
    existing: DeploymentRecord | None,
    source: str,
    repository: str | None,
    report: DeploymentReported,
) -> DeploymentRecord:
    """The deployment after one more reported state (any arrival order gives one result)."""
    record_id = f"{source}:{report.deployment_id}"
    old = existing or DeploymentRecord(
        id=record_id,
        source=source,
        environment=report.environment,
        status=report.status,
        status_at=report.occurred_at,
    )
    previous_top = state_order(old.status, old.status_at) if existing else None
    transitions = _transitions(old.transitions, report.status, report.occurred_at)
    top = transitions[-1]
    latest = previous_top is None or state_order(report.status, report.occurred_at) >= previous_top
    starts = [s for s in (old.started_at, report.started_at) if s is not None]
    started = min(as_utc(s) for s in starts) if starts else None
    if started is None:
        running = [t.at for t in transitions if t.status == "in_progress"]
        started = min(running) if running else None
    finished = None
    if top.status in TERMINAL or top.status == "inactive":
        ends = [t for t in transitions if t.status in TERMINAL]
        if ends:
            finished = ends[-1].at
            if report.finished_at is not None and ends[-1].status == report.status:
                finished = as_utc(report.finished_at)
    succeeded = None
    if top.status in SUCCEEDED or top.status == "inactive":
        successes = [t for t in transitions if t.status in SUCCEEDED]
        if successes:
            succeeded = finished if top.status in SUCCEEDED and finished else successes[-1].at
    return DeploymentRecord(
        id=record_id,
        source=source,
        environment=_take(latest, report.environment, old.environment),
        status=top.status,
        status_at=top.at,
        transitions=transitions,
        version=_take(latest, report.version, old.version),
        version_kind=_take(latest, report.version_kind, old.version_kind),
        commit=_take(latest, report.commit, old.commit),
        ref=_take(latest, report.ref, old.ref),
        artifact=_take(latest, report.artifact, old.artifact),
        started_at=started,
        finished_at=finished,
        succeeded_at=succeeded,
        url=_take(latest, report.url, old.url),
        environment_url=_take(latest, report.environment_url, old.environment_url),
        triggered_by=_take(latest, report.triggered_by, old.triggered_by),
        description=_take(latest, report.description, old.description),
        rollback=old.rollback or report.rollback,
        repository=repository or old.repository,
    )


def merge_pipeline_run(
    existing: PipelineRunRecord | None,
    source: str,
    repository: str | None,
    report: PipelineRunReported,
) -> PipelineRunRecord:
    record_id = f"{source}:{report.run_id}"
    old = existing or PipelineRunRecord(
        id=record_id, source=source, status=report.status, status_at=report.occurred_at
    )
    previous_top = state_order(old.status, old.status_at) if existing else None
    transitions = _transitions(old.transitions, report.status, report.occurred_at)
    top = transitions[-1]
    latest = previous_top is None or state_order(report.status, report.occurred_at) >= previous_top
    starts = [as_utc(s) for s in (old.started_at, report.started_at) if s is not None]
    running = [t.at for t in transitions if t.status == "in_progress"]
    started = min(starts) if starts else (min(running) if running else None)
    finished = None
    if top.status in TERMINAL:
        finished = as_utc(report.finished_at) if latest and report.finished_at else top.at
    duration = _take(latest, report.duration_seconds, old.duration_seconds)
    if finished is None:
        duration = None
    elif duration is None and started is not None:
        duration = max(0.0, (finished - started).total_seconds())
    return PipelineRunRecord(
        id=record_id,
        source=source,
        status=top.status,
        status_at=top.at,
        transitions=transitions,
        pipeline=_take(latest, report.pipeline, old.pipeline),
        branch=_take(latest, report.branch, old.branch),
        commit=_take(latest, report.commit, old.commit),
        started_at=started,
        finished_at=finished,
        duration_seconds=duration,
        url=_take(latest, report.url, old.url),
        triggered_by=_take(latest, report.triggered_by, old.triggered_by),
        repository=repository or old.repository,
    )


def merge_incident(
    existing: IncidentRecord | None, source: str, report: IncidentReported
) -> IncidentRecord:
    record_id = f"{source}:{report.incident_id}"
    old = existing or IncidentRecord(
        id=record_id, source=source, status=report.status, status_at=report.occurred_at
    )
    transitions = _transitions(old.transitions, report.status, report.occurred_at)
    top = transitions[-1]
    opened = [t.at for t in transitions if t.status in ("detected", "reported")]
    return IncidentRecord(
        id=record_id,
        source=source,
        status=top.status,
        status_at=top.at,
        transitions=transitions,
        environment=report.environment or old.environment,
        description=report.description or old.description,
        url=report.url or old.url,
        detected_at=min(opened) if opened else None,
        resolved_at=top.at if top.status == "resolved" else None,
    )


def environment_state(current: DeploymentRecord | None, last: DeploymentRecord) -> EnvironmentState:
    """What runs in the environment (the newest deployment that set it) and how the newest
    deployment went."""
    running = current if current is not None and current.status != "removed" else None
    return EnvironmentState(
        environment=last.environment,
        version=running.version if running else None,
        deployed_at=running.succeeded_at if running else None,
        deployment_id=running.id if running else None,
        last_status=last.status,
        last_version=last.version,
        last_at=last.sort_at,
        last_deployment_id=last.id,
        last_url=last.url,
    )


def is_rollback(record: DeploymentRecord, history: Sequence[DeploymentRecord]) -> bool:
    """A successful deployment of a version that ran there before, replacing another one.

    `history` holds the deployments that set what ran there before this one, newest first.
    """
    if record.succeeded_at is None or not record.version or not history:
        return False
    previous = history[0]
    if previous.status == "removed" or previous.version == record.version:
        return False
    return any(h.version == record.version and h.status != "removed" for h in history[1:])


def choose_matches(found: dict[str, list[str]]) -> list[str]:
    """The refs found by the strongest kind of key that found any."""
    by_kind: dict[str, set[str]] = {}
    for key, refs in found.items():
        by_kind.setdefault(key_kind(key), set()).update(refs)
    for kind in MATCH_KINDS:
        if by_kind.get(kind):
            return sorted(by_kind[kind], key=str.lower)
    return []


# --- the processor ---------------------------------------------------------------------


class DeploymentProcessor:
    def __init__(self, store: DeploymentStore) -> None:
        self._store = store

    def environment_states(self, ref: str) -> list[EnvironmentState]:
        return self._store.environment_states(ref)

    # CI/CD events -----------------------------------------------------------------------

    def handle(self, event: CiEventReceived) -> list[OutgoingRecord]:
        keys = subject_match_keys(event.subject)
        repository = event.subject.repository
        change = event.change
        if isinstance(change, DeploymentReported):
            return self._deployment(event.source, repository, change, keys)
        if isinstance(change, PipelineRunReported):
            run = merge_pipeline_run(
                self._store.get_pipeline_run(f"{event.source}:{change.run_id}"),
                event.source,
                repository,
                change,
            )
            self._store.save_pipeline_run(run, keys)
            self._attach(PIPELINE_RUN, run.id, keys, repository)
            return []
        if isinstance(change, IncidentReported):
            incident = merge_incident(
                self._store.get_incident(f"{event.source}:{change.incident_id}"),
                event.source,
                change,
            )
            self._store.save_incident(incident, keys)
            self._attach(INCIDENT, incident.id, keys, repository)
            return []
        assert isinstance(change, ChangeMerged)
        merged = MergedChangeRecord(
            id=f"{event.source}:{change.change_id}",
            source=event.source,
            merged_at=change.occurred_at,
            repository=change.repository,
            url=change.url,
        )
        self._store.save_merged_change(merged, keys)
        self._attach(MERGED_CHANGE, merged.id, keys, repository)
        return []

    def _deployment(
        self,
        source: str,
        repository: str | None,
        report: DeploymentReported,
        keys: list[str],
    ) -> list[OutgoingRecord]:
        existing = self._store.get_deployment(f"{source}:{report.deployment_id}")
        record = merge_deployment(existing, source, repository, report)
        # Saved (with its keys) before matching: see services/store/deployments_store.py.
        self._store.save_deployment(record, keys)
        refs = self._attach(DEPLOYMENT, record.id, keys, repository)
        if refs and not record.rollback and record.succeeded_at is not None:
            history = self._store.version_history(
                refs[0], record.environment, record.succeeded_at, record.id
            )
            if is_rollback(record, history):
                record = record.model_copy(update={"rollback": True})
                self._store.save_deployment(record, keys)
        record = record.model_copy(update={"entity_refs": refs})
        return [self._recorded(ref, record, [record.environment]) for ref in refs]

    def _attach(
        self, record_type: str, record_id: str, keys: list[str], repository: str | None
    ) -> list[str]:
        linked = self._store.links(record_type, record_id)
        if linked:
            return linked
        refs = choose_matches(self._store.entities_with_keys(keys))
        if refs:
            self._store.link(record_type, record_id, refs)
        return refs

    def _recorded(
        self, ref: str, deployment: DeploymentRecord | None, environments: Sequence[str]
    ) -> OutgoingRecord:
        states = self._store.refresh_environment_states(ref, environments, environment_state)
        value = DeploymentRecorded(ref=ref, deployment=deployment, environments=states)
        return OutgoingRecord(DEPLOYMENTS.name, ref, value.model_dump_json().encode())

    # entity changes ---------------------------------------------------------------------

    def handle_entity_changes(
        self, changes: Sequence[tuple[str, EntityChanged | None]]
    ) -> list[OutgoingRecord]:
        """Keep each entity's keys; attach the unmatched records they find."""
        upserts: dict[str, EntityKeys] = {}
        removed: dict[str, str] = {}
        locations: dict[str, str | None] = {}
        for ref, change in changes:
            key = ref.lower()
            if change is None:
                removed[key] = ref
                upserts.pop(key, None)
                continue
            removed.pop(key, None)
            upserts[key] = self._entity_keys(change, locations)
        previous = self._store.entity_repositories([ref for ref, _change in changes])
        if removed:
            self._store.remove_entities(list(removed.values()))
        self._store.put_entities(list(upserts.values()))
        # The repository rule, from the processor's own view of the entities (so it never
        # depends on when the descriptor processor's transaction commits).
        repositories = {e.repository for e in upserts.values() if e.repository}
        repositories |= {r for r in previous.values() if r}
        matching = dict(upserts)
        for repository, ref in self._store.assign_repository_keys(sorted(repositories)).items():
            key = match_key("repository", repository)
            held = matching.get(ref.lower())
            matching[ref.lower()] = (
                replace(held, keys=[*held.keys, key])
                if held is not None
                else EntityKeys(ref, "component", repository, None, None, [key])
            )
        attached = self._store.attach_unmatched(list(matching.values()))
        outgoing = []
        for ref, record_types in sorted(attached.items()):
            if DEPLOYMENT in record_types:
                outgoing.append(self._recorded(ref, None, self._store.environments_of(ref)))
        return outgoing

    def _entity_keys(self, change: EntityChanged, locations: dict[str, str | None]) -> EntityKeys:
        entity = change.entity
        kind = str(entity.get("kind", "")).lower()
        spec = entity.get("spec") if isinstance(entity.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        if change.location_id not in locations:
            # A new location is committed only after its changes were published: read the
            # repository from the file's address then.
            locations[change.location_id] = self._store.repository_of_location(
                change.location_id
            ) or repository_of_target(change.location_target)
        repository = locations[change.location_id]
        keys = entity_match_keys(change.ref, entity)
        owner, system = spec.get("owner"), spec.get("system")
        return EntityKeys(
            ref=change.ref,
            kind=kind,
            repository=repository,
            owner=normalise_filter_value("owner", owner) if isinstance(owner, str) else None,
            system=normalise_filter_value("system", system) if isinstance(system, str) else None,
            keys=keys,
        )

    # git events -------------------------------------------------------------------------

    def handle_git_event(self, event: GitEventReceived) -> list[OutgoingRecord]:
        """Pushes keep their commits' times, so lead time to a deployment can be computed."""
        change = event.change
        if isinstance(change, PushReceived) and change.commits:
            self._store.record_commits(event.repository.key, change.commits)
        return []

    # a driver's entry point ---------------------------------------------------------------

    def handle_records(self, records: Sequence[LogRecord]) -> list[OutgoingRecord]:
        """Records of `cairn.ci.events`, `cairn.git.events` and `cairn.entity.changes`, in
        order (runs of entity changes are handled as one batch)."""
        outgoing: list[OutgoingRecord] = []
        entities: list[tuple[str, EntityChanged | None]] = []
        for record in records:
            if record.topic == ENTITY_CHANGES.name:
                value = (
                    EntityChanged.model_validate_json(record.value)
                    if record.value is not None
                    else None
                )
                entities.append((record.key, value))
                continue
            if entities:
                outgoing += self.handle_entity_changes(entities)
                entities = []
            if record.value is None:
                continue
            if record.topic == CI_EVENTS.name:
                outgoing += self.handle(CiEventReceived.model_validate_json(record.value))
            elif record.topic == GIT_EVENTS.name:
                outgoing += self.handle_git_event(
                    GitEventReceived.model_validate_json(record.value)
                )
        if entities:
            outgoing += self.handle_entity_changes(entities)
        return outgoing


# --- the index projection of cairn.deployments ---------------------------------------------


def deployments_write(
    record: LogRecord, states: Callable[[str], list[EnvironmentState]]
) -> DeploymentsWrite:
    if record.value is None:
        return DeploymentsWrite(ref=record.key, version=record.offset, environments=[])
    recorded = DeploymentRecorded.model_validate_json(record.value)
    return DeploymentsWrite(
        ref=recorded.ref,
        version=record.offset,
        environments=[deployed_environment(state) for state in states(recorded.ref)],
    )


def project_deployments_to_index(
    index: DeploymentIndex,
    records: Sequence[LogRecord],
    states: Callable[[str], list[EnvironmentState]],
) -> None:
    """Apply each entity's environments to the search index (offset-guarded), as the store
    has them when the record is applied rather than as the record carries them: two
    processors may publish one entity's updates in another order than they derived them
    (refresh_environment_states orders the derivations, not the publishing), and the
    index must still end with the newest. Read once per entity and batch."""
    current: dict[str, list[EnvironmentState]] = {}

    def read(ref: str) -> list[EnvironmentState]:
        if ref not in current:
            current[ref] = states(ref)
        return current[ref]

    index.apply_deployments([deployments_write(record, read) for record in records])
