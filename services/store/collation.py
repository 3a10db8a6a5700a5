"""Ref keys compared across tables whose key columns have different collations."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from services.store.tables import EntityRow


class _SearchCollation(FunctionElement[str]):
    """A ref key compared in the collation of the search and relations tables' keys.

    On PostgreSQL `entities.ref_key` is byte-ordered (collation "C") and those keys are not:
    an equality between the two has no collation, so PostgreSQL cannot look the key up in
    their indexes and hashes every match instead (a page of a broad filter then reads the
    whole catalog). Elsewhere, the plain column.
    """

    name = "search_collation"
    type = String()
    inherit_cache = True


@compiles(_SearchCollation)
def _plain_key(element: _SearchCollation, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_SearchCollation, "postgresql")
def _default_collation_key(element: _SearchCollation, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "default")'


ENTITY_KEY: Any = _SearchCollation(EntityRow.ref_key)
