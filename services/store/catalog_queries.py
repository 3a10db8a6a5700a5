"""The catalog API's queries on the SQL store: filters, ordering, keyset pages, facets.

SQLAlchemy core only, no dialect-specific SQL, so SQLite and PostgreSQL answer alike (the
search table's text columns compare bytewise on both). Filters become `ref_key IN (SELECT
... FROM entity_search ...)` subqueries, as Backstage builds them on its `search` table;
`relations.<type>` keys are answered from the relations table. Rows never leave this
module: callers get StoredEntity values through the store's loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from services.model.catalog import StoredEntity, ref_key
from services.store.catalog_query import (
    AllOf,
    EntityFilter,
    EntityList,
    EntityListRequest,
    EntityPage,
    EntityPageRequest,
    FacetCount,
    FieldMatch,
    Not,
    SortValues,
)
from services.store.tables import EntityRow, RelationRow, SearchRow

RELATIONS_PREFIX = "relations."
LOAD_BATCH = 500

Loader = Callable[[Session, Sequence[EntityRow]], list[StoredEntity]]

# SQLite's planner (no statistics) drives a filtered page from the filter's IN list and sorts
# every match, even when thousands match and the uid index could be walked in order. When
# a filter matches at least this many entities, and a twentieth of the catalog, SQLite is
# told not to drive from it (PostgreSQL plans with statistics and is left alone).
BROAD_MATCHES = 2000


class _Unindexed(FunctionElement[Any]):
    """A column SQLite must not use an index for (`+column`); the plain column elsewhere."""

    name = "unindexed"
    inherit_cache = True


@compiles(_Unindexed)
def _plain_column(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_Unindexed, "sqlite")
def _unindexed_column(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _match_subquery(match: FieldMatch) -> Select[Any]:
    if match.key.startswith(RELATIONS_PREFIX):
        relation_type = match.key[len(RELATIONS_PREFIX) :]
        stmt = select(RelationRow.source_key).where(func.lower(RelationRow.type) == relation_type)
        target = RelationRow.target_key
        if match.values is not None:
            stmt = stmt.where(target.in_(match.values))
        if match.prefix is not None:
            stmt = stmt.where(target.like(_like_prefix(match.prefix), escape="\\"))
        return stmt.correlate(None)
    search = aliased(SearchRow)
    stmt = select(search.ref_key).where(search.key == match.key)
    if match.values is not None:
        if len(match.values) == 1:
            stmt = stmt.where(search.value == match.values[0])
        else:
            stmt = stmt.where(search.value.in_(match.values))
    if match.prefix is not None:
        stmt = stmt.where(search.value.like(_like_prefix(match.prefix), escape="\\"))
    return stmt.correlate(None)


def filter_condition(
    node: EntityFilter, ref_key_column: Any, *, drive: bool = True
) -> ColumnElement[bool]:
    """The filter as a condition on a column holding entity ref keys.

    With `drive` False, SQLite is told not to start the query from the filter's matches.
    """
    if isinstance(node, FieldMatch):
        column = ref_key_column if drive else _Unindexed(ref_key_column)
        return column.in_(_match_subquery(node))
    if isinstance(node, Not):
        return not_(filter_condition(node.item, ref_key_column, drive=drive))
    if isinstance(node, AllOf):
        if not node.items:
            return true()
        return and_(*(filter_condition(i, ref_key_column, drive=drive) for i in node.items))
    if not node.items:
        return false()
    return or_(*(filter_condition(i, ref_key_column, drive=drive) for i in node.items))


def _after(
    columns: list[tuple[Any, Any, bool]],
) -> ColumnElement[bool]:
    """Rows strictly after a position, for columns of (expression, value, ascending).

    A None value is the null block of a nullable column: equal means IS NULL, and nothing
    in the block sorts before or after another by that column.
    """
    disjuncts: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for expression, value, ascending in columns:
        if value is not None:
            beyond = expression > value if ascending else expression < value
            disjuncts.append(and_(*equal, beyond))
            equal.append(expression == value)
        else:
            equal.append(expression.is_(None))
    return or_(*disjuncts) if disjuncts else false()


class SqlEntityQueries:
    def __init__(self, read: sessionmaker[Session], load: Loader) -> None:
        self._read = read
        self._load = load

    # --- loading entities in a given order --------------------------------------------

    def _load_keys(self, session: Session, keys: Sequence[str]) -> list[StoredEntity]:
        found: dict[str, StoredEntity] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), LOAD_BATCH):
            batch = unique[start : start + LOAD_BATCH]
            rows = session.scalars(
                select(EntityRow).where(EntityRow.ref_key.in_(batch), EntityRow.deleted.is_(False))
            ).all()
            for row, entity in zip(rows, self._load(session, rows), strict=True):
                found[row.ref_key] = entity
        return [found[key] for key in keys if key in found]

    # --- GET /entities -------------------------------------------------------------------

    def _list_keys(self, session: Session, request: EntityListRequest) -> list[str]:
        stmt = select(EntityRow.ref_key).where(EntityRow.deleted.is_(False))
        if request.filter is not None:
            stmt = stmt.where(filter_condition(request.filter, EntityRow.ref_key))
        for index, order in enumerate(request.order):
            sort = (
                select(SearchRow.ref_key, func.min(SearchRow.value).label("value"))
                .where(SearchRow.key == order.field)
                .group_by(SearchRow.ref_key)
                .subquery(f"order_{index}")
            )
            stmt = stmt.outerjoin(sort, sort.c.ref_key == EntityRow.ref_key)
            value = sort.c.value
            stmt = stmt.order_by(
                value.is_(None), value.asc() if order.order == "asc" else value.desc()
            )
        if request.order or not request.by_ref:
            stmt = stmt.order_by(EntityRow.uid)
        else:
            stmt = stmt.order_by(EntityRow.ref_key)
        if request.offset:
            stmt = stmt.offset(request.offset)
        if request.limit is not None:
            stmt = stmt.limit(request.limit + 1)
        return list(session.scalars(stmt).all())

    def list_entities(self, request: EntityListRequest) -> EntityList:
        with self._read() as session:
            keys = self._list_keys(session, request)
            has_more = request.limit is not None and len(keys) > request.limit
            if has_more:
                keys = keys[: request.limit]
            return EntityList(entities=self._load_keys(session, keys), has_more=has_more)

    def stream_entities(self, request: EntityListRequest) -> Iterator[StoredEntity]:
        """Every match in order: the order is read at once, the entities batch by batch."""
        with self._read() as session:
            keys = self._list_keys(session, request)
        for start in range(0, len(keys), LOAD_BATCH):
            with self._read() as session:
                batch = self._load_keys(session, keys[start : start + LOAD_BATCH])
            yield from batch

    # --- queryEntities -------------------------------------------------------------------

    def query_entities(self, request: EntityPageRequest) -> EntityPage:
        with self._read() as session:
            sqlite = session.get_bind().dialect.name == "sqlite"
            total: int | None = None
            if request.count:
                total = int(
                    session.scalar(
                        select(func.count()).select_from(self._page_base(request).subquery())
                    )
                    or 0
                )
            known = total if total is not None else request.known_total
            broad = (
                sqlite
                and request.order is None
                and request.filter is not None
                and known is not None
                and known >= BROAD_MATCHES
                and known * 20 >= self._entity_count(session)
            )
            paged, sorted_by_value = self._page(request, drive=not broad)
            rows = list(session.execute(paged).all()) if request.limit > 0 else []
            if request.backwards:
                rows.reverse()
            has_more = request.limit > 0 and (request.backwards or len(rows) > request.limit)
            rows = rows[: request.limit]
            entities = self._load_keys(session, [row[0] for row in rows])
        # Rows deleted between the two reads are dropped, and their positions with them.
        loaded = {ref_key(entity.ref) for entity in entities}
        positions: list[SortValues] = [
            (row[2] if sorted_by_value else None, row[1]) for row in rows if row[0] in loaded
        ]
        return EntityPage(entities=entities, positions=positions, total=total, has_more=has_more)

    def _entity_count(self, session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(EntityRow)) or 0)

    def _page_base(self, request: EntityPageRequest, drive: bool = True) -> Select[Any]:
        """The matching rows: (ref key, uid[, sort value]), unordered and unpaged."""
        sort = request.order
        text = request.full_text
        search = aliased(SearchRow, name="sort_value")
        columns: list[Any] = [EntityRow.ref_key, EntityRow.uid]
        if sort is not None:
            columns.append(search.value)
        stmt = select(*columns)
        text_on_sort = sort is not None and text is not None and text.fields == (sort.field,)
        if sort is None:
            stmt = stmt.select_from(EntityRow)
        elif text_on_sort:
            # The full-text filter rejects entities without the value: start from the
            # matching search rows and join their entities.
            stmt = (
                stmt.select_from(search)
                .join(EntityRow, EntityRow.ref_key == search.ref_key)
                .where(search.key == sort.field)
            )
        else:
            stmt = stmt.select_from(EntityRow).outerjoin(
                search, and_(search.ref_key == EntityRow.ref_key, search.key == sort.field)
            )
        stmt = stmt.where(EntityRow.deleted.is_(False))
        if request.filter is not None:
            stmt = stmt.where(filter_condition(request.filter, EntityRow.ref_key, drive=drive))
        if text is not None:
            pattern = f"%{text.term}%"
            if text_on_sort:
                stmt = stmt.where(search.value.like(pattern))
            else:
                words = aliased(SearchRow)
                stmt = stmt.where(
                    EntityRow.ref_key.in_(
                        select(words.ref_key)
                        .where(words.key.in_(text.fields), words.value.like(pattern))
                        .correlate(None)
                    )
                )
        return stmt

    def _page(self, request: EntityPageRequest, drive: bool) -> tuple[Select[Any], bool]:
        stmt = self._page_base(request, drive)
        sort = request.order
        value: Any = stmt.selected_columns[2] if sort is not None else None
        ascending = (sort is None or sort.order == "asc") != request.backwards
        null_flag = case((value.is_(None), 1), else_=0) if value is not None else None
        if request.after is not None:
            after_value, after_uid = request.after
            keyset: list[tuple[Any, Any, bool]] = []
            if value is not None:
                # Nulls sort last in the forward direction, whichever the order.
                keyset.append((null_flag, 1 if after_value is None else 0, not request.backwards))
                keyset.append((value, after_value, ascending))
            keyset.append((EntityRow.uid, after_uid, ascending))
            stmt = stmt.where(_after(keyset))
        if null_flag is not None:
            stmt = stmt.order_by(null_flag.asc() if not request.backwards else null_flag.desc())
            stmt = stmt.order_by(value.asc() if ascending else value.desc())
        stmt = stmt.order_by(EntityRow.uid.asc() if ascending else EntityRow.uid.desc())
        if request.after is None and request.offset:
            stmt = stmt.offset(request.offset)
        stmt = stmt.limit(request.limit if request.backwards else request.limit + 1)
        return stmt, value is not None

    # --- by refs and facets ----------------------------------------------------------------

    def entities_by_keys(
        self, keys: Sequence[str], entity_filter: EntityFilter | None
    ) -> dict[str, StoredEntity]:
        found: dict[str, StoredEntity] = {}
        unique = list(dict.fromkeys(keys))
        with self._read() as session:
            for start in range(0, len(unique), LOAD_BATCH):
                stmt = select(EntityRow).where(
                    EntityRow.ref_key.in_(unique[start : start + LOAD_BATCH]),
                    EntityRow.deleted.is_(False),
                )
                if entity_filter is not None:
                    stmt = stmt.where(filter_condition(entity_filter, EntityRow.ref_key))
                rows = session.scalars(stmt).all()
                for row, entity in zip(rows, self._load(session, rows), strict=True):
                    found[row.ref_key] = entity
        return found

    def facets(
        self, facets: Sequence[str], entity_filter: EntityFilter | None
    ) -> dict[str, list[FacetCount]]:
        """Per facet key (lower-cased), each value with the number of entities holding it."""
        keys = list(dict.fromkeys(facets))
        counted: dict[str, list[FacetCount]] = {key: [] for key in keys}
        plain = [key for key in keys if not key.startswith(RELATIONS_PREFIX)]
        with self._read() as session:
            if plain:
                plain_stmt = (
                    select(SearchRow.key, SearchRow.original_value, func.count())
                    .where(SearchRow.key.in_(plain), SearchRow.original_value.is_not(None))
                    .group_by(SearchRow.key, SearchRow.original_value)
                )
                if entity_filter is not None:
                    plain_stmt = plain_stmt.where(
                        filter_condition(entity_filter, SearchRow.ref_key)
                    )
                for key, original, count in session.execute(plain_stmt):
                    counted[key].append(FacetCount(value=str(original), count=int(count)))
            for key in keys:
                if not key.startswith(RELATIONS_PREFIX):
                    continue
                members = select(EntityRow.ref_key).where(EntityRow.deleted.is_(False))
                if entity_filter is not None:
                    members = members.where(filter_condition(entity_filter, EntityRow.ref_key))
                stmt = (
                    select(RelationRow.target_key, func.count(RelationRow.source_key.distinct()))
                    .where(
                        func.lower(RelationRow.type) == key[len(RELATIONS_PREFIX) :],
                        RelationRow.source_key.in_(members.correlate(None)),
                    )
                    .group_by(RelationRow.target_key)
                )
                for target, count in session.execute(stmt):
                    counted[key].append(FacetCount(value=str(target), count=int(count)))
        for values in counted.values():
            values.sort(key=lambda facet: (-facet.count, facet.value))
        return counted
