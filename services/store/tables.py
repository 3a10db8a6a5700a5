"""The catalog store's tables (SQLAlchemy 2). Rows never leave services/store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EntityRow(Base):
    """The entity projection. A deleted entity stays as a tombstone row so that a late,
    older change cannot bring it back (its version is compared, like any other)."""

    __tablename__ = "entities"

    ref_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    ref: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    namespace: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(256))
    uid: Mapped[str] = mapped_column(String(64), index=True)
    etag: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    location_id: Mapped[str] = mapped_column(String(64), index=True)
    location_target: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RelationRow(Base):
    """A relation edge, remembered with the entity whose change produced it (origin)."""

    __tablename__ = "relations"

    origin_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    source_ref: Mapped[str] = mapped_column(String(512))
    target_ref: Mapped[str] = mapped_column(String(512))

    __table_args__ = (Index("relations_by_source", "source_key"),)


class LocationRow(Base):
    """Descriptor-processor state: one catalog file of one repository."""

    __tablename__ = "locations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    repository_key: Mapped[str] = mapped_column(String(512), index=True)
    path: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32), default="url")
    status: Mapped[str] = mapped_column(String(16), default="active")
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


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

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    clone_url: Mapped[str] = mapped_column(Text)
    html_url: Mapped[str] = mapped_column(Text)
    default_branch: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="active")
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
