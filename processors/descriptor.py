"""The descriptor processor: git events in, entity changes out.

Level-triggered: every event is only a reason to look. The processor re-reads the default
branch's head, reads every catalog file in it, and reconciles what each location owns to
what its file says now. Repeated, lost or reordered events therefore converge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.bus.port import OutgoingRecord
from services.git.reader import BranchNotFound, CommitFiles, GitReader, find_catalog_files
from services.model.catalog import DesiredLocation, OwnershipPlan, location_id, ref_key
from services.model.descriptor import DescriptorLimits, LocationReading, read_catalog
from services.model.entity import Entity
from services.model.events import (
    EntityChanged,
    ErrorRecord,
    GitEventReceived,
    LocationRemoved,
    PushReceived,
    RelationRecord,
    Repository,
    RepositoryChanged,
    ResyncRequested,
)
from services.model.relations import derive_relations
from services.model.resync import repository_from_key, resync_event
from services.model.topics import ENTITY_CHANGES, GIT_EVENTS
from services.store.port import CatalogStore

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[OutgoingRecord]], None]


@dataclass
class Outcome:
    """What handling one event did, for logs, tests and benchmarks."""

    action: str
    commit: str | None = None
    upserts: int = 0
    tombstones: int = 0
    errors: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def location_url(repository: Repository, path: str) -> str:
    return repository.file_url(path)


@dataclass
class _Produced:
    entity: Entity
    location: DesiredLocation
    errors: list[ErrorRecord]


class DescriptorProcessor:
    def __init__(
        self,
        git: GitReader,
        store: CatalogStore,
        publish: Publish,
        catalog_files: list[str],
        limits: DescriptorLimits | None = None,
    ) -> None:
        self._git = git
        self._store = store
        self._publish = publish
        self._catalog_files = catalog_files
        self._limits = limits or DescriptorLimits()

    def handle(self, event: GitEventReceived) -> Outcome:
        change = event.change
        repository = event.repository
        if isinstance(change, PushReceived):
            if change.branch != repository.default_branch:
                return Outcome(action=f"ignored: {change.ref} is not the default branch")
            if change.deleted:
                return self._empty(repository, "active", None, "default branch deleted")
            return self._read(repository, force=False, previous_key=None)
        if isinstance(change, ResyncRequested):
            return self._read(repository, force=True, previous_key=None)
        if isinstance(change, LocationRemoved):
            return self._read(
                repository, force=True, previous_key=None, exclude=frozenset({change.path})
            )
        assert isinstance(change, RepositoryChanged)
        if change.action == "deleted":
            outcome = self._empty(repository, "deleted", None, "repository deleted")
            self._git.remove_mirror(repository.key)
            return outcome
        if change.action == "archived":
            return self._empty(repository, "archived", None, "repository archived")
        previous = change.previous.key if change.previous is not None else None
        if previous == repository.key:
            previous = None
        return self._read(repository, force=True, previous_key=previous)

    def _empty(
        self, repository: Repository, status: str, commit: str | None, action: str
    ) -> Outcome:
        plan = self._store.reconcile_repository(
            repository, status, commit, [], set(), self._emitter({}, None)
        )
        self._heal_conflicts(repository, plan)
        return Outcome(action=action, tombstones=len(plan.tombstones))

    def _heal_conflicts(self, repository: Repository, plan: OwnershipPlan) -> None:
        """A released ref may be what another repository was refused: let it look again."""
        if not plan.tombstones:
            return
        waiting = self._store.repositories_in_conflict_over(plan.tombstones)
        records = [
            OutgoingRecord(
                GIT_EVENTS.name,
                state.key,
                resync_event(
                    repository_from_key(
                        state.key,
                        state.clone_url,
                        state.html_url,
                        state.default_branch,
                        state.provider,
                    ),
                    f"entities released by {repository.key}",
                )
                .model_dump_json()
                .encode(),
            )
            for state in waiting
            if state.key != repository.key
        ]
        if records:
            self._publish(records)

    def _read(
        self,
        repository: Repository,
        *,
        force: bool,
        previous_key: str | None,
        exclude: frozenset[str] = frozenset(),
    ) -> Outcome:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        try:
            commit = self._git.fetch_branch(
                repository.key, repository.clone_url, repository.default_branch
            )
        except BranchNotFound:
            # Some events only guess the default branch (a GitLab rename, a Bitbucket push
            # without `mainbranch`): ask the remote which branch its HEAD names.
            actual = self._git.remote_default_branch(repository.clone_url)
            if actual is None or actual == repository.default_branch:
                return self._empty(repository, "active", None, "default branch not found")
            repository = repository.model_copy(update={"default_branch": actual})
            commit = self._git.fetch_branch(repository.key, repository.clone_url, actual)
        timings["fetch"] = time.perf_counter() - started
        state = self._store.get_repository(repository.key)
        if (
            not force
            and previous_key is None
            and state is not None
            and state.status == "active"
            and state.commit == commit
        ):
            return Outcome(action="unchanged", commit=commit, timings=timings)
        mark = time.perf_counter()
        with self._git.open_commit(repository.key, commit) as files:
            produced, desired, keep = self._read_locations(repository, files, exclude)
        timings["read"] = time.perf_counter() - mark
        mark = time.perf_counter()
        plan = self._store.reconcile_repository(
            repository,
            "active",
            commit,
            desired,
            keep,
            self._emitter(produced, commit),
            previous_key=previous_key,
        )
        timings["reconcile"] = time.perf_counter() - mark
        self._heal_conflicts(repository, plan)
        return Outcome(
            action="read",
            commit=commit,
            upserts=len(plan.upserts),
            tombstones=len(plan.tombstones),
            errors=sum(len(d.errors) for d in desired),
            timings=timings,
        )

    def _read_locations(
        self, repository: Repository, files: CommitFiles, exclude: frozenset[str] = frozenset()
    ) -> tuple[dict[str, _Produced], list[DesiredLocation], set[str]]:
        roots = [
            root
            for root in find_catalog_files(list(files.entries.values()), self._catalog_files)
            if root not in exclude  # a location removed through the catalog API
        ]
        readings: dict[str, LocationReading] = {}
        reached: set[str] = set()
        for root in roots:
            if root in reached:
                continue  # already read through another file's Location target
            reading = read_catalog(
                root, files, lambda path: location_url(repository, path), self._limits
            )
            readings[root] = reading
            reached.update(p for p in reading.files_read if p != root)
        for path in reached:
            readings.pop(path, None)
        produced: dict[str, _Produced] = {}
        desired: list[DesiredLocation] = []
        keep: set[str] = set()
        for root, reading in readings.items():
            target = location_url(repository, root)
            location = DesiredLocation(
                id=location_id(target),
                path=root,
                target=target,
                entity_etags={},
                errors=[_error_record(e) for e in reading.errors],
            )
            for entity in reading.entities:
                ref = str(entity.ref)
                location.entity_etags[ref] = str(entity.metadata.get("etag", ""))
                own_errors = [
                    e
                    for e in location.errors
                    if e.entity_ref and ref_key(e.entity_ref) == ref_key(ref)
                ]
                produced[ref_key(ref)] = _Produced(
                    entity=entity, location=location, errors=own_errors
                )
            keep.update(e.entity_ref for e in location.errors if e.entity_ref)
            desired.append(location)
        return produced, desired, keep

    def _emitter(
        self, produced: dict[str, _Produced], commit: str | None
    ) -> Callable[[OwnershipPlan], None]:
        def emit(plan: OwnershipPlan) -> None:
            records: list[OutgoingRecord] = []
            for ref in plan.upserts:
                item = produced[ref_key(ref)]
                change = EntityChanged(
                    ref=ref,
                    location_id=item.location.id,
                    location_target=item.location.target,
                    entity=_entity_body(item.entity),
                    relations=[
                        RelationRecord(
                            source_ref=edge.source_ref, type=edge.type, target_ref=edge.target_ref
                        )
                        for edge in derive_relations(item.entity)
                    ],
                    errors=item.errors,
                    commit=commit,
                )
                records.append(
                    OutgoingRecord(ENTITY_CHANGES.name, ref, change.model_dump_json().encode())
                )
            records.extend(
                OutgoingRecord(ENTITY_CHANGES.name, ref, None) for ref in plan.tombstones
            )
            if records:
                self._publish(records)

        return emit


def _entity_body(entity: Entity) -> dict[str, Any]:
    body = entity.to_backstage()
    body.pop("relations", None)
    body.pop("status", None)
    return body


def _error_record(error: Any) -> ErrorRecord:
    return ErrorRecord(
        message=error.message,
        location=error.location,
        entity_ref=error.entity_ref,
        path=error.path,
    )
