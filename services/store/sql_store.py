"""The catalog store on SQLAlchemy 2: SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, insert, inspect, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from services.model.catalog import (
    DesiredLocation,
    LocationRecord,
    Owner,
    OwnershipPlan,
    StoredEntity,
    plan_ownership,
    ref_key,
)
from services.model.events import ErrorRecord, RelationRecord, Repository
from services.store.catalog_queries import SqlEntityQueries
from services.store.catalog_query import (
    EntityFilter,
    EntityList,
    EntityListRequest,
    EntityPage,
    EntityPageRequest,
    FacetCount,
)
from services.store.entity_search import build_search_entries
from services.store.port import RepositoryState, VersionedChange
from services.store.tables import (
    Base,
    EntityRow,
    LocationRow,
    OwnerRow,
    RelationRow,
    RepositoryRow,
    SearchRow,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _make_engine(url: str, *, immediate: bool) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
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
    def __init__(self, url: str) -> None:
        self.url = url
        self._dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._write_engine = _make_engine(url, immediate=True)
        self._read_engine = (
            _make_engine(url, immediate=False) if self._dialect == "sqlite" else self._write_engine
        )
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)
        self._queries = SqlEntityQueries(self._read, self._load_entities)

    def create_schema(self) -> None:
        had_search = inspect(self._write_engine).has_table(SearchRow.__tablename__)
        Base.metadata.create_all(self._write_engine)
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
            keys = list(chosen)
            session.execute(delete(RelationRow).where(RelationRow.origin_key.in_(keys)))
            session.execute(delete(SearchRow).where(SearchRow.ref_key.in_(keys)))
            upsert = self._insert(EntityRow)
            upsert = upsert.on_conflict_do_update(
                index_elements=[EntityRow.ref_key],
                set_={
                    column.name: upsert.excluded[column.name]
                    for column in EntityRow.__table__.columns
                    if column.name != "ref_key"
                },
                # Guards concurrent writers too: only a newer version replaces a row.
                where=EntityRow.version < upsert.excluded.version,
            )
            session.execute(upsert, [_entity_values(key, c) for key, c in chosen.items()])
            relations = [row for key, c in chosen.items() for row in _relation_values(key, c)]
            if relations:
                session.execute(self._insert(RelationRow).on_conflict_do_nothing(), relations)
            search = [row for key, c in chosen.items() for row in _search_values(key, c)]
            if search:
                session.execute(insert(SearchRow), search)
        return len(chosen)

    # --- reads ----------------------------------------------------------------------

    def get_entity(self, ref: str) -> StoredEntity | None:
        return self._one(EntityRow.ref_key == ref_key(ref))

    def get_entity_by_uid(self, uid: str) -> StoredEntity | None:
        return self._one(EntityRow.uid == uid)

    def _one(self, condition: Any) -> StoredEntity | None:
        with self._read() as session:
            row = session.scalars(
                select(EntityRow).where(condition, EntityRow.deleted.is_(False))
            ).first()
            if row is None:
                return None
            relations = self._relations(session, [row.ref_key])
            return _to_entity(row, relations.get(row.ref_key, []))

    def _relations(self, session: Session, keys: list[str]) -> dict[str, list[RelationRecord]]:
        found: dict[str, dict[tuple[str, str], RelationRecord]] = {}
        rows = session.execute(
            select(
                RelationRow.source_key,
                RelationRow.type,
                RelationRow.target_key,
                RelationRow.source_ref,
                RelationRow.target_ref,
            ).where(RelationRow.source_key.in_(keys))
        )
        for source_key, relation_type, target_key, source_ref, target_ref in rows:
            found.setdefault(source_key, {})[(relation_type, target_key)] = RelationRecord(
                source_ref=source_ref, type=relation_type, target_ref=target_ref
            )
        return {
            key: sorted(edges.values(), key=lambda r: (r.type, r.target_ref))
            for key, edges in found.items()
        }

    def _load_entities(self, session: Session, rows: Sequence[EntityRow]) -> list[StoredEntity]:
        relations = self._relations(session, [row.ref_key for row in rows])
        return [_to_entity(row, relations.get(row.ref_key, [])) for row in rows]

    # --- the catalog API's queries (services/store/catalog_queries.py) ---------------

    def list_entities(self, request: EntityListRequest) -> EntityList:
        return self._queries.list_entities(request)

    def stream_entities(self, request: EntityListRequest) -> Iterator[StoredEntity]:
        return self._queries.stream_entities(request)

    def query_entities(self, request: EntityPageRequest) -> EntityPage:
        return self._queries.query_entities(request)

    def get_entities(
        self, refs: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, StoredEntity]:
        return self._queries.entities_by_keys([ref_key(ref) for ref in refs], entity_filter)

    def entity_facets(
        self, facets: Sequence[str], entity_filter: EntityFilter | None = None
    ) -> dict[str, list[FacetCount]]:
        return self._queries.facets(facets, entity_filter)

    def iter_entities(self, batch_size: int = 1000) -> Iterator[StoredEntity]:
        last = ""
        while True:
            with self._read() as session:
                rows = session.scalars(
                    select(EntityRow)
                    .where(EntityRow.ref_key > last, EntityRow.deleted.is_(False))
                    .order_by(EntityRow.ref_key)
                    .limit(batch_size)
                ).all()
                if not rows:
                    return
                relations = self._relations(session, [row.ref_key for row in rows])
                batch = [_to_entity(row, relations.get(row.ref_key, [])) for row in rows]
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
        keys = [repository.key] + ([previous_key] if previous_key else [])
        with self._write.begin() as session:
            existing = session.scalars(
                select(LocationRow).where(LocationRow.repository_key.in_(keys)).with_for_update()
            ).all()
            location_ids = {row.id for row in existing} | {d.id for d in desired}
            wanted_keys = [ref_key(ref) for d in desired for ref in d.entity_etags]
            owner_rows = session.scalars(
                select(OwnerRow)
                .where(
                    or_(OwnerRow.location_id.in_(location_ids), OwnerRow.ref_key.in_(wanted_keys))
                )
                .with_for_update()
            ).all()
            current = {
                row.ref_key: Owner(ref=row.ref, location_id=row.location_id, etag=row.etag)
                for row in owner_rows
            }
            plan = plan_ownership(location_ids, desired, current, keep)
            if plan.released:
                session.execute(delete(OwnerRow).where(OwnerRow.ref_key.in_(plan.released)))
            for key, owner in plan.owners.items():
                session.merge(
                    OwnerRow(
                        ref_key=key, ref=owner.ref, location_id=owner.location_id, etag=owner.etag
                    )
                )
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
                        status=status,
                        commit=commit,
                        processed_at=processed_at,
                    )
                )
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


def _to_repository(row: RepositoryRow) -> RepositoryState:
    return RepositoryState(
        key=row.key,
        clone_url=row.clone_url,
        html_url=row.html_url,
        default_branch=row.default_branch,
        status=row.status,
        commit=row.commit,
        processed_at=row.processed_at,
    )


def _to_entity(row: EntityRow, relations: list[RelationRecord]) -> StoredEntity:
    return StoredEntity(
        ref=row.ref,
        kind=row.kind,
        namespace=row.namespace,
        name=row.name,
        uid=row.uid,
        etag=row.etag,
        body=row.body,
        location_id=row.location_id,
        location_target=row.location_target,
        version=row.version,
        updated_at=row.updated_at,
        errors=[ErrorRecord.model_validate(e) for e in row.errors or []],
        relations=relations,
    )
