"""Every topic Cairn uses, with its key and value contract (ARCHITECTURE.md, Topics)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from services.model.ci_events import CiEventReceived, DeploymentRecorded
from services.model.events import DeadLettered, EntityChanged, GitEventReceived


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    value: type[BaseModel] | None  # None: the contract is not defined yet
    compacted: bool = False


GIT_EVENTS = Topic("cairn.git.events", "repository key (host/owner/name)", GitEventReceived)
CI_EVENTS = Topic(
    "cairn.ci.events", "repository key, entity ref or the subject named", CiEventReceived
)
ENTITY_CHANGES = Topic(
    "cairn.entity.changes", "entity ref (kind:namespace/name)", EntityChanged, compacted=True
)
DEPLOYMENTS = Topic("cairn.deployments", "entity ref", DeploymentRecorded)
DEAD_LETTERS = Topic("cairn.dead-letters", "as the source", DeadLettered)

ALL_TOPICS = (GIT_EVENTS, CI_EVENTS, ENTITY_CHANGES, DEPLOYMENTS, DEAD_LETTERS)
