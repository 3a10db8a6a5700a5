"""The search-index port.

Contract every adapter keeps (tests/integration/test_search_*.py hold both to it):

Writes
- `apply` writes documents and deletions with a version each (the change's log offset); a
  write whose version is not newer than the one the index holds for that ref is ignored,
  deletions included, so late or repeated changes never overwrite newer ones. The guard
  outlives a deletion: a late write older than the deletion stays deleted.
- `apply` returns once the batch is durable in the index; it is searchable then or within
  the adapter's refresh interval. If it raises `IndexUnavailable` nothing in the batch may be
  assumed written and the caller retries the whole batch (retrying is always safe). If it
  raises `WritesRejected`, every write but the rejected ones was applied; the rejected ones
  will be rejected again and belong on the dead-letter topic.

Reads
- Query text is split into words like names are (document.name_words). Every word must
  match the document, in one of these ways, and a document scores, per word, the weight of
  the best way it matches (`WEIGHTS`), plus `EXACT_NAME_BONUS` when the words of the query
  are the words of its name. So an exact name comes first, then names and titles, tags,
  description, owner/system/domain, spec and API definition text. Scores depend on the
  document and the query only (not on the rest of the index), so the order of unchanged
  documents never shifts while others change.
- `search` answers the same `SearchQuery` the same way on every adapter: filters are ORed
  within a field and ANDed across fields, `total` is exact, facets count the filtered hits
  (each facet's most frequent `FACET_SIZE` values, ties by value).
- Sorts: relevance (score, then name, then ref), name (then ref), updated (newest first,
  then ref). `next_cursor` is a keyset cursor: the sort key of the last hit, so paging while
  the index changes never repeats or skips a document that did not change meanwhile.
- Highlights (when asked): per field (`name`, `title`, `description`, `tags`,
  `definition`), HTML-escaped text with the matched words in `<em>...</em>`.
- `suggest` completes names and titles: names starting with the typed text first, then
  names and titles having words starting with each typed word; shorter names first.
- An unreachable backend raises `IndexUnavailable`; a bad query raises `InvalidQuery`
  naming the parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from services.index.document import DeployedEnvironment, SearchDocument
from services.model.ci_events import parse_since

FACET_FIELDS = (
    "kind",
    "type",
    "lifecycle",
    "owner",
    "system",
    "domain",
    "namespace",
    "tag",
    "label",
)
FACET_SIZE = 50

SortOrder = Literal["relevance", "name", "updated"]
SORT_ORDERS: tuple[SortOrder, ...] = ("relevance", "name", "updated")

# How a query word can match a document, and what each way is worth (see the docstring).
WEIGHTS = {
    "name": 10,
    "title": 8,
    "name_prefix": 6,  # a word of the name or title starts with the query word
    "tags": 5,
    "name_typo": 4,  # one edit from a name or title word; query words of 4+ letters, no digits
    "description": 3,
    "related": 2,  # the owner's, system's and domain's names
    "spec": 1,  # other spec values and the API definition text
}
EXACT_NAME_BONUS = 100
TYPO_MIN_LENGTH = 4
HIGHLIGHT_FIELDS = ("name", "title", "description", "tags", "definition")


class IndexUnavailable(RuntimeError):
    """The search backend cannot be reached now (or is overloaded); retry later."""


class InvalidQuery(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class IndexWrite:
    ref: str
    version: int
    document: SearchDocument | None  # None deletes


@dataclass(frozen=True)
class RejectedWrite:
    ref: str
    version: int
    reason: str


class WritesRejected(Exception):
    """The index refused some writes as invalid; every other write of the batch was applied."""

    def __init__(self, rejected: Sequence[RejectedWrite]) -> None:
        self.rejected = list(rejected)
        reasons = "; ".join(f"{r.ref}@{r.version}: {r.reason}" for r in self.rejected[:5])
        super().__init__(f"{len(self.rejected)} write(s) rejected: {reasons}")


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    limit: int = 20
    cursor: str | None = None
    sort: SortOrder = "relevance"
    highlight: bool = False


@dataclass(frozen=True)
class SearchHit:
    ref: str
    kind: str
    namespace: str
    name: str
    title: str | None
    description: str | None
    owner: str | None
    system: str | None
    type: str | None
    lifecycle: str | None
    tags: list[str]
    score: float
    updated_at: float = 0.0
    highlights: dict[str, list[str]] = field(default_factory=dict)
    # What the entity runs per environment (the `cairn.deployments` projection).
    deployments: list[DeployedEnvironment] = field(default_factory=list)


@dataclass(frozen=True)
class FacetCount:
    value: str
    count: int


@dataclass(frozen=True)
class SearchPage:
    items: list[SearchHit]
    total: int
    facets: dict[str, list[FacetCount]]
    next_cursor: str | None


@dataclass(frozen=True)
class Suggestion:
    ref: str
    name: str
    title: str | None
    kind: str


class SearchIndex(Protocol):
    def ensure_ready(self) -> None:
        """Create what the index needs (tables, templates, aliases); idempotent."""
        ...

    def apply(self, writes: Sequence[IndexWrite]) -> None: ...

    def search(self, query: SearchQuery) -> SearchPage: ...

    def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class IndexRebuild(Protocol):
    """One rebuild of an index from the store, begun by `RebuildableIndex.begin_rebuild`.

    While it runs, searches keep answering from the current index and `apply` keeps working;
    no change applied before `finish` returns is lost from the rebuilt index.
    """

    def write(self, writes: Sequence[IndexWrite]) -> None:
        """Write store entities (version-guarded like `apply`) into the rebuilt index."""
        ...

    def finish(self) -> str:
        """Catch up, make the rebuilt index the one searched; returns its description."""
        ...

    def abort(self) -> None: ...


class RebuildableIndex(SearchIndex, Protocol):
    def begin_rebuild(self) -> IndexRebuild: ...


# --- deployments: what each entity runs per environment -----------------------------------

# Search filters on deployments, given in `SearchQuery.filters` like the facet filters:
# `deployed_to` (environments where a version runs now), `deployed_since` (a duration such as
# `24h` or an ISO 8601 time: the running version was deployed since then, or, with
# `last_deploy_status`, the newest deployment began since then) and `last_deploy_status`
# (outcome of the newest deployment). All given ones must hold in one environment.
DEPLOYMENT_FILTERS = ("deployed_to", "deployed_since", "last_deploy_status")


@dataclass(frozen=True)
class DeploymentsWrite:
    """An entity's environments (replacing what the index holds for it), versioned by the
    `cairn.deployments` offset like `IndexWrite`; an empty list clears them."""

    ref: str
    version: int
    environments: list[DeployedEnvironment]


@dataclass(frozen=True)
class DeploymentFilter:
    environments: list[str]
    since: float | None  # Unix time
    statuses: list[str]

    @property
    def since_field(self) -> str:
        """`deployed_since` bounds the running version's deployment, or the newest
        deployment's start when a status is asked for."""
        return "last_at" if self.statuses else "deployed_at"


