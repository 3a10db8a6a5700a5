"""Full-text filters of the catalog API on a narrow table with a trigram index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

`entity_text` holds the search rows of `metadata.name`, `metadata.title` and
`spec.profile.displayname` (the fields Backstage's catalog table searches), filled here from
`entity_search` and written with it from now on, on PostgreSQL (it stays empty on SQLite).
A GIN index with pg_trgm's `gin_trgm_ops` answers `value LIKE '%term%'` without visiting
every entity's row. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension since
PostgreSQL 13: the owner of the database may create it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TEXT_KEYS = ("metadata.name", "metadata.title", "spec.profile.displayname")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    text_type = sa.Text(collation="C") if postgres else sa.Text()
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "entity_text",
        sa.Column("ref_key", sa.String(512), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", text_type, nullable=False),
        sa.PrimaryKeyConstraint("ref_key", "key", "value"),
    )
    if not postgres:  # the table stays empty on SQLite (see tables.TextRow)
        return
    keys = ", ".join(f"'{key}'" for key in TEXT_KEYS)
    op.execute(
        "INSERT INTO entity_text (ref_key, key, value) "
        "SELECT DISTINCT ref_key, key, value FROM entity_search "
        f"WHERE key IN ({keys}) AND value IS NOT NULL"
    )
    op.create_index(
        "entity_text_trigrams",
        "entity_text",
        ["value"],
        postgresql_using="gin",
        postgresql_ops={"value": "gin_trgm_ops"},
    )
    op.execute("ANALYZE entity_text")


def downgrade() -> None:
    op.drop_table("entity_text")
