"""The catalog store's tables (SQLAlchemy 2). Rows never leave services/store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Dialect, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    pass


# JSONB on PostgreSQL: comparable (json has no equality operator) and indexable; it does not
# keep the key order of a document, which JSON objects never promised anyway.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def byte_ordered(length: int | None = None) -> String:
    """A string (Text without a length) compared and sorted byte by byte on PostgreSQL too
    (collation "C"), whatever the database's locale, so orderings and keyset pages agree
    with SQLite's."""
    if length is None:
        return Text().with_variant(Text(collation="C"), "postgresql")
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored in UTC and read back timezone-aware in UTC on every dialect.

    SQLite keeps no offset and PostgreSQL answers in the session's time zone; both are
    normalised here so the adapters return the same values. A naive value is taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EntityRow(Base):
    """The entity projection. A deleted entity stays as a tombstone row so that a late,
    older change cannot bring it back (its version is compared, like any other)."""

    __tablename__ = "entities"

    ref_key: Mapped[str] = mapped_column(byte_ordered(512), primary_key=True)
    ref: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    namespace: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(256))
    uid: Mapped[str] = mapped_column(byte_ordered(64), index=True)
    etag: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument, default=list)
    location_id: Mapped[str] = mapped_column(String(64), index=True)
    location_target: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RelationRow(Base):
    """A relation edge, remembered with the entity whose change produced it (origin)."""

    __tablename__ = "relations"

    origin_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    source_ref: Mapped[str] = mapped_column(String(512))
    target_ref: Mapped[str] = mapped_column(String(512))

    __table_args__ = (
        Index("relations_by_source", "source_key"),
        Index("relations_by_target", "target_key"),
    )


class LocationRow(Base):
    """Descriptor-processor state: one catalog file of one repository."""

    __tablename__ = "locations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    repository_key: Mapped[str] = mapped_column(String(512), index=True)
    path: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(byte_ordered())
    type: Mapped[str] = mapped_column(String(32), default="url")
    status: Mapped[str] = mapped_column(String(16), default="active")
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument, default=list)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OwnerRow(Base):
    """Which location owns an entity ref; the primary key makes two claims a conflict."""

    __tablename__ = "owners"

    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    ref: Mapped[str] = mapped_column(String(512))
    location_id: Mapped[str] = mapped_column(String(64), index=True)
    etag: Mapped[str] = mapped_column(String(64))


class RepositoryRow(Base):
    """Descriptor-processor state per repository: the last commit read and its status."""

    __tablename__ = "repositories"

    key: Mapped[str] = mapped_column(byte_ordered(512), primary_key=True)
    clone_url: Mapped[str] = mapped_column(Text)
    html_url: Mapped[str] = mapped_column(Text)
    default_branch: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str] = mapped_column(String(16), default="github")
    status: Mapped[str] = mapped_column(String(16), default="active")
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


# Byte-order comparison on PostgreSQL too, so ordering and cursors agree with SQLite.
_SEARCH_TEXT = Text().with_variant(Text(collation="C"), "postgresql")


class SearchRow(Base):
    """Backstage's `search` table: an entity flattened into lower-cased `key -> value` rows.

    Written with the entity in the same transaction; filters, ordering, full-text filters
    and facets of the Backstage-compatible catalog API read it. `value` is lower-cased
    (null when the value is null or longer than 200 characters), `original_value` keeps
    the case for facets. Relations are not repeated here: they are read from `relations`.
    """

    __tablename__ = "entity_search"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    ref_key: Mapped[str] = mapped_column(String(512))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[str | None] = mapped_column(_SEARCH_TEXT, nullable=True)
    original_value: Mapped[str | None] = mapped_column(_SEARCH_TEXT, nullable=True)

    __table_args__ = (
        Index("entity_search_by_key_value", "key", "value", "ref_key"),
        Index("entity_search_by_ref", "ref_key", "key", "value"),
        # Facets: counted from the index alone, filtered by ref key without a table read.
        Index("entity_search_facets", "key", "original_value", "ref_key"),
    )


