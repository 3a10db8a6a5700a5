"""CI/CD records: deployments, pipeline runs, incidents, merged changes, their links to
entities and match keys, the deployment processor's entity keys, commits seen in pushes,
and each entity's state per environment (services/store/deployments_store.py).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-15

Types are spelled out here rather than imported from tables.py: a migration describes the
schema as it was when it was written, whatever tables.py says later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _record_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(512), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "ci_deployments",
        *_record_columns(),
        sa.Column("environment_key", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version", sa.String(512), nullable=True),
        sa.Column("sort_at", TIMESTAMP, nullable=False),
        sa.Column("current_at", TIMESTAMP, nullable=True),
        sa.Column("repository_key", sa.String(512), nullable=True),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ci_deployments_by_time", "ci_deployments", ["sort_at", "id"])
    op.create_index(
        "ci_deployments_by_environment", "ci_deployments", ["environment_key", "sort_at"]
    )

    op.create_table(
        "ci_pipeline_runs",
        *_record_columns(),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("branch", sa.String(512), nullable=True),
        sa.Column("sort_at", TIMESTAMP, nullable=False),
        sa.Column("repository_key", sa.String(512), nullable=True),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ci_pipeline_runs_by_time", "ci_pipeline_runs", ["sort_at", "id"])

    op.create_table(
        "ci_incidents",
        *_record_columns(),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("sort_at", TIMESTAMP, nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "ci_merged_changes",
        *_record_columns(),
        sa.Column("sort_at", TIMESTAMP, nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "ci_links",
        sa.Column("record_type", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(512), nullable=False),
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("ref", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("record_type", "record_id", "ref_key"),
    )
    op.create_index("ci_links_by_entity", "ci_links", ["ref_key", "record_type"])

    op.create_table(
        "ci_record_keys",
        sa.Column("record_type", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(512), nullable=False),
        sa.Column("key", sa.String(700), nullable=False),
        sa.PrimaryKeyConstraint("record_type", "record_id", "key"),
    )
    op.create_index("ci_record_keys_by_key", "ci_record_keys", ["key"])

    op.create_table(
        "ci_entities",
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("ref", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("repository_key", sa.String(512), nullable=True),
        sa.Column("owner", sa.String(512), nullable=True),
        sa.Column("system", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint("ref_key"),
    )
    op.create_index("ix_ci_entities_repository_key", "ci_entities", ["repository_key"])
    op.create_index("ix_ci_entities_owner", "ci_entities", ["owner"])
    op.create_index("ix_ci_entities_system", "ci_entities", ["system"])

    op.create_table(
        "ci_entity_keys",
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("key", sa.String(700), nullable=False),
        sa.PrimaryKeyConstraint("ref_key", "key"),
    )
    op.create_index("ci_entity_keys_by_key", "ci_entity_keys", ["key"])

    op.create_table(
        "ci_commits",
        sa.Column("repository_key", sa.String(512), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("committed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository_key", "sha"),
    )

    op.create_table(
        "ci_environment_states",
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("environment_key", sa.String(256), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("ref_key", "environment_key"),
    )


def downgrade() -> None:
    for table in (
        "ci_environment_states",
        "ci_commits",
        "ci_entity_keys",
        "ci_entities",
        "ci_record_keys",
        "ci_links",
        "ci_merged_changes",
        "ci_incidents",
        "ci_pipeline_runs",
        "ci_deployments",
    ):
        op.drop_table(table)
