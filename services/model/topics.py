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
    # How long records are kept (topics that are not compacted): the log is for replay and
    # repair, the store and the index are the catalog.
    retention_days: int = 7


GIT_EVENTS = Topic("cairn.git.events", "repository key (host/owner/name)", GitEventReceived)
CI_EVENTS = Topic(
    "cairn.ci.events", "repository key, entity ref or the subject named", CiEventReceived
)
ENTITY_CHANGES = Topic(
    "cairn.entity.changes", "entity ref (kind:namespace/name)", EntityChanged, compacted=True
)
DEPLOYMENTS = Topic("cairn.deployments", "entity ref", DeploymentRecorded, retention_days=30)
DEAD_LETTERS = Topic("cairn.dead-letters", "as the source", DeadLettered, retention_days=30)

ALL_TOPICS = (GIT_EVENTS, CI_EVENTS, ENTITY_CHANGES, DEPLOYMENTS, DEAD_LETTERS)


def topic_named(name: str) -> Topic:
    """Cairn's topic of that name, or a plain one (7 days' retention) for any other name."""
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    return Topic(name, "any", None)
