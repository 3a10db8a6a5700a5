"""Event contracts carried on the log: versioned, past-tense, framework-free.

Every value on a topic is one of these models serialised as JSON. The envelope keeps the
raw payload so a projection can be rebuilt or a new field extracted later by replaying.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Repository(Contract):
    """A repository as Cairn addresses it: `key` is `host/owner/name`, lower-cased."""

    host: str
    owner: str
    name: str
    clone_url: str
    html_url: str
    default_branch: str = "main"
    archived: bool = False
    # The host's software decides how a file's web address is spelled (see file_url).
    provider: Literal["github", "gitlab", "gitea", "bitbucket"] = "github"

    @property
    def key(self) -> str:
        return f"{self.host}/{self.owner}/{self.name}".lower()

    def file_url(self, path: str) -> str:
        """The web address of a file on the default branch, as the host spells it."""
        base = self.html_url.rstrip("/")
        branch = self.default_branch
        if self.provider == "gitlab":
            return f"{base}/-/blob/{branch}/{path}"
        if self.provider == "gitea":
            return f"{base}/src/branch/{branch}/{path}"
        if self.provider == "bitbucket":
            return f"{base}/src/{branch}/{path}"
        return f"{base}/blob/{branch}/{path}"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class CommitSeen(Contract):
    id: str
    timestamp: datetime | None = None


class PushReceived(Contract):
    """A branch moved. A hint that the repository changed, never the truth itself."""

    type: Literal["push"] = "push"
    ref: str
    before: str | None = None
    after: str | None = None
    deleted: bool = False
    commits: list[CommitSeen] = Field(default_factory=list)

    @property
    def branch(self) -> str | None:
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref.startswith(prefix) else None


class RepositoryChanged(Contract):
    """The repository itself changed: deleted, archived, unarchived, renamed or transferred."""

    type: Literal["repository"] = "repository"
    action: Literal["deleted", "archived", "unarchived", "renamed", "transferred"]
    previous: Repository | None = None


class ResyncRequested(Contract):
    """Re-read the repository's default branch now (on demand, periodic, or to heal)."""

    type: Literal["resync"] = "resync"
    reason: str


class LocationRemoved(Contract):
    """A location (one catalog file) was unregistered through the catalog API.

    The repository is read again without that file as a root, so the location and the
    entities it owned are removed. A later push reads the repository as configured again.
    """

    type: Literal["location_removed"] = "location_removed"
    location_id: str
    path: str


GitChange = Annotated[
    PushReceived | RepositoryChanged | ResyncRequested | LocationRemoved,
    Field(discriminator="type"),
]


class GitEventReceived(Contract):
    """Value of `cairn.git.events`, keyed by repository key."""

    schema_version: Literal[1] = 1
    source: str
    delivery_id: str
    event_type: str
    received_at: datetime = Field(default_factory=utcnow)
    repository: Repository
    change: GitChange
    raw: dict[str, Any] = Field(default_factory=dict)


class RelationRecord(Contract):
    source_ref: str
    type: str
    target_ref: str


class ErrorRecord(Contract):
    message: str
    location: str
    entity_ref: str | None = None
    path: str | None = None
    code: str | None = None  # "conflict" when another location owns the entity


class EntityChanged(Contract):
    """Value of `cairn.entity.changes`, keyed by entity ref. A null value is the tombstone."""

    schema_version: Literal[1] = 1
    ref: str
    location_id: str
    location_target: str
    entity: dict[str, Any]
    relations: list[RelationRecord] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)
    commit: str | None = None
    changed_at: datetime = Field(default_factory=utcnow)


class DeadLettered(Contract):
    """Value of `cairn.dead-letters`: the event that could not be processed and why."""

    schema_version: Literal[1] = 1
    source_topic: str
    key: str | None
    value: str | None
    error: str
    processor: str
    failed_at: datetime = Field(default_factory=utcnow)