class TextRow(Base):
    """The search rows of the fields full-text filters usually name (`TEXT_KEYS`), copied
    into a narrow table written with them.

    Backstage's full-text filter is `value LIKE '%term%'`, which no b-tree can answer: on
    the search table it visits the row of every entity. Here a trigram index (pg_trgm)
    finds the matches, and the rows it leads to fill a few pages. PostgreSQL only: SQLite
    has no such index (FTS5's trigram tables measured no faster for common terms) and scans
    the search index as fast as these rows, so the table stays empty there. A row repeated
    within one entity (the same key and value twice) is kept once.
    """

    __tablename__ = "entity_text"

    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(_SEARCH_TEXT, primary_key=True)

    __table_args__ = (
        Index(
            "entity_text_trigrams",
            "value",
            postgresql_using="gin",
            postgresql_ops={"value": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class DeliveryRow(Base):
    """Delivery ids the receivers accepted, so a redelivered webhook is published once.

    Written by the distributed event log's delivery ledger (services/bus/delivery_ledger.py)
    only after the broker acknowledged the record; `topic`/`partition`/`offset` say where.
    """

    __tablename__ = "deliveries"

    delivery_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    topic: Mapped[str] = mapped_column(String(256))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# --- CI/CD: the deployment processor's records (services/store/deployments_store.py) ----------


class CiDeploymentRow(Base):
    """A deployment: the whole record in `body`, the columns its filters and orders read.

    `current_at` is when the deployment made its version the environment's current one (its
    success) or removed it (a `removed` deployment); null while it is neither.
    """

    __tablename__ = "ci_deployments"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    environment_key: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(512), nullable=True)
    sort_at: Mapped[datetime] = mapped_column(UtcDateTime())
    current_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    repository_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ci_deployments_by_time", "sort_at", "id"),
        Index("ci_deployments_by_environment", "environment_key", "sort_at"),
    )


class CiPipelineRunRow(Base):
    """A pipeline (workflow) run: the record in `body`, filter and order columns beside it."""

    __tablename__ = "ci_pipeline_runs"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str | None] = mapped_column(String(512), nullable=True)
    sort_at: Mapped[datetime] = mapped_column(UtcDateTime())
    repository_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ci_pipeline_runs_by_time", "sort_at", "id"),)


class CiIncidentRow(Base):
    """An incident (CDEvents incident.detected/reported/resolved)."""

    __tablename__ = "ci_incidents"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    sort_at: Mapped[datetime] = mapped_column(UtcDateTime())
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CiMergedChangeRow(Base):
    """A change merged into a repository (CDEvents change.merged)."""

    __tablename__ = "ci_merged_changes"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    sort_at: Mapped[datetime] = mapped_column(UtcDateTime())
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CiLinkRow(Base):
    """A CI/CD record attached to an entity (`record_type`: deployment, pipeline_run, ...)."""

    __tablename__ = "ci_links"

    record_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    ref: Mapped[str] = mapped_column(String(512))

    __table_args__ = (Index("ci_links_by_entity", "ref_key", "record_type"),)


class CiRecordKeyRow(Base):
    """A key a CI/CD record can be matched by (services/model/ci_events.py, match keys)."""

    __tablename__ = "ci_record_keys"

    record_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    key: Mapped[str] = mapped_column(String(700), primary_key=True)

    __table_args__ = (Index("ci_record_keys_by_key", "key"),)


class CiEntityRow(Base):
    """An entity as the deployment processor last saw it on `cairn.entity.changes`."""

    __tablename__ = "ci_entities"

    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    ref: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(64))
    repository_key: Mapped[str | None] = mapped_column(String(512), nullable=True, index=True)
    owner: Mapped[str | None] = mapped_column(String(512), nullable=True, index=True)
    system: Mapped[str | None] = mapped_column(String(512), nullable=True, index=True)


class CiEntityKeyRow(Base):
    """A key an entity is found by (its ref, CI/CD annotations, its repository)."""

    __tablename__ = "ci_entity_keys"

    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    key: Mapped[str] = mapped_column(String(700), primary_key=True)

    __table_args__ = (Index("ci_entity_keys_by_key", "key"),)


class CiCommitRow(Base):
    """A commit seen in a push, with its time: lead time from commit to deployment."""

    __tablename__ = "ci_commits"

    repository_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    committed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CiEnvironmentStateRow(Base):
    """What an entity runs in one environment (`body` is an EnvironmentState)."""

    __tablename__ = "ci_environment_states"

    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    environment_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
