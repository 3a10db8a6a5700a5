"""The catalog store on SQLAlchemy 2: SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from services.model.catalog import (
    DesiredLocation,
    EntityDocument,
    LocationRecord,
    Owner,
    OwnershipPlan,
    StoredEntity,
    plan_ownership,
    ref_key,
)
from services.model.events import ErrorRecord, Repository
from services.store import schema
from services.store.catalog_queries import SqlEntityQueries
from services.store.catalog_query import (
    EntityFilter,
    EntityList,
    EntityListRequest,
    EntityPage,
    EntityPageRequest,
    FacetCount,
)
from services.store.entity_rows import live_entities, to_entities
from services.store.entity_search import TEXT_KEYS, build_search_entries
from services.store.pg_bulk import insert_rows, upsert_rows
from services.store.port import RepositoryState, VersionedChange
from services.store.tables import (
    EntityRow,
    LocationRow,
    OwnerRow,
    RelationRow,
    RepositoryRow,
    SearchRow,
    TextRow,
)


def _now() -> datetime:
    return datetime.now(UTC)


_BY_REF_KEY = live_entities().where(EntityRow.ref_key == bindparam("value")).limit(1)
_BY_UID = live_entities().where(EntityRow.uid == bindparam("value")).limit(1)


@dataclass(frozen=True)
class PoolOptions:
    """The connections one store keeps to PostgreSQL (SQLite ignores these).

    Every process holds at most `size + max_overflow` connections; with several processors
    and api replicas that sum must stay under the server's `max_connections`.
    """

    size: int = 5
    max_overflow: int = 10
    timeout_seconds: float = 30.0  # waiting for a free connection of the pool
    connect_timeout_seconds: float = 10.0  # opening one


# PostgreSQL errors that only say another transaction got there first: the work is redone.
_RACES = {
    "23505": "unique_violation",
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
}
_RECONCILE_ATTEMPTS = 5


def _postgres_engine(url: str, pool: PoolOptions) -> Engine:
    engine = create_engine(
        url,
        # A connection the server dropped (restart, idle timeout) is replaced, not handed out.
        pool_pre_ping=True,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout_seconds,
        connect_args={
            "connect_timeout": max(2, round(pool.connect_timeout_seconds)),
            "application_name": "cairn",
        },
    )
    schema.map_connection_errors(engine)
    return engine


def _make_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the begin hook below own transactions
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the lock up front: a deferred transaction that upgrades to a write
        # fails at once under WAL when another writer committed in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class SqlCatalogStore:
    """The catalog store on a SQL database (see port.py for the contract).

    SQLite: one writer at a time (`BEGIN IMMEDIATE`), readers on their own connections.
    PostgreSQL: a pool of connections (`pool`); concurrent writers are made safe by the
    database itself: the projection's version check is inside its upsert, and ownership
    races end in a unique-key violation that makes the loser redo its reconcile and see
    the winner's claim. Connection failures raise `StoreUnavailable`.
    """

    def __init__(self, url: str, pool: PoolOptions | None = None) -> None:
        self._dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self._dialect == "sqlite":
            self.url = url
            self._write_engine = _make_engine(url, immediate=True)
            self._read_engine = _make_engine(url, immediate=False)
        else:
            self.url = schema.database_url(url)
            self._write_engine = _postgres_engine(self.url, pool or PoolOptions())
            self._read_engine = self._write_engine
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)
        self._queries = SqlEntityQueries(self._read_engine)

    def create_schema(self) -> None:
        """PostgreSQL: apply the Alembic migrations (what `cairn db upgrade` does; safe when
        several processes start at once). SQLite: bring the file up to tables.py
        (`schema.upgrade_embedded`: its files have no migration history).
        """
        had_search = inspect(self._write_engine).has_table(SearchRow.__tablename__)
        if self._dialect == "postgresql":
            schema.upgrade(self._write_engine)
        else:
            schema.upgrade_embedded(self._write_engine)
        if not had_search:
            self._rebuild_search()

    def _rebuild_search(self) -> None:
        """Fill the search table of a store created before it existed (once, at start)."""
        last = ""
        while True:
            with self._write.begin() as session:
                rows = session.scalars(
                    select(EntityRow)
                    .where(EntityRow.ref_key > last, EntityRow.deleted.is_(False))
                    .order_by(EntityRow.ref_key)
                    .limit(1000)
                ).all()
                if not rows:
                    return
                keys = [row.ref_key for row in rows]
                session.execute(delete(SearchRow).where(SearchRow.ref_key.in_(keys)))
                entries = [v for row in rows for v in _search_rows(row.ref_key, row.body)]
                if entries:
                    session.execute(insert(SearchRow), entries)
                if self._dialect == "postgresql":
                    session.execute(delete(TextRow).where(TextRow.ref_key.in_(keys)))
                    insert_rows(session, TextRow, _text_rows(entries))
                last = rows[-1].ref_key

    def close(self) -> None:
        self._write_engine.dispose()
        self._read_engine.dispose()

    def _insert(self, table: Any) -> Any:
        return (sqlite.insert if self._dialect == "sqlite" else postgresql.insert)(table)

    # --- the entity projection -------------------------------------------------------

    def apply_entity_changes(self, changes: Sequence[VersionedChange]) -> int:
        newest: dict[str, VersionedChange] = {}
        for change in changes:
            key = ref_key(change.ref)
            if key not in newest or newest[key].version < change.version:
                newest[key] = change
        if not newest:
            return 0
        with self._write.begin() as session:
            held = dict(
                session.execute(
                    select(EntityRow.ref_key, EntityRow.version).where(
                        EntityRow.ref_key.in_(list(newest))
                    )
                ).all()
            )
            chosen = {
                key: change
                for key, change in newest.items()
                if key not in held or held[key] < change.version
            }
            if not chosen:
                return 0
            # The entity rows first: the version check is inside the upsert, so a concurrent
            # writer of the same ref waits on its row and only a newer version replaces it,
            # whatever order the two commit in. Relations and search rows are then rewritten
            # only for the refs this statement wrote (their rows stay locked until commit).
            # Sorted, so two batches lock rows in the same order and cannot deadlock.
            entities = [_entity_values(key, chosen[key]) for key in sorted(chosen)]
            if self._dialect == "postgresql":
                returned = upsert_rows(
                    session, EntityRow, entities, "ref_key", "entities.version < EXCLUDED.version"
                )
                written = sorted(key for key, _inserted in returned)
                # A ref whose row this statement inserted had no rows anywhere before (they
                # are written only after its entity row, which we now hold). `held` cannot
                # tell: a concurrent writer may have inserted the ref since it was read.
                replaced = [key for key, inserted in sorted(returned) if not inserted]
            else:
                upsert = self._insert(EntityRow)
                upsert = upsert.on_conflict_do_update(
                    index_elements=[EntityRow.ref_key],
                    set_={
                        column.name: upsert.excluded[column.name]
                        for column in EntityRow.__table__.columns
                        if column.name != "ref_key"
                    },
                    where=EntityRow.version < upsert.excluded.version,
                ).returning(EntityRow.ref_key)
                written = sorted(session.scalars(upsert, entities))
                # SQLite has one writer at a time, and this transaction began as it: `held`
                # is exact.
                replaced = [key for key in written if key in held]
            if not written:
                return 0
            # Only a ref that had rows has rows to remove: an import of new entities deletes
            # nothing (before the first ANALYZE, PostgreSQL plans these deletes as scans of
            # the whole table, so each batch of a fresh catalog's import cost more than the
            # last).
            if replaced:
                session.execute(delete(RelationRow).where(RelationRow.origin_key.in_(replaced)))
                session.execute(delete(SearchRow).where(SearchRow.ref_key.in_(replaced)))
            relations = [row for key in written for row in _relation_values(key, chosen[key])]
            search = [row for key in written for row in _search_values(key, chosen[key])]
            if self._dialect == "postgresql":
                if replaced:
                    session.execute(delete(TextRow).where(TextRow.ref_key.in_(replaced)))
                insert_rows(session, RelationRow, relations, "ON CONFLICT DO NOTHING")
                insert_rows(session, SearchRow, search)
                insert_rows(session, TextRow, _text_rows(search))
            else:
                if relations:
                    session.execute(self._insert(RelationRow).on_conflict_do_nothing(), relations)
                if search:
                    session.execute(insert(SearchRow), search)
        return len(written)

    # --- reads ----------------------------------------------------------------------

    def get_entity(self, ref: str) -> StoredEntity | None:
        return self._one(_BY_REF_KEY, ref_key(ref))

    def get_entity_by_uid(self, uid: str) -> StoredEntity | None:
        return self._one(_BY_UID, uid)

    def _one(self, statement: Any, value: str) -> StoredEntity | None:
        with self._read_engine.connect() as connection:
            row = connection.execute(statement, {"value": value}).first()
            return to_entities(connection, [row])[0] if row is not None else None

    # --- the catalog API's queries (services/store/catalog_queries.py) ---------------

    def list_entities(self, request: EntityListRequest) -> EntityList:
        return self._queries.list_entities(request)

    def stream_entities(self, request: EntityListRequest) -> Iterator[EntityDocument]:
        return self._queries.stream_entities(request)

    def query_entities(self, request: EntityPageRequest) -> EntityPage:
        return self._queries.query_entities(request)

    def get_entities(
        self, refs: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, EntityDocument]:
        return self._queries.entities_by_keys([ref_key(ref) for ref in refs], entity_filter)

    def entity_facets(
        self, facets: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, list[FacetCount]]:
        return self._queries.facets(facets, entity_filter)

    def iter_entities(self, batch_size: int = 1000) -> Iterator[StoredEntity]:
        last = ""
        while True:
            with self._read_engine.connect() as connection:
                rows = connection.execute(
                    live_entities()
                    .where(EntityRow.ref_key > last)
                    .order_by(EntityRow.ref_key)
                    .limit(batch_size)
                ).all()
                if not rows:
                    return
                batch = to_entities(connection, rows)
            yield from batch
            last = rows[-1].ref_key

    def count_entities(self) -> int:
        with self._read() as session:
            return int(
                session.scalar(
                    select(func.count()).select_from(EntityRow).where(EntityRow.deleted.is_(False))
                )
                or 0
            )

    def list_locations(self) -> list[LocationRecord]:
        with self._read() as session:
            rows = session.scalars(select(LocationRow).order_by(LocationRow.target)).all()
            return self._to_locations(session, list(rows))

    def get_location(self, location_id: str) -> LocationRecord | None:
        with self._read() as session:
            row = session.get(LocationRow, location_id)
            return self._to_locations(session, [row])[0] if row is not None else None

    def _to_locations(self, session: Session, rows: list[LocationRow]) -> list[LocationRecord]:
        owned: dict[str, list[str]] = {}
        ids = [row.id for row in rows]
        for location, ref in session.execute(
            select(OwnerRow.location_id, OwnerRow.ref).where(OwnerRow.location_id.in_(ids))
        ):
            owned.setdefault(location, []).append(ref)
        return [
            LocationRecord(
                id=row.id,
                repository_key=row.repository_key,
                path=row.path,
                target=row.target,
                type=row.type,
                status=row.status,
                commit=row.commit,
                errors=[ErrorRecord.model_validate(e) for e in row.errors or []],
                entity_refs=sorted(owned.get(row.id, [])),
                processed_at=row.processed_at,
            )
            for row in rows
        ]

    def get_repository(self, key: str) -> RepositoryState | None:
        with self._read() as session:
            row = session.get(RepositoryRow, key)
            return _to_repository(row) if row is not None else None

    def list_repositories(self) -> list[RepositoryState]:
        with self._read() as session:
            rows = session.scalars(select(RepositoryRow).order_by(RepositoryRow.key)).all()
            return [_to_repository(row) for row in rows]

    def repositories_in_conflict_over(self, refs: list[str]) -> list[RepositoryState]:
        wanted = {ref_key(ref) for ref in refs}
        if not wanted:
            return []
        keys: set[str] = set()
        with self._read() as session:
            # Only locations that recorded errors can hold a conflict; they are few.
            for location in session.scalars(select(LocationRow)):
                for error in location.errors or []:
                    ref = error.get("entity_ref")
                    if ref and ref_key(ref) in wanted and error.get("code") == "conflict":
                        keys.add(location.repository_key)
            rows = session.scalars(select(RepositoryRow).where(RepositoryRow.key.in_(keys)))
            return [_to_repository(row) for row in rows]

    # --- descriptor-processor state -------------------------------------------------

    def reconcile_repository(
        self,
        repository: Repository,
        status: str,
        commit: str | None,
        desired: list[DesiredLocation],
        keep: set[str],
        emit: Callable[[OwnershipPlan], None],
        previous_key: str | None = None,
    ) -> OwnershipPlan:
        emitted = False

        def emit_once(plan: OwnershipPlan) -> None:
            nonlocal emitted
            emitted = True
            emit(plan)

        for attempt in range(1, _RECONCILE_ATTEMPTS + 1):
            try:
                return self._reconcile_once(
                    repository, status, commit, desired, keep, emit_once, previous_key
                )
            except DBAPIError as exc:
                # Another reconcile claimed one of these refs (or locations) first, or
                # PostgreSQL broke a deadlock: redo the work, which now sees the winner's
                # claim and records a conflict. Nothing was published by the failed attempt:
                # its writes are flushed before `emit` is called.
                race = getattr(exc.orig, "sqlstate", None) in _RACES
                if emitted or not race or attempt == _RECONCILE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _reconcile_once(
        self,
        repository: Repository,
        status: str,
        commit: str | None,
        desired: list[DesiredLocation],
        keep: set[str],
        emit: Callable[[OwnershipPlan], None],
        previous_key: str | None,
    ) -> OwnershipPlan:
        keys = [repository.key] + ([previous_key] if previous_key else [])
        with self._write.begin() as session:
            # Rows are locked in key order (here and below) so concurrent reconciles that
            # touch the same owners queue up instead of deadlocking.
            existing = session.scalars(
                select(LocationRow)
                .where(LocationRow.repository_key.in_(keys))
                .order_by(LocationRow.id)
                .with_for_update()
            ).all()
            location_ids = {row.id for row in existing} | {d.id for d in desired}
            wanted_keys = [ref_key(ref) for d in desired for ref in d.entity_etags]
            owner_rows = session.scalars(
                select(OwnerRow)
                .where(
                    or_(OwnerRow.location_id.in_(location_ids), OwnerRow.ref_key.in_(wanted_keys))
                )
                .order_by(OwnerRow.ref_key)
                .with_for_update()
            ).all()
            current = {
                row.ref_key: Owner(ref=row.ref, location_id=row.location_id, etag=row.etag)
                for row in owner_rows
            }
            plan = plan_ownership(location_ids, desired, current, keep)
            if plan.released:
                session.execute(delete(OwnerRow).where(OwnerRow.ref_key.in_(plan.released)))
            held = {row.ref_key: row for row in owner_rows}
            for key, owner in sorted(plan.owners.items()):
                claimed = held.get(key)
                if claimed is None:
                    # A new claim is an INSERT, never a merge: a claim another reconcile
                    # committed meanwhile must fail on the primary key, not be overwritten.
                    session.add(
                        OwnerRow(
                            ref_key=key,
                            ref=owner.ref,
                            location_id=owner.location_id,
                            etag=owner.etag,
                        )
                    )
                else:
                    claimed.ref, claimed.location_id = owner.ref, owner.location_id
                    claimed.etag = owner.etag
            desired_ids = {d.id for d in desired}
            for row in existing:
                if row.id not in desired_ids:
                    session.delete(row)
            processed_at = _now()
            for location in desired:
                errors = location.errors + plan.conflicts.get(location.id, [])
                session.merge(
                    LocationRow(
                        id=location.id,
                        repository_key=repository.key,
                        path=location.path,
                        target=location.target,
                        type="url",
                        status=status,
                        commit=commit,
                        errors=[e.model_dump(mode="json") for e in errors],
                        processed_at=processed_at,
                    )
                )
            if previous_key and previous_key != repository.key:
                session.execute(delete(RepositoryRow).where(RepositoryRow.key == previous_key))
            if status == "deleted":
                session.execute(delete(RepositoryRow).where(RepositoryRow.key == repository.key))
            else:
                session.merge(
                    RepositoryRow(
                        key=repository.key,
                        clone_url=repository.clone_url,
                        html_url=repository.html_url,
                        default_branch=repository.default_branch,
                        provider=repository.provider,
                        status=status,
                        commit=commit,
                        processed_at=processed_at,
                    )
                )
            # Written before publishing: a claim that loses a race fails here, unpublished.
            session.flush()
            emit(plan)
        return plan


def _entity_values(key: str, change: VersionedChange) -> dict[str, Any]:
    value = change.change
    if value is None:  # the tombstone row keeps the version that deleted the entity
        return {
            "ref_key": key,
            "ref": change.ref,
            "kind": "",
            "namespace": "",
            "name": "",
            "uid": "",
            "etag": "",
            "body": {},
            "errors": [],
            "location_id": "",
            "location_target": "",
            "version": change.version,
            "deleted": True,
            "updated_at": _now(),
        }
    metadata = value.entity.get("metadata", {})
    return {
        "ref_key": key,
        "ref": value.ref,
        "kind": str(value.entity.get("kind", "")),
        "namespace": str(metadata.get("namespace", "default")),
        "name": str(metadata.get("name", "")),
        "uid": str(metadata.get("uid", "")),
        "etag": str(metadata.get("etag", "")),
        "body": value.entity,
        "errors": [e.model_dump(mode="json") for e in value.errors],
        "location_id": value.location_id,
        "location_target": value.location_target,
        "version": change.version,
        "deleted": False,
        "updated_at": value.changed_at,
    }


def _relation_values(key: str, change: VersionedChange) -> list[dict[str, Any]]:
    if change.change is None:
        return []
    edges = {
        (ref_key(r.source_ref), r.type, ref_key(r.target_ref)): r for r in change.change.relations
    }
    return [
        {
            "origin_key": key,
            "source_key": source_key,
            "type": relation_type,
            "target_key": target_key,
            "source_ref": record.source_ref,
            "target_ref": record.target_ref,
        }
        for (source_key, relation_type, target_key), record in edges.items()
    ]


def _search_values(key: str, change: VersionedChange) -> list[dict[str, Any]]:
    return _search_rows(key, change.change.entity) if change.change is not None else []


def _search_rows(key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "ref_key": key,
            "key": entry.key,
            "value": entry.value,
            "original_value": entry.original_value,
        }
        for entry in build_search_entries(body)
    ]


def _text_rows(search: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `entity_text`: the search rows of TEXT_KEYS that have a value, once each."""
    rows = {
        (row["ref_key"], row["key"], row["value"])
        for row in search
        if row["key"] in TEXT_KEYS and row["value"] is not None
    }
    return [{"ref_key": k, "key": key, "value": value} for k, key, value in sorted(rows)]


def _to_repository(row: RepositoryRow) -> RepositoryState:
    return RepositoryState(
        key=row.key,
        clone_url=row.clone_url,
        html_url=row.html_url,
        default_branch=row.default_branch,
        provider=row.provider,
        status=row.status,
        commit=row.commit,
        processed_at=row.processed_at,
    )
