"""The catalog store's first schema: entities, relations, search rows, locations, owners,
repositories and the receivers' delivery ledger.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Types are spelled out here rather than imported from tables.py: a migration describes the
schema as it was when it was written, whatever tables.py says later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SEARCH_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def byte_ordered(length: int | None = None) -> sa.String:
    """Collation "C" on PostgreSQL: sorted byte by byte, as SQLite does."""
    if length is None:
        return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("ref_key", byte_ordered(512), nullable=False),
        sa.Column("ref", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("uid", byte_ordered(64), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.Column("errors", JSON_DOCUMENT, nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("location_target", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("ref_key"),
    )
    op.create_index("ix_entities_kind", "entities", ["kind"])
    op.create_index("ix_entities_uid", "entities", ["uid"])
    op.create_index("ix_entities_location_id", "entities", ["location_id"])

    op.create_table(
        "relations",
        sa.Column("origin_key", sa.String(512), nullable=False),
        sa.Column("source_key", sa.String(512), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("target_key", sa.String(512), nullable=False),
        sa.Column("source_ref", sa.String(512), nullable=False),
        sa.Column("target_ref", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("origin_key", "source_key", "type", "target_key"),
    )
    op.create_index("relations_by_source", "relations", ["source_key"])
    op.create_index("relations_by_target", "relations", ["target_key"])

    op.create_table(
        "locations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("repository_key", sa.String(512), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("target", byte_ordered(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("errors", JSON_DOCUMENT, nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_locations_repository_key", "locations", ["repository_key"])

    op.create_table(
        "owners",
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("ref", sa.String(512), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("ref_key"),
    )
    op.create_index("ix_owners_location_id", "owners", ["location_id"])

    op.create_table(
        "repositories",
        sa.Column("key", byte_ordered(512), nullable=False),
        sa.Column("clone_url", sa.Text(), nullable=False),
        sa.Column("html_url", sa.Text(), nullable=False),
        sa.Column("default_branch", sa.String(256), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("processed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )

    op.create_table(
        "entity_search",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", SEARCH_TEXT, nullable=True),
        sa.Column("original_value", SEARCH_TEXT, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("entity_search_by_key_value", "entity_search", ["key", "value", "ref_key"])
    op.create_index("entity_search_by_ref", "entity_search", ["ref_key", "key", "value"])

    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(256), nullable=False),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_index("ix_deliveries_recorded_at", "deliveries", ["recorded_at"])


def downgrade() -> None:
    for table in (
        "deliveries",
        "entity_search",
        "repositories",
        "owners",
        "locations",
        "relations",
        "entities",
    ):
        op.drop_table(table)
