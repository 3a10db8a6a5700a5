"""Entities in Backstage's shape, and the identity Cairn gives them.

An `Entity` is one accepted catalog document: `apiVersion`, `kind`, `metadata`, `spec`, and
any other top-level keys kept as they were. `to_backstage()` renders it the way Backstage's
catalog API does, with `relations` and the processing errors in `status.items`.

Identity is derived, never random: `entity_uid` is a uuid5 of the ref's key, so rebuilding
the catalog from the log gives every entity the same uid; `entity_etag` hashes the
canonical JSON of the entity, so it changes exactly when the entity does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from services.model.refs import DEFAULT_NAMESPACE, EntityRef

ANNOTATION_LOCATION = "backstage.io/managed-by-location"
ANNOTATION_ORIGIN_LOCATION = "backstage.io/managed-by-origin-location"
STATUS_PROCESSING_TYPE = "backstage.io/catalog-processing"

# Fixed namespace for entity uids: changing it would change every uid in every catalog.
_UID_NAMESPACE = uuid.UUID("8d3c5a6e-2f1b-5e0a-9c47-1b2d3e4f5a60")


class Relation(BaseModel):
    """An outgoing relation of an entity, serialised as Backstage's `{type, targetRef}`."""

    model_config = ConfigDict(frozen=True)

    type: str
    target_ref: str = Field(
        validation_alias=AliasChoices("target_ref", "targetRef"), serialization_alias="targetRef"
    )

    def to_backstage(self) -> dict[str, str]:
        return {"type": self.type, "targetRef": self.target_ref}


class ProcessingError(BaseModel):
    """Something that went wrong reading a catalog file, kept as data against its location.

    `location` is the location's URL (as given by the caller's `location_url`), `path` the
    repository-relative file the problem was found in, and `entity_ref` the entity it
    concerns when that could be told.
    """

    model_config = ConfigDict(frozen=True)

    message: str
    location: str
    entity_ref: str | None = None
    path: str | None = None

    def to_status_item(self) -> dict[str, Any]:
        """The error as one of Backstage's `status.items` entries."""
        return {
            "type": STATUS_PROCESSING_TYPE,
            "level": "error",
            "message": f"InputError: {self.message}",
            "error": {"name": "InputError", "message": self.message},
        }


class Entity(BaseModel):
    """One catalog entity. Unknown top-level keys (e.g. `relations`, `status`) are kept."""

    model_config = ConfigDict(extra="allow")

    api_version: str = Field(
        validation_alias=AliasChoices("apiVersion", "api_version"), serialization_alias="apiVersion"
    )
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any] = Field(default_factory=dict)

    @property
    def ref(self) -> EntityRef:
        namespace = self.metadata.get("namespace") or DEFAULT_NAMESPACE
        return EntityRef(kind=self.kind, namespace=str(namespace), name=str(self.metadata["name"]))

    def to_backstage(
        self,
        relations: list[Relation] | None = None,
        errors: list[ProcessingError] | None = None,
    ) -> dict[str, Any]:
        """The entity as Backstage's catalog API returns it (a fresh, JSON-ready dict).

        Given `relations`, they replace any `relations` key; given `errors`, they become the
        `status.items` (other `status` keys are kept).
        """
        body: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": copy.deepcopy(self.metadata),
            "spec": copy.deepcopy(self.spec),
        }
        for key, value in (self.model_extra or {}).items():
            body[key] = copy.deepcopy(value)
        if relations is not None:
            body["relations"] = [relation.to_backstage() for relation in relations]
        if errors:
            status = body.get("status")
            status = dict(status) if isinstance(status, dict) else {}
            status["items"] = [error.to_status_item() for error in errors]
            body["status"] = status
        return body


def entity_uid(ref: EntityRef) -> str:
    """A uid that depends only on the ref's key: stable across rebuilds and replays."""
    return str(uuid.uuid5(_UID_NAMESPACE, ref.key))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entity_etag(body: dict[str, Any]) -> str:
    """A hash of the canonical JSON of `body`: equal bodies, equal etags."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def finalize_entity(entity: Entity, *, location_url: str, origin_location_url: str) -> Entity:
    """Return a copy of `entity` as the catalog stores it.

    Sets the default namespace, the managed-by-location and managed-by-origin-location
    annotations (`url:<url>`; these overwrite any the author wrote, since Cairn decides
    ownership), the uid and the etag. The etag covers everything except uid and etag.
    """
    body = entity.to_backstage()
    metadata = body["metadata"]
    metadata.pop("uid", None)
    metadata.pop("etag", None)
    if not metadata.get("namespace"):
        metadata["namespace"] = DEFAULT_NAMESPACE
    annotations = metadata.get("annotations")
    annotations = dict(annotations) if isinstance(annotations, dict) else {}
    annotations[ANNOTATION_LOCATION] = f"url:{location_url}"
    annotations[ANNOTATION_ORIGIN_LOCATION] = f"url:{origin_location_url}"
    metadata["annotations"] = annotations
    etag = entity_etag(body)
    finalized = Entity.model_validate(body)
    finalized.metadata["uid"] = entity_uid(finalized.ref)
    finalized.metadata["etag"] = etag
    return finalized
