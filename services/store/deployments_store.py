"""The CI/CD records of the catalog: deployments, pipeline runs, incidents, merged changes,
which entities they are attached to, and what each entity runs per environment.

Port and adapter side by side. The deployment processor (processors/deployments.py) is the
only writer; the search API reads through `DeploymentReads`. Contract:

- A record is saved whole (`save_*`), with the match keys it can be found by; saving again
  replaces it. Links (record -> entity) are added only by `link` and `attach_unmatched`,
  never removed: history stays attached when an entity goes away.
- A record without links is unmatched, and listed as such (`CiQuery.unmatched`).
- `attach_unmatched` links every unmatched record having one of an entity's keys, choosing
  per record the strongest kind of key that matched (`MATCH_KINDS`), in one transaction.
- Entity keys (`put_entities`) are the processor's own view of `cairn.entity.changes`, so a
  record saved before its entity appeared is attached when the entity's change is handled,
  and one saved after finds the entity's keys: save the record, then match (both sides
  write before they read, so one of the two always sees the other).
- Reads return model records (services/model/ci_events.py), never rows. Lists are newest
  first with a keyset cursor, so paging while records arrive repeats or skips nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from services.model.ci_events import (
    MATCH_KINDS,
    DeploymentRecord,
    EnvironmentState,
    IncidentRecord,
    MergedChangeRecord,
    PipelineRunRecord,
    key_kind,
    match_key,
)
from services.model.events import CommitSeen
from services.store import schema
from services.store.pg_bulk import insert_rows, replace_on_conflict, upsert_rows
from services.store.tables import (
    Base,
    CiCommitRow,
    CiDeploymentRow,
    CiEntityKeyRow,
    CiEntityRow,
    CiEnvironmentStateRow,
    CiIncidentRow,
    CiLinkRow,
    CiMergedChangeRow,
    CiPipelineRunRow,
    CiRecordKeyRow,
    LocationRow,
)

DEPLOYMENT = "deployment"
PIPELINE_RUN = "pipeline_run"
INCIDENT = "incident"
MERGED_CHANGE = "change"
RECORD_TYPES = (DEPLOYMENT, PIPELINE_RUN, INCIDENT, MERGED_CHANGE)
MAX_PAGE = 500


class InvalidCursor(ValueError):
    """The cursor was not made by this listing."""


@dataclass(frozen=True)
class EntityKeys:
    """An entity as the deployment processor matches it."""

    ref: str
    kind: str
    repository: str | None
    owner: str | None
    system: str | None
    keys: list[str]


@dataclass(frozen=True)
class CiQuery:
    """A listing of deployments or pipeline runs; filters OR within, AND across fields."""

    entities: list[str] = field(default_factory=list)  # entity refs
    systems: list[str] = field(default_factory=list)  # system refs of the attached entities
    owners: list[str] = field(default_factory=list)  # owner refs of the attached entities
    environments: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    since: datetime | None = None
    unmatched: bool | None = None  # True: only unmatched records; False: only matched
    limit: int = 50
    cursor: str | None = None


R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class CiPage(Generic[R]):
    items: list[R]
    next_cursor: str | None


@dataclass(frozen=True)
class EntityCiSummary:
    environments: list[EnvironmentState]
    deployments: int
    pipeline_runs: int


# (what set the version running there, the newest deployment there) -> the state
DeriveState = Callable[[DeploymentRecord | None, DeploymentRecord], EnvironmentState]


class DeploymentStore(Protocol):
    """What the deployment processor reads and writes (see the module docstring)."""

    def create_schema(self) -> None: ...

    def get_deployment(self, record_id: str) -> DeploymentRecord | None: ...

    def save_deployment(self, record: DeploymentRecord, keys: Sequence[str]) -> None: ...

    def get_pipeline_run(self, record_id: str) -> PipelineRunRecord | None: ...

    def save_pipeline_run(self, record: PipelineRunRecord, keys: Sequence[str]) -> None: ...

    def get_incident(self, record_id: str) -> IncidentRecord | None: ...

    def save_incident(self, record: IncidentRecord, keys: Sequence[str]) -> None: ...

    def save_merged_change(self, record: MergedChangeRecord, keys: Sequence[str]) -> None: ...

    def links(self, record_type: str, record_id: str) -> list[str]:
        """The refs the record is attached to."""
        ...

    def link(self, record_type: str, record_id: str, refs: Sequence[str]) -> None: ...

    def entities_with_keys(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """Key -> refs of the entities found by it (the processor's entity keys)."""
        ...

    def put_entities(self, entities: Sequence[EntityKeys]) -> None: ...

    def remove_entities(self, refs: Sequence[str]) -> None: ...

    def attach_unmatched(self, entities: Sequence[EntityKeys]) -> dict[str, set[str]]:
        """Link unmatched records found by these entities' keys; ref -> record types."""
        ...

    def repository_of_location(self, location_id: str) -> str | None:
        """The repository holding a location (the descriptor processor's state; None
        until the descriptor processor committed it)."""
        ...

    def entity_repositories(self, refs: Sequence[str]) -> dict[str, str | None]:
        """Lower-cased ref -> the repository the processor last saw the entity in."""
        ...

    def assign_repository_keys(self, repositories: Sequence[str]) -> dict[str, str]:
        """Give the repository's match key to its only Component (and take it from every
        entity when it holds none or several); repository -> the ref that now has it."""
        ...

    def version_history(
        self, ref: str, environment: str, before: datetime, exclude: str
    ) -> list[DeploymentRecord]:
        """The entity's deployments there that set what runs before `before`, newest first
        (at most 50)."""
        ...

    def environments_of(self, ref: str) -> list[str]:
        """Environment keys the entity's deployments went to."""
        ...

    def refresh_environment_states(
        self, ref: str, environments: Sequence[str], derive: DeriveState
    ) -> list[EnvironmentState]:
        """Derive, save and return the entity's environment states, one processor at a time
        per entity (see SqlDeploymentStore)."""
        ...

    def environment_states(self, ref: str) -> list[EnvironmentState]: ...

    def record_commits(self, repository: str, commits: Sequence[CommitSeen]) -> int: ...

    def close(self) -> None: ...


class DeploymentReads(Protocol):
    """What the search API reads."""

    def list_deployments(self, query: CiQuery) -> CiPage[DeploymentRecord]: ...

    def list_pipeline_runs(self, query: CiQuery) -> CiPage[PipelineRunRecord]: ...

    def entity_summary(self, ref: str) -> EntityCiSummary: ...

    def environment_states(self, ref: str) -> list[EnvironmentState]: ...

    def commit_times(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        """(repository, sha) -> when the commit was made, for the pairs that were seen."""
        ...


# --- the SQL adapter --------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def encode_cursor(at: datetime, record_id: str) -> str:
    raw = json.dumps([at.astimezone(UTC).isoformat(), record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, record_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), str(record_id)
    except (ValueError, TypeError):
        raise InvalidCursor("The cursor was not returned by this listing.") from None


_CI_TABLES = [
    str(row.__tablename__)
    for row in (
        CiDeploymentRow,
        CiPipelineRunRow,
        CiIncidentRow,
        CiMergedChangeRow,
        CiLinkRow,
        CiRecordKeyRow,
        CiEntityRow,
        CiEntityKeyRow,
        CiCommitRow,
        CiEnvironmentStateRow,
    )
]
_RECORD_ROWS: dict[str, Any] = {
    DEPLOYMENT: CiDeploymentRow,
    PIPELINE_RUN: CiPipelineRunRow,
    INCIDENT: CiIncidentRow,
    MERGED_CHANGE: CiMergedChangeRow,
}


def _lower(values: Iterable[str]) -> list[str]:
    return [v.strip().lower() for v in values if v.strip()]


class SqlDeploymentStore:
    """The CI/CD records on the catalog's database (SQLite or PostgreSQL).

    SQLite: writers take the lock up front (`BEGIN IMMEDIATE`); PostgreSQL: a small pool;
    tables come from the Alembic migrations (`create_schema` applies them, as the catalog
    store does).
    """

    def __init__(self, url: str, pool_size: int = 3) -> None:
        self._dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self._dialect == "sqlite":
            self._write_engine = _sqlite_engine(url, immediate=True)
            self._read_engine = _sqlite_engine(url, immediate=False)
        else:
            self._write_engine = create_engine(
                schema.database_url(url),
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=pool_size * 2,
                connect_args={"application_name": "cairn-deployments"},
            )
            schema.map_connection_errors(self._write_engine)
            self._read_engine = self._write_engine
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)

    def create_schema(self) -> None:
        if self._dialect == "postgresql":
            schema.upgrade(self._write_engine)
            return
        schema.upgrade_embedded(
            self._write_engine, [Base.metadata.tables[name] for name in _CI_TABLES]
        )

    def close(self) -> None:
        self._write_engine.dispose()
        self._read_engine.dispose()

    def _upsert(
        self, session: Session, row: Any, rows: Sequence[dict[str, Any]], keys: list[str]
    ) -> None:
        """Insert or replace `rows` (all with the same columns, each key once) in one
        statement, not one statement per row."""
        if self._dialect == "postgresql":
            insert_rows(session, row, rows, replace_on_conflict(keys, rows[0]))
            return
        statement = sqlite.insert(row)
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={k: statement.excluded[k] for k in rows[0] if k not in keys},
        )
        session.execute(statement, list(rows))

    def _insert_new(self, session: Session, row: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert `rows` (all with the same columns), leaving out those already there."""
        if not rows:
            return
        if self._dialect == "postgresql":
            insert_rows(session, row, rows, "ON CONFLICT DO NOTHING")
            return
        session.execute(sqlite.insert(row).on_conflict_do_nothing(), list(rows))

    # --- records ----------------------------------------------------------------------

    def _get(self, row: Any, model: type[R], record_id: str) -> R | None:
        with self._read() as session:
            found = session.get(row, record_id)
            return model.model_validate(found.body) if found is not None else None

    def _save(
        self,
        record_type: str,
        record_id: str,
        values: dict[str, Any],
        keys: Sequence[str],
    ) -> None:
        row = _RECORD_ROWS[record_type]
        with self._write.begin() as session:
            linked = session.scalar(
                select(func.count())
                .select_from(CiLinkRow)
                .where(CiLinkRow.record_type == record_type, CiLinkRow.record_id == record_id)
            )
            values = {**values, "id": record_id, "matched": bool(linked), "updated_at": _now()}
            self._upsert(session, row, [values], ["id"])
            self._insert_new(
                session,
                CiRecordKeyRow,
                [{"record_type": record_type, "record_id": record_id, "key": k} for k in keys],
            )

    def get_deployment(self, record_id: str) -> DeploymentRecord | None:
        return self._get(CiDeploymentRow, DeploymentRecord, record_id)

    def save_deployment(self, record: DeploymentRecord, keys: Sequence[str]) -> None:
        current_at = record.succeeded_at
        if record.status == "removed":
            current_at = record.status_at
        self._save(
            DEPLOYMENT,
            record.id,
            {
                "source": record.source,
                "environment_key": record.environment.strip().lower(),
                "status": record.status,
                "version": record.version,
                "sort_at": record.sort_at,
                "current_at": current_at,
                "repository_key": record.repository,
                "body": record.model_dump(mode="json", exclude={"entity_refs"}),
            },
            keys,
        )

    def get_pipeline_run(self, record_id: str) -> PipelineRunRecord | None:
        return self._get(CiPipelineRunRow, PipelineRunRecord, record_id)

    def save_pipeline_run(self, record: PipelineRunRecord, keys: Sequence[str]) -> None:
        self._save(
            PIPELINE_RUN,
            record.id,
            {
                "source": record.source,
                "status": record.status,
                "branch": record.branch,
                "sort_at": record.sort_at,
                "repository_key": record.repository,
                "body": record.model_dump(mode="json", exclude={"entity_refs"}),
            },
            keys,
        )

    def get_incident(self, record_id: str) -> IncidentRecord | None:
        return self._get(CiIncidentRow, IncidentRecord, record_id)

    def save_incident(self, record: IncidentRecord, keys: Sequence[str]) -> None:
        self._save(
            INCIDENT,
            record.id,
            {
                "source": record.source,
                "status": record.status,
                "sort_at": record.detected_at or record.status_at,
                "body": record.model_dump(mode="json", exclude={"entity_refs"}),
            },
            keys,
        )

    def save_merged_change(self, record: MergedChangeRecord, keys: Sequence[str]) -> None:
        self._save(
            MERGED_CHANGE,
            record.id,
            {
                "source": record.source,
                "sort_at": record.merged_at,
                "body": record.model_dump(mode="json", exclude={"entity_refs"}),
            },
            keys,
        )

    # --- links --------------------------------------------------------------------------

    def links(self, record_type: str, record_id: str) -> list[str]:
        with self._read() as session:
            return sorted(
                session.scalars(
                    select(CiLinkRow.ref).where(
                        CiLinkRow.record_type == record_type, CiLinkRow.record_id == record_id
                    )
                )
            )

    def _link(self, session: Session, pairs: Iterable[tuple[str, str, str]]) -> None:
        rows = [
            {"record_type": t, "record_id": i, "ref_key": ref.lower(), "ref": ref}
            for t, i, ref in pairs
        ]
        if not rows:
            return
        self._insert_new(session, CiLinkRow, rows)
        by_type: dict[str, set[str]] = {}
        for row in rows:
            by_type.setdefault(row["record_type"], set()).add(row["record_id"])
        for record_type, ids in by_type.items():
            table = _RECORD_ROWS[record_type]
            session.execute(update(table).where(table.id.in_(sorted(ids))).values(matched=True))

    def link(self, record_type: str, record_id: str, refs: Sequence[str]) -> None:
        with self._write.begin() as session:
            self._link(session, [(record_type, record_id, ref) for ref in refs])

    # --- entities -----------------------------------------------------------------------

    def entities_with_keys(self, keys: Sequence[str]) -> dict[str, list[str]]:
        if not keys:
            return {}
        found: dict[str, list[str]] = {}
        with self._read() as session:
            rows = session.execute(
                select(CiEntityKeyRow.key, CiEntityRow.ref)
                .join(CiEntityRow, CiEntityRow.ref_key == CiEntityKeyRow.ref_key)
                .where(CiEntityKeyRow.key.in_(list(keys)))
                .order_by(CiEntityRow.ref_key)
            )
            for key, ref in rows:
                found.setdefault(key, []).append(ref)
        return found

    def put_entities(self, entities: Sequence[EntityKeys]) -> None:
        if not entities:
            return
        latest = {e.ref.lower(): e for e in entities}
        with self._write.begin() as session:
            rows = [
                {
                    "ref_key": key,
                    "ref": entity.ref,
                    "kind": entity.kind,
                    "repository_key": entity.repository,
                    "owner": entity.owner,
                    "system": entity.system,
                }
                for key, entity in sorted(latest.items())
            ]
            if self._dialect == "postgresql":
                # Only a ref that had a row has keys to remove: an import deletes nothing (as
                # in the store's projection, docs/architecture.md decision 26).
                written = upsert_rows(session, CiEntityRow, rows, "ref_key")
                replaced = [key for key, inserted in written if not inserted]
            else:
                self._upsert(session, CiEntityRow, rows, ["ref_key"])
                replaced = sorted(latest)
            if replaced:
                session.execute(delete(CiEntityKeyRow).where(CiEntityKeyRow.ref_key.in_(replaced)))
            self._insert_new(
                session,
                CiEntityKeyRow,
                [
                    {"ref_key": key, "key": k}
                    for key in sorted(latest)
                    for k in dict.fromkeys(latest[key].keys)
                ],
            )

    def remove_entities(self, refs: Sequence[str]) -> None:
        keys = sorted({ref.lower() for ref in refs})
        if not keys:
            return
        with self._write.begin() as session:
            session.execute(delete(CiEntityKeyRow).where(CiEntityKeyRow.ref_key.in_(keys)))
            session.execute(delete(CiEntityRow).where(CiEntityRow.ref_key.in_(keys)))

    def attach_unmatched(self, entities: Sequence[EntityKeys]) -> dict[str, set[str]]:
        refs_by_key: dict[str, list[str]] = {}
        for entity in entities:
            for key in entity.keys:
                refs_by_key.setdefault(key, []).append(entity.ref)
        if not refs_by_key:
            return {}
        attached: dict[str, set[str]] = {}
        with self._write.begin() as session:
            candidates: dict[tuple[str, str], dict[str, set[str]]] = {}
            for record_type, table in _RECORD_ROWS.items():
                rows = session.execute(
                    select(CiRecordKeyRow.record_id, CiRecordKeyRow.key)
                    .join(table, table.id == CiRecordKeyRow.record_id)
                    .where(
                        CiRecordKeyRow.record_type == record_type,
                        CiRecordKeyRow.key.in_(sorted(refs_by_key)),
                        table.matched.is_(False),
                    )
                )
                for record_id, key in rows:
                    by_kind = candidates.setdefault((record_type, record_id), {})
                    by_kind.setdefault(key_kind(key), set()).update(refs_by_key[key])
            pairs: list[tuple[str, str, str]] = []
            for (record_type, record_id), by_kind in candidates.items():
                kind = next(k for k in MATCH_KINDS if k in by_kind)
                for ref in sorted(by_kind[kind]):
                    pairs.append((record_type, record_id, ref))
                    attached.setdefault(ref, set()).add(record_type)
            self._link(session, pairs)
        return attached

    def repository_of_location(self, location_id: str) -> str | None:
        with self._read() as session:
            return session.scalar(
                select(LocationRow.repository_key).where(LocationRow.id == location_id)
            )

    def entity_repositories(self, refs: Sequence[str]) -> dict[str, str | None]:
        keys = sorted({ref.lower() for ref in refs})
        if not keys:
            return {}
        with self._read() as session:
            rows = session.execute(
                select(CiEntityRow.ref_key, CiEntityRow.repository_key).where(
                    CiEntityRow.ref_key.in_(keys)
                )
            )
            return {key: repository for key, repository in rows}

    def assign_repository_keys(self, repositories: Sequence[str]) -> dict[str, str]:
        wanted = sorted({r.lower() for r in repositories if r})
        if not wanted:
            return {}
        assigned: dict[str, str] = {}
        with self._write.begin() as session:
            components: dict[str, list[tuple[str, str]]] = {}
            for repository, key, ref in session.execute(
                select(CiEntityRow.repository_key, CiEntityRow.ref_key, CiEntityRow.ref)
                .where(CiEntityRow.repository_key.in_(wanted), CiEntityRow.kind == "component")
                .order_by(CiEntityRow.ref_key)
            ):
                components.setdefault(str(repository), []).append((key, ref))
            keys = [match_key("repository", r) for r in wanted]
            session.execute(delete(CiEntityKeyRow).where(CiEntityKeyRow.key.in_(keys)))
            rows = []
            for repository in wanted:
                held = components.get(repository, [])
                if len(held) == 1:
                    rows.append({"ref_key": held[0][0], "key": match_key("repository", repository)})
                    assigned[repository] = held[0][1]
            self._insert_new(session, CiEntityKeyRow, rows)
        return assigned

    # --- environments -------------------------------------------------------------------

    def _entity_deployments(self, ref: str, environment: str) -> Any:
        return (
            select(CiDeploymentRow.body)
            .join(
                CiLinkRow,
                and_(
                    CiLinkRow.record_type == DEPLOYMENT,
                    CiLinkRow.record_id == CiDeploymentRow.id,
                ),
            )
            .where(
                CiLinkRow.ref_key == ref.lower(),
                CiDeploymentRow.environment_key == environment.strip().lower(),
            )
        )

    def _current_and_last(
        self, session: Session, ref: str, environment: str
    ) -> tuple[DeploymentRecord | None, DeploymentRecord | None]:
        """The entity's deployment in `environment` that last set what runs there (by
        `current_at`), and its newest deployment there (by start)."""
        base = self._entity_deployments(ref, environment)
        current = session.scalar(
            base.where(CiDeploymentRow.current_at.is_not(None))
            .order_by(CiDeploymentRow.current_at.desc(), CiDeploymentRow.id.desc())
            .limit(1)
        )
        last = session.scalar(
            base.order_by(CiDeploymentRow.sort_at.desc(), CiDeploymentRow.id.desc()).limit(1)
        )
        return (
            DeploymentRecord.model_validate(current) if current is not None else None,
            DeploymentRecord.model_validate(last) if last is not None else None,
        )

    def refresh_environment_states(
        self, ref: str, environments: Sequence[str], derive: DeriveState
    ) -> list[EnvironmentState]:
        """Derive the entity's state in each environment from its stored deployments, save
        it, and return all the entity's environment states, in one transaction that holds
        the entity's lock. Two processors deriving for one entity at once (its deployments
        can arrive on different partitions) then run one after the other, and the later one
        reads every deployment committed before it: the older derivation cannot be written
        last. PostgreSQL: a transaction-scoped advisory lock on the entity; SQLite: writers
        are one at a time already (`BEGIN IMMEDIATE`)."""
        with self._write.begin() as session:
            if self._dialect == "postgresql":
                lock = func.hashtextextended(literal(f"cairn-environments:{ref.lower()}"), 0)
                session.execute(select(func.pg_advisory_xact_lock(lock)))
            for environment in environments:
                current, last = self._current_and_last(session, ref, environment)
                if last is not None:
                    self._save_state(session, ref, derive(current, last))
            return self._states(session, ref)

    def version_history(
        self, ref: str, environment: str, before: datetime, exclude: str
    ) -> list[DeploymentRecord]:
        with self._read() as session:
            bodies = session.scalars(
                self._entity_deployments(ref, environment)
                .where(
                    CiDeploymentRow.current_at.is_not(None),
                    CiDeploymentRow.current_at <= before,
                    CiDeploymentRow.id != exclude,
                )
                .order_by(CiDeploymentRow.current_at.desc(), CiDeploymentRow.id.desc())
                .limit(50)
            )
            return [DeploymentRecord.model_validate(body) for body in bodies]

    def environments_of(self, ref: str) -> list[str]:
        with self._read() as session:
            return sorted(
                set(
                    session.scalars(
                        select(CiDeploymentRow.environment_key)
                        .join(
                            CiLinkRow,
                            and_(
                                CiLinkRow.record_type == DEPLOYMENT,
                                CiLinkRow.record_id == CiDeploymentRow.id,
                            ),
                        )
                        .where(CiLinkRow.ref_key == ref.lower())
                    )
                )
            )

    def save_environment_state(self, ref: str, state: EnvironmentState) -> None:
        """Write one environment state as given (the processor derives them instead, with
        refresh_environment_states; this sets a state directly)."""
        with self._write.begin() as session:
            self._save_state(session, ref, state)

    def _save_state(self, session: Session, ref: str, state: EnvironmentState) -> None:
        self._upsert(
            session,
            CiEnvironmentStateRow,
            [
                {
                    "ref_key": ref.lower(),
                    "environment_key": state.environment.strip().lower(),
                    "body": state.model_dump(mode="json"),
                    "updated_at": _now(),
                }
            ],
            ["ref_key", "environment_key"],
        )

    def environment_states(self, ref: str) -> list[EnvironmentState]:
        with self._read() as session:
            return self._states(session, ref)

    def _states(self, session: Session, ref: str) -> list[EnvironmentState]:
        bodies = session.scalars(
            select(CiEnvironmentStateRow.body)
            .where(CiEnvironmentStateRow.ref_key == ref.lower())
            .order_by(CiEnvironmentStateRow.environment_key)
        )
        return [EnvironmentState.model_validate(body) for body in bodies]

    def iter_environment_states(
        self, batch_size: int = 1000
    ) -> Iterator[tuple[str, list[EnvironmentState]]]:
        """Every entity's environments (ref key, states by environment), in ref key order,
        read `batch_size` rows at a time (what `cairn reindex` refills an index with)."""
        row = CiEnvironmentStateRow
        after: tuple[str, str] | None = None
        ref_key: str | None = None
        states: list[EnvironmentState] = []
        while True:
            query = (
                select(row.ref_key, row.environment_key, row.body)
                .order_by(row.ref_key, row.environment_key)
                .limit(batch_size)
            )
            if after is not None:
                query = query.where(tuple_(row.ref_key, row.environment_key) > after)
            with self._read() as session:
                rows = session.execute(query).all()
            for key, _environment, body in rows:
                if key != ref_key:
                    if ref_key is not None:
                        yield ref_key, states
                    ref_key, states = key, []
                states.append(EnvironmentState.model_validate(body))
            if len(rows) < batch_size:
                break
            after = (rows[-1][0], rows[-1][1])
        if ref_key is not None:
            yield ref_key, states

    # --- commits ------------------------------------------------------------------------

    def record_commits(self, repository: str, commits: Sequence[CommitSeen]) -> int:
        rows = [
            {"repository_key": repository.lower(), "sha": c.id.lower(), "committed_at": c.timestamp}
            for c in commits
            if c.timestamp is not None and c.id
        ]
        if not rows:
            return 0
        with self._write.begin() as session:
            self._insert_new(session, CiCommitRow, rows)
        return len(rows)

    def commit_times(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        wanted = sorted({(r.lower(), s.lower()) for r, s in pairs if r and s})
        if not wanted:
            return {}
        with self._read() as session:
            rows = session.execute(
                select(CiCommitRow.repository_key, CiCommitRow.sha, CiCommitRow.committed_at).where(
                    tuple_(CiCommitRow.repository_key, CiCommitRow.sha).in_(wanted)
                )
            )
            return {(r, s): at for r, s, at in rows}

    # --- the read side ------------------------------------------------------------------

    def _filtered(self, record_type: str, table: Any, query: CiQuery) -> tuple[Any, int]:
        conditions: list[Any] = []
        linked = select(CiLinkRow.record_id).where(CiLinkRow.record_type == record_type)
        if query.entities:
            conditions.append(
                table.id.in_(linked.where(CiLinkRow.ref_key.in_(_lower(query.entities))))
            )
        for values, column in (
            (query.systems, CiEntityRow.system),
            (query.owners, CiEntityRow.owner),
        ):
            if values:
                conditions.append(
                    table.id.in_(
                        linked.join(CiEntityRow, CiEntityRow.ref_key == CiLinkRow.ref_key).where(
                            column.in_(_lower(values))
                        )
                    )
                )
        if query.environments and hasattr(table, "environment_key"):
            conditions.append(table.environment_key.in_(_lower(query.environments)))
        if query.statuses:
            conditions.append(table.status.in_(_lower(query.statuses)))
        if query.repositories:
            conditions.append(table.repository_key.in_(_lower(query.repositories)))
        if query.since is not None:
            conditions.append(table.sort_at >= query.since)
        if query.unmatched is not None:
            conditions.append(table.matched.is_(not query.unmatched))
        if query.cursor:
            at, record_id = decode_cursor(query.cursor)
            conditions.append(
                or_(table.sort_at < at, and_(table.sort_at == at, table.id < record_id))
            )
        limit = max(1, min(query.limit, MAX_PAGE))
        return (
            select(table.id, table.sort_at, table.body)
            .where(*conditions)
            .order_by(table.sort_at.desc(), table.id.desc())
            .limit(limit + 1)
        ), limit

    def _page(self, record_type: str, model: type[R], query: CiQuery) -> CiPage[R]:
        table = _RECORD_ROWS[record_type]
        statement, limit = self._filtered(record_type, table, query)
        with self._read() as session:
            rows = session.execute(statement).all()
            more = len(rows) > limit
            rows = rows[:limit]
            ids = [row[0] for row in rows]
            refs: dict[str, list[str]] = {}
            if ids:
                for record_id, ref in session.execute(
                    select(CiLinkRow.record_id, CiLinkRow.ref)
                    .where(CiLinkRow.record_type == record_type, CiLinkRow.record_id.in_(ids))
                    .order_by(CiLinkRow.ref_key)
                ):
                    refs.setdefault(record_id, []).append(ref)
        items = [
            model.model_validate({**body, "entity_refs": refs.get(record_id, [])})
            for record_id, _at, body in rows
        ]
        cursor = encode_cursor(rows[-1][1], rows[-1][0]) if more and rows else None
        return CiPage(items=items, next_cursor=cursor)

    def list_deployments(self, query: CiQuery) -> CiPage[DeploymentRecord]:
        return self._page(DEPLOYMENT, DeploymentRecord, query)

    def list_pipeline_runs(self, query: CiQuery) -> CiPage[PipelineRunRecord]:
        return self._page(PIPELINE_RUN, PipelineRunRecord, query)

    def entity_summary(self, ref: str) -> EntityCiSummary:
        with self._read() as session:
            counts = dict(
                session.execute(
                    select(CiLinkRow.record_type, func.count())
                    .where(CiLinkRow.ref_key == ref.lower())
                    .group_by(CiLinkRow.record_type)
                ).all()
            )
        return EntityCiSummary(
            environments=self.environment_states(ref) if counts.get(DEPLOYMENT) else [],
            deployments=int(counts.get(DEPLOYMENT, 0)),
            pipeline_runs=int(counts.get(PIPELINE_RUN, 0)),
        )