def deployment_filter(
    filters: dict[str, list[str]], now: float | None = None
) -> DeploymentFilter | None:
    """The deployment filters of a query (None when it has none); raises `InvalidQuery`."""
    at = datetime.fromtimestamp(now, UTC) if now is not None else None
    environments = sorted({v.strip().lower() for v in filters.get("deployed_to", []) if v.strip()})
    statuses = sorted(
        {v.strip().lower() for v in filters.get("last_deploy_status", []) if v.strip()}
    )
    since: float | None = None
    for value in filters.get("deployed_since", []):
        try:
            point = parse_since(value, at).timestamp()
        except ValueError as exc:
            raise InvalidQuery("deployed_since", str(exc)) from None
        since = point if since is None else max(since, point)
    if not (environments or statuses or since is not None):
        return None
    return DeploymentFilter(environments=environments, since=since, statuses=statuses)


@runtime_checkable
class DeploymentIndex(Protocol):
    """An index that keeps deployments beside its documents (contract: like `apply`, a write
    applies only if its version is newer than the one held for that ref; the environments
    outlive changes and deletions of the entity's document; `search` honours the
    `DEPLOYMENT_FILTERS` and fills `SearchHit.deployments`)."""

    def apply_deployments(self, writes: Sequence[DeploymentsWrite]) -> None: ...


# The version of deployments refilled from the deployments store (`cairn reindex`, an empty
# index): the store keeps no `cairn.deployments` offset, so it is below every offset. Such a
# write fills in an entity the index holds no deployments for and never replaces one the
# projection made.
STORE_VERSION = -1


@runtime_checkable
class DeploymentRebuild(Protocol):
    """A rebuild that carries deployments into the rebuilt index."""

    def write_deployments(self, writes: Sequence[DeploymentsWrite]) -> None:
        """Write the store's environments (at `STORE_VERSION`) into the rebuilt index."""
        ...
