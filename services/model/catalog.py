"""What the catalog holds, as the read side and the processors see it (no ORM rows)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from services.model.events import ErrorRecord, RelationRecord

_LOCATION_NAMESPACE = uuid.UUID("5f2b8f3e-8b1e-4c55-9a55-0c6a3f3f2d11")


def ref_key(ref: str) -> str:
    """Refs compare case-insensitively, as in Backstage."""
    return ref.lower()


def location_id(target: str) -> str:
    """Stable id of a location, derived from its target so rebuilds keep it."""
    return str(uuid.uuid5(_LOCATION_NAMESPACE, target))


@dataclass(frozen=True)
class StoredEntity:
    ref: str
    kind: str
    namespace: str
    name: str
    uid: str
    etag: str
    body: dict[str, Any]
    location_id: str
    location_target: str
    version: int
    updated_at: datetime
    errors: list[ErrorRecord] = field(default_factory=list)
    relations: list[RelationRecord] = field(default_factory=list)


@dataclass(frozen=True)
class EntityDocument:
    """A live entity as the catalog API lists it: its stored body kept as the JSON text the
    store holds, parsed only when asked for (a page of documents is mostly written out again
    as it was read). `relations_json` is its relations as Backstage's JSON array, ordered by
    type then target ref.
    """

    ref: str
    kind: str
    namespace: str
    name: str
    uid: str
    body_json: str
    errors_json: str
    relations_json: str = "[]"

    @cached_property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body_json)
        return body

    @cached_property
    def relations(self) -> tuple[tuple[str, str], ...]:
        """(type, target ref) pairs."""
        return tuple((r["type"], r["targetRef"]) for r in json.loads(self.relations_json))

    @cached_property
    def errors(self) -> list[ErrorRecord]:
        return [ErrorRecord.model_validate(e) for e in json.loads(self.errors_json or "[]")]


@dataclass(frozen=True)
class LocationRecord:
    """A catalog file in a repository: what it produced and what went wrong reading it."""

    id: str
    repository_key: str
    path: str
    target: str
    type: str
    status: str  # active | archived
    commit: str | None
    errors: list[ErrorRecord]
    entity_refs: list[str]
    processed_at: datetime | None


@dataclass(frozen=True)
class DesiredLocation:
    """What one catalog file says now: its entities (ref -> etag) and its errors."""

    id: str
    path: str
    target: str
    entity_etags: dict[str, str]
    errors: list[ErrorRecord]


@dataclass(frozen=True)
class Owner:
    ref: str
    location_id: str
    etag: str


@dataclass
class OwnershipPlan:
    """The outcome of reconciling one repository's locations against current ownership."""

    upserts: dict[str, str] = field(default_factory=dict)  # ref -> location id
    tombstones: list[str] = field(default_factory=list)
    conflicts: dict[str, list[ErrorRecord]] = field(default_factory=dict)  # location -> errors
    owners: dict[str, Owner] = field(default_factory=dict)  # ref key -> new owner
    released: list[str] = field(default_factory=list)  # ref keys


def plan_ownership(
    repository_location_ids: set[str],
    desired: list[DesiredLocation],
    current: dict[str, Owner],
    keep: set[str] | None = None,
) -> OwnershipPlan:
    """Decide which entities a repository's locations now own, emit, release or conflict on.

    `current` holds the owner of every ref involved (ref key -> owner), from any repository.
    A ref owned by a location outside this repository is a conflict, never an overwrite.
    A ref this repository owned and no longer emits is released and tombstoned, unless it
    is in `keep` (its descriptor is still there but currently invalid).
    """
    keep = {ref_key(ref) for ref in keep or set()}
    plan = OwnershipPlan()
    wanted: set[str] = set()
    for location in desired:
        for ref, etag in location.entity_etags.items():
            key = ref_key(ref)
            wanted.add(key)
            owner = current.get(key)
            if owner is not None and owner.location_id not in repository_location_ids:
                plan.conflicts.setdefault(location.id, []).append(
                    ErrorRecord(
                        message=(
                            f"Entity {ref} is already defined by another location "
                            f"({owner.location_id}); this definition is ignored until that "
                            "one is removed."
                        ),
                        location=location.target,
                        entity_ref=ref,
                        code="conflict",
                    )
                )
                continue
            claimed = plan.owners.get(key)
            if claimed is not None and claimed.location_id != location.id:
                plan.conflicts.setdefault(location.id, []).append(
                    ErrorRecord(
                        message=(
                            f"Entity {ref} is also defined by {claimed.location_id} in this "
                            "repository; the first definition is kept."
                        ),
                        location=location.target,
                        entity_ref=ref,
                        code="conflict",
                    )
                )
                continue
            if owner is None or owner.location_id != location.id or owner.etag != etag:
                plan.upserts[ref] = location.id
            plan.owners[key] = Owner(ref=ref, location_id=location.id, etag=etag)
    for key, owner in current.items():
        if owner.location_id in repository_location_ids and key not in wanted and key not in keep:
            plan.tombstones.append(owner.ref)
            plan.released.append(key)
    return plan
