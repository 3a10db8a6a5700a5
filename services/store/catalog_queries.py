"""The catalog API's queries on the SQL store: filters, ordering, keyset pages, facets.

SQLAlchemy core only, on plain connections, so SQLite and PostgreSQL answer alike (the
search table's text columns compare bytewise on both; the only dialect-specific SQL is a
collation that lets PostgreSQL use its indexes, see collation.py). Filters become
`ref_key IN (SELECT ... FROM entity_search ...)` subqueries, as Backstage builds them on its
`search` table; `relations.<type>` keys are answered from the relations table. Totals are
counted on search rows where they can be (see _count_on_search_rows). Rows never leave
this module: callers get EntityDocument values from entity_rows.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)

from services.model.catalog import EntityDocument
from services.store.catalog_query import (
    AllOf,
    AnyOf,
    EntityFilter,
    EntityList,
    EntityListRequest,
    EntityPage,
    EntityPageRequest,
    FacetCount,
    FieldMatch,
    FullTextFilter,
    Not,
    SortValues,
)
from services.store.collation import ENTITY_KEY
from services.store.entity_rows import LOAD_BATCH, document_columns, load_documents, to_document
from services.store.entity_search import ALWAYS_VALUED_KEYS, SINGLE_ROW_KEYS, TEXT_KEYS
from services.store.tables import EntityRow, RelationRow, SearchRow, TextRow

RELATIONS_PREFIX = "relations."
# The search table as a Core table: its aliases are several times cheaper to build than the
# ORM's aliased(), and every page builds a few.
_SEARCH = SearchRow.__table__
_TEXT = TextRow.__table__

# SQLite's planner (no statistics) drives a filtered page from the filter's IN list and sorts
# every match, even when thousands match and the uid index could be walked in order. When
# a filter matches at least this many entities, and a twentieth of the catalog, SQLite is
# told to walk the uid index instead, testing each entity with a correlated EXISTS
# (PostgreSQL plans with statistics and is left alone).
BROAD_MATCHES = 2000


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _match_rows(match: FieldMatch) -> tuple[Select[Any], Any]:
    """The rows holding the match, and their column of entity ref keys."""
    if match.key.startswith(RELATIONS_PREFIX):
        relation_type = match.key[len(RELATIONS_PREFIX) :]
        stmt = select(RelationRow.source_key).where(func.lower(RelationRow.type) == relation_type)
        target = RelationRow.target_key
        if match.values is not None:
            stmt = stmt.where(target.in_(match.values))
        if match.prefix is not None:
            stmt = stmt.where(target.like(_like_prefix(match.prefix), escape="\\"))
        return stmt, RelationRow.source_key
    search = _SEARCH.alias()
    return _search_match(select(search.c.ref_key), search, match), search.c.ref_key


def _search_match(stmt: Select[Any], search: Any, match: FieldMatch) -> Select[Any]:
    stmt = stmt.where(search.c.key == match.key)
    if match.values is not None:
        if len(match.values) == 1:
            stmt = stmt.where(search.c.value == match.values[0])
        else:
            stmt = stmt.where(search.c.value.in_(match.values))
    if match.prefix is not None:
        stmt = stmt.where(search.c.value.like(_like_prefix(match.prefix), escape="\\"))
    return stmt


def filter_condition(
    node: EntityFilter, ref_key_column: Any, *, drive: bool = True
) -> ColumnElement[bool]:
    """The filter as a condition on a column holding entity ref keys.

    With `drive` False each match is a correlated EXISTS, which SQLite tests row by row
    instead of first collecting every match (the IN form it may start the query from).
    """
    if isinstance(node, FieldMatch):
        rows, keys = _match_rows(node)
        if ref_key_column is EntityRow.ref_key:
            ref_key_column = ENTITY_KEY
        if drive:
            matched: ColumnElement[bool] = ref_key_column.in_(rows.correlate(None))
            return matched
        return exists(rows.where(keys == ref_key_column))
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


def _count_on_search_rows(request: EntityPageRequest, dialect: str) -> Select[Any] | None:
    """The page's total counted on search rows alone, without reading an entity row.

    Search rows exist only for live entities, so when every match must hold one kind of
    search row (the full-text filter's, or a field match at the filter's top level), the
    total is the number of such rows (or of their distinct entities) that pass the rest of
    the request. None when there is no such match, or when a sort key that an entity may
    have several rows of would count that entity more than once (as the page lists it).
    """
    sort, text = request.order, request.full_text
    items = _conjuncts(request.filter) if request.filter is not None else []
    on_sort = _text_on_sort(request)
    table: Any
    if text is not None and (on_sort or _driving_match(items) is None):
        # Every match holds one of the full-text filter's rows (on the sort field, the
        # page's rows are these rows, one per match: see _page_base).
        if not on_sort and sort is not None and sort.field not in SINGLE_ROW_KEYS:
            return None
        once = on_sort or (len(text.fields) == 1 and text.fields[0] in SINGLE_ROW_KEYS)
        table = _text_table(text, dialect).alias("counted")
        stmt = select().where(_text_matches(table.c, text))
        text = None
    else:
        driver = _driving_match(items)
        if driver is None or (sort is not None and sort.field not in SINGLE_ROW_KEYS):
            return None
        items.remove(driver)
        once = driver.key in SINGLE_ROW_KEYS
        table = _SEARCH.alias("counted")
        stmt = _search_match(select(), table, driver)
    rows = table.c
    stmt = stmt.add_columns(func.count() if once else func.count(rows.ref_key.distinct()))
    if items:
        stmt = stmt.where(filter_condition(AllOf(tuple(items)), rows.ref_key))
    if text is not None:
        stmt = stmt.where(rows.ref_key.in_(_full_text_rows(text, dialect)))
    return stmt.select_from(table)


def _driving_match(items: list[EntityFilter]) -> FieldMatch | None:
    """A top-level field match whose search rows can drive a count, if there is one."""
    return next(
        (
            item
            for item in items
            if isinstance(item, FieldMatch) and not item.key.startswith(RELATIONS_PREFIX)
        ),
        None,
    )


def _conjuncts(node: EntityFilter) -> list[EntityFilter]:
    """The filters that must all hold, unwrapping nested AllOf and one-item AnyOf."""
    if isinstance(node, AllOf):
        return [item for child in node.items for item in _conjuncts(child)]
    if isinstance(node, AnyOf) and len(node.items) == 1:
        return _conjuncts(node.items[0])
    return [node]


def _text_on_sort(request: EntityPageRequest) -> bool:
    """Whether the full-text filter is on the sort field alone (so every match has a value)."""
    sort, text = request.order, request.full_text
    return sort is not None and text is not None and text.fields == (sort.field,)


def _walks_sort_rows(request: EntityPageRequest) -> bool:
    """Whether every entity the page may list has a value of the sort field, so the page can
    walk the sort field's search rows in order (the index on key and value) from the first:
    the field is one every entity has, or the full-text filter matches on it alone."""
    sort = request.order
    return sort is not None and (sort.field in ALWAYS_VALUED_KEYS or _text_on_sort(request))


def _ordering(request: EntityPageRequest, value: Any, uid: Any) -> list[Any]:
    """A page's ORDER BY: (nulls last, sort value,) uid, each in the page's direction."""
    ascending = (request.order is None or request.order.order == "asc") != request.backwards
    order: list[Any] = []
    if value is not None:
        # No null value to sort last when the page walks the sort rows; without the flag,
        # the search index's (key, value) order serves the page directly.
        if not _walks_sort_rows(request):
            null_flag = case((value.is_(None), 1), else_=0)
            order.append(null_flag.asc() if not request.backwards else null_flag.desc())
        order.append(value.asc() if ascending else value.desc())
    order.append(uid.asc() if ascending else uid.desc())
    return order


def _text_table(text: FullTextFilter, dialect: str) -> Any:
    """Where a full-text filter's rows are read: on PostgreSQL the narrow `entity_text` when
    it holds every field the filter names (a trigram index finds the matches), else the
    search table (SQLite's scan of its index is as fast as of the narrow rows)."""
    if dialect == "postgresql" and set(text.fields) <= TEXT_KEYS:
        return _TEXT
    return _SEARCH


def _text_matches(rows: Any, text: FullTextFilter) -> ColumnElement[bool]:
    """Backstage's full-text match on search rows: a field's value contains the term."""
    return and_(rows.key.in_(text.fields), rows.value.like(f"%{text.term}%"))


def _full_text_rows(text: FullTextFilter, dialect: str) -> Select[Any]:
    words = _text_table(text, dialect).alias().c
    return select(words.ref_key).where(_text_matches(words, text)).correlate(None)


# The threads that count pages' totals (a few: a count waits on the database, and every
# request thread of the API may start one). Threads start on the first count.
_COUNTS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cairn-count")


class SqlEntityQueries:
    """Reads on plain connections (no ORM session). A page's total is counted by another
    thread on a second connection; the page's thread waits for it only after releasing its
    own, so a full pool can delay a count but not deadlock it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- loading entities in a given order --------------------------------------------

    def _load_keys(self, connection: Connection, keys: Sequence[str]) -> list[EntityDocument]:
        found = load_documents(connection, keys)
        return [found[key] for key in keys if key in found]

    # --- GET /entities -------------------------------------------------------------------

    def _list_keys(self, connection: Connection, request: EntityListRequest) -> list[str]:
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
            stmt = stmt.outerjoin(sort, sort.c.ref_key == ENTITY_KEY)
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
        return list(connection.scalars(stmt).all())

    def list_entities(self, request: EntityListRequest) -> EntityList:
        with self._engine.connect() as connection:
            keys = self._list_keys(connection, request)
            has_more = request.limit is not None and len(keys) > request.limit
            if has_more:
                keys = keys[: request.limit]
            return EntityList(entities=self._load_keys(connection, keys), has_more=has_more)

    def stream_entities(self, request: EntityListRequest) -> Iterator[EntityDocument]:
        """Every match in order: the order is read at once, the entities batch by batch."""
        with self._engine.connect() as connection:
            keys = self._list_keys(connection, request)
        for start in range(0, len(keys), LOAD_BATCH):
            with self._engine.connect() as connection:
                batch = self._load_keys(connection, keys[start : start + LOAD_BATCH])
            yield from batch

    # --- queryEntities -------------------------------------------------------------------

    def query_entities(self, request: EntityPageRequest) -> EntityPage:
        """One page and, when asked, the total: the total is counted on a connection of its
        own while the page is read, as Backstage does (a count can cost more than the page:
        it visits every match). Only SQLite's choice of plan for a filter without order
        needs the total first (see BROAD_MATCHES)."""
        sqlite = self._engine.dialect.name == "sqlite"
        plan_by_total = sqlite and request.order is None and request.filter is not None
        counting: Future[int] | None = None
        if request.count and not plan_by_total:
            counting = _COUNTS.submit(self._count_alone, request)
        try:
            with self._engine.connect() as connection:
                total = None
                if request.count and counting is None:
                    total = self._count(connection, request)
                known = total if total is not None else request.known_total
                broad = (
                    plan_by_total
                    and known is not None
                    and known >= BROAD_MATCHES
                    and known * 20 >= self._sqlite_entity_rows(connection)
                )
                paged, sorted_by_value = self._page(request, drive=not broad)
                stmt = self._with_documents(paged, request)
                rows = list(connection.execute(stmt).all()) if request.limit > 0 else []
        finally:
            if counting is not None:
                total = counting.result()
        if request.backwards:
            rows.reverse()
        has_more = request.limit > 0 and (request.backwards or len(rows) > request.limit)
        rows = rows[: request.limit]
        positions: list[SortValues] = [
            (row[2] if sorted_by_value else None, row[1]) for row in rows
        ]
        entities = [to_document(row) for row in rows]
        return EntityPage(entities=entities, positions=positions, total=total, has_more=has_more)

    def _count_alone(self, request: EntityPageRequest) -> int:
        with self._engine.connect() as connection:
            return self._count(connection, request)

    def _sqlite_entity_rows(self, connection: Connection) -> int:
        """About how many entity rows there are, tombstones included: rows are never deleted,
        so the highest rowid is their count, read from the b-tree's last page."""
        return int(
            connection.scalar(select(func.max(literal_column("rowid"))).select_from(EntityRow)) or 0
        )

    def _count(self, connection: Connection, request: EntityPageRequest) -> int:
        stmt = _count_on_search_rows(request, self._engine.dialect.name)
        if stmt is None:
            stmt = select(func.count()).select_from(self._page_base(request).subquery())
        return int(connection.scalar(stmt) or 0)

    def _page_base(self, request: EntityPageRequest, drive: bool = True) -> Select[Any]:
        """The matching rows: (ref key, uid[, sort value]), unordered and unpaged."""
        sort = request.order
        text = request.full_text
        table = _SEARCH.alias("sort_value")
        search = table.c
        columns: list[Any] = [EntityRow.ref_key, EntityRow.uid]
        if sort is not None:
            columns.append(search.value)
        stmt = select(*columns)
        text_on_sort = _text_on_sort(request)
        if sort is None:
            stmt = stmt.select_from(EntityRow)
        elif _walks_sort_rows(request):
            # Every listed entity has one row of the field: start from those search rows
            # (in the index's order, when the planner walks it) and join their entities.
            stmt = (
                stmt.select_from(table)
                .join(EntityRow, EntityRow.ref_key == search.ref_key)
                .where(search.key == sort.field)
            )
        else:
            stmt = stmt.select_from(EntityRow).outerjoin(
                table, and_(search.ref_key == ENTITY_KEY, search.key == sort.field)
            )
        stmt = stmt.where(EntityRow.deleted.is_(False))
        if request.filter is not None:
            stmt = stmt.where(filter_condition(request.filter, EntityRow.ref_key, drive=drive))
        if text is not None:
            if text_on_sort:
                stmt = stmt.where(_text_matches(search, text))
            else:
                stmt = stmt.where(ENTITY_KEY.in_(_full_text_rows(text, self._engine.dialect.name)))
        return stmt

    def _page(self, request: EntityPageRequest, drive: bool) -> tuple[Select[Any], bool]:
        """The page's rows (ref key, uid[, sort value]) in order: one more than the limit."""
        stmt = self._page_base(request, drive)
        sort = request.order
        value: Any = stmt.selected_columns[2] if sort is not None else None
        ascending = (sort is None or sort.order == "asc") != request.backwards
        if request.after is not None:
            after_value, after_uid = request.after
            keyset: list[tuple[Any, Any, bool]] = []
            if value is not None:
                if not _walks_sort_rows(request):
                    # Nulls sort last in the forward direction, whichever the order.
                    null_flag = case((value.is_(None), 1), else_=0)
                    forward = not request.backwards
                    keyset.append((null_flag, 1 if after_value is None else 0, forward))
                keyset.append((value, after_value, ascending))
            keyset.append((EntityRow.uid, after_uid, ascending))
            stmt = stmt.where(_after(keyset))
        stmt = stmt.order_by(*_ordering(request, value, EntityRow.uid))
        if request.after is None and request.offset:
            stmt = stmt.offset(request.offset)
        stmt = stmt.limit(request.limit if request.backwards else request.limit + 1)
        return stmt, value is not None

    def _with_documents(self, paged: Select[Any], request: EntityPageRequest) -> Select[Any]:
        """The page's rows, in the same order, each followed by its document's columns (one
        statement for the page and its documents)."""
        page = paged.subquery("page")
        value = page.c.value if request.order is not None else None
        return (
            select(*page.c, *document_columns(self._engine.dialect.name))
            .select_from(page.join(EntityRow, EntityRow.ref_key == page.c.ref_key))
            .order_by(*_ordering(request, value, page.c.uid))
        )

    # --- by refs and facets ----------------------------------------------------------------

    def entities_by_keys(
        self, keys: Sequence[str], entity_filter: EntityFilter | None
    ) -> dict[str, EntityDocument]:
        condition = None
        if entity_filter is not None:
            condition = filter_condition(entity_filter, EntityRow.ref_key)
        with self._engine.connect() as connection:
            return load_documents(connection, keys, condition)

    def facets(
        self, facets: Sequence[str], entity_filter: EntityFilter | None
    ) -> dict[str, list[FacetCount]]:
        """Per facet key (lower-cased), each value with the number of entities holding it."""
        keys = list(dict.fromkeys(facets))
        counted: dict[str, list[FacetCount]] = {key: [] for key in keys}
        plain = [key for key in keys if not key.startswith(RELATIONS_PREFIX)]
        with self._engine.connect() as connection:
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
                for key, original, count in connection.execute(plain_stmt):
                    counted[key].append(FacetCount(value=str(original), count=int(count)))
            for key in keys:
                if not key.startswith(RELATIONS_PREFIX):
                    continue
                members = select(ENTITY_KEY).where(EntityRow.deleted.is_(False))
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
                for target, count in connection.execute(stmt):
                    counted[key].append(FacetCount(value=str(target), count=int(count)))
        for values in counted.values():
            values.sort(key=lambda facet: (-facet.count, facet.value))
        return counted
