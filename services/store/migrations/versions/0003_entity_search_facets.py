"""The Backstage-compatible catalog API's reads on the search table, planned well.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

- Index `entity_search_facets (key, original_value, ref_key)`: `entity-facets` groups one
  key's rows by their original value, and filters them by ref key, from the index alone.
- Statistics on `(key, value)` together: a value's frequency depends on its key (`component`
  is common under `kind` only), which per-column statistics cannot tell. Without them the
  planner takes a broad filter such as `kind=component` for a rare one and hashes every
  match instead of walking the page's order.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("entity_search_facets", "entity_search", ["key", "original_value", "ref_key"])
    if op.get_bind().dialect.name != "postgresql":  # SQLite keeps no such statistics
        return
    op.execute(
        "CREATE STATISTICS IF NOT EXISTS entity_search_key_value (mcv, dependencies) "
        "ON key, value FROM entity_search"
    )
    op.execute("ANALYZE entity_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS entity_search_key_value")
    op.drop_index("entity_search_facets", table_name="entity_search")
