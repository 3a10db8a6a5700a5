"""Backstage's catalog request parameters, parsed as its catalog backend parses them.

Each function matches a parser of Backstage's `plugins/catalog-backend/src/service/request/`
(filter strings, fields, order, pagination, orderField, facets, the predicate `query` body,
cursors), raising InputError with Backstage's messages. The result is a store request
(services/store/catalog_query.py). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_api.backstage_errors import InputError
from services.store.catalog_query import (
    AllOf,
    AnyOf,
    EntityFilter,
    EntityPageRequest,
    FieldMatch,
    FullTextFilter,
    Not,
    OrderField,
)
from services.store.entity_search import js_string

DEFAULT_QUERY_LIMIT = 200
Params = Mapping[str, list[str]]
Transform = Callable[[dict[str, Any]], dict[str, Any]]


def _strings(params: Params, name: str) -> list[str] | None:
    values = params.get(name)
    return list(values) if values else None


def _integer(params: Params, name: str) -> int | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InputError(f"Invalid {name}, not an integer on string form")
    raw = values[0]
    if not re.fullmatch(r"-?\d+", raw) or str(int(raw)) != raw:
        raise InputError(f"Invalid {name}, not an integer")
    return int(raw)


def _string(params: Params, name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InputError(f"Invalid {name}, not a string")
    return values[0]


# --- filter=... ---------------------------------------------------------------------------


def parse_filter_string(text: str) -> AllOf | None:
    """One filter set, e.g. `kind=component,spec.type`: conditions that must all hold."""
    statements = [s.strip() for s in text.split(",") if s.strip()]
    if not statements:
        return None
    by_key: dict[str, list[str] | None] = {}
    for statement in statements:
        equals = statement.find("=")
        key = statement if equals == -1 else statement[:equals].strip()
        if not key:
            raise InputError(
                f"Invalid filter, '{statement}' is not a valid statement "
                "(expected a string on the form a=b or a= or a)"
            )
        if equals == -1:
            by_key.setdefault(key, None)
        else:
            values = by_key.get(key) or []
            values.append(statement[equals + 1 :].strip())
            by_key[key] = values
    return AllOf(
        tuple(
            FieldMatch(
                key.lower(), tuple(v.lower() for v in values) if values is not None else None
            )
            for key, values in by_key.items()
        )
    )


def parse_filter_strings(texts: Sequence[str] | None) -> EntityFilter | None:
    """Every `filter` value: the sets are ORed. None when nothing is filtered."""
    sets = [s for s in (parse_filter_string(t) for t in texts or []) if s is not None]
    if not sets:
        return None
    return AnyOf(tuple(sets))


def parse_filter_params(params: Params) -> EntityFilter | None:
    return parse_filter_strings(_strings(params, "filter"))


# --- the predicate `query` ----------------------------------------------------------------

_PRIMITIVES = (str, int, float, bool)


class _Invalid(ValueError):
    pass


def _is_primitive(value: object) -> bool:
    return isinstance(value, _PRIMITIVES)


def _check_predicate(value: object, path: str) -> None:
    """Backstage's filter predicate schema (@backstage/filter-predicates)."""
    if _is_primitive(value):
        return
    if not isinstance(value, dict):
        raise _Invalid(f"{path or 'query'} must be an object or a string, number or boolean")
    operators = [k for k in value if k.startswith("$")]
    if operators:
        if len(value) != 1 or operators[0] not in ("$all", "$any", "$not"):
            raise _Invalid(
                f"{path or 'query'}: $all, $any and $not must stand alone, and a field "
                f"name may not start with $ (got {', '.join(sorted(value))})"
            )
        operator = operators[0]
        inner = value[operator]
        if operator == "$not":
            _check_predicate(inner, f"{path}.$not".lstrip("."))
            return
        if not isinstance(inner, list):
            raise _Invalid(f"{path}.{operator}".lstrip(".") + " must be an array")
        for index, item in enumerate(inner):
            _check_predicate(item, f"{path}.{operator}[{index}]".lstrip("."))
        return
    for key, matcher in value.items():
        where = f"{path}.{key}".lstrip(".") if path else key
        if key == "" or key.startswith(("\n", "\r")):
            raise _Invalid(f"the field name {key!r} is not valid")
        _check_value_predicate(matcher, where)


def _check_value_predicate(value: object, path: str) -> None:
    if _is_primitive(value):
        return
    if not isinstance(value, dict):
        raise _Invalid(f"{path} must be a string, number, boolean or a value operator")
    if "$exists" in value and isinstance(value["$exists"], bool):
        return
    if "$in" in value and isinstance(value["$in"], list):
        if all(_is_primitive(v) for v in value["$in"]):
            return
        raise _Invalid(f"{path}.$in must be an array of strings, numbers or booleans")
    if "$contains" in value:
        _check_predicate(value["$contains"], f"{path}.$contains")
        return
    if "$hasPrefix" in value and isinstance(value["$hasPrefix"], str):
        return
    raise _Invalid(
        f"{path} must be a string, number, boolean, or one of {{$exists: boolean}}, "
        "{$in: [...]}, {$contains: predicate}, {$hasPrefix: string}"
    )


def _lower(value: object) -> str:
    return js_string(value).lower()


def predicate_to_filter(predicate: object) -> EntityFilter:
    """A valid predicate as a store filter, refusing what the SQL store cannot answer."""
    if not isinstance(predicate, dict):
        raise InputError(
            "Invalid filter predicate: top-level primitive values are not supported. "
            f'Wrap the value in a field expression, e.g. {{ "kind": {json.dumps(predicate)} }}'
        )
    if "$not" in predicate:
        return Not(predicate_to_filter(predicate["$not"]))
    if "$all" in predicate:
        items = predicate["$all"]
        if not items:
            return AnyOf(())  # Backstage: an empty $all matches nothing
        return AllOf(tuple(predicate_to_filter(item) for item in items))
    if "$any" in predicate:
        return AnyOf(tuple(predicate_to_filter(item) for item in predicate["$any"]))
    conditions: list[EntityFilter] = []
    for raw_key, value in predicate.items():
        key = raw_key.lower()
        if _is_primitive(value):
            conditions.append(FieldMatch(key, (_lower(value),)))
            continue
        if isinstance(value, dict):
            if "$exists" in value:
                match = FieldMatch(key)
                conditions.append(match if value["$exists"] else Not(match))
                continue
            if "$in" in value:
                conditions.append(FieldMatch(key, tuple(_lower(v) for v in value["$in"])))
                continue
            if "$hasPrefix" in value:
                conditions.append(FieldMatch(key, prefix=str(value["$hasPrefix"]).lower()))
                continue
        raise InputError(
            f'Invalid filter predicate value for field "{key}": expected a primitive value, '
            f"$exists, $in, or $hasPrefix operator, but got {json.dumps(value)}"
        )
    return AllOf(tuple(conditions))


def parse_predicate(value: object) -> EntityFilter:
    """The `query` of a POST body: validated, then translated."""
    try:
        _check_predicate(value, "")
    except _Invalid as exc:
        raise InputError(f"Invalid query: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError("Query must be an object")
    return predicate_to_filter(value)


def combine(*filters: EntityFilter | None) -> EntityFilter | None:
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else AllOf(present)


# --- fields=... ---------------------------------------------------------------------------


def parse_fields(values: Sequence[str] | None) -> Transform | None:
    """`fields`: comma-separated dotted paths; each kept subtree, the rest pruned."""
    fields = [f.strip() for v in values or [] for f in v.split(",") if f.strip()]
    if not fields:
        return None
    if any("[" in f for f in fields):
        raise InputError("invalid fields, array type fields are not supported")
    paths = [f.split(".") for f in fields]

    def transform(entity: dict[str, Any]) -> dict[str, Any]:
        output: dict[str, Any] = {}
        for path in paths:
            found, value = _get(entity, path)
            if found:
                _set(output, path, value)
        return output

    return transform


def _get(value: Any, path: list[str]) -> tuple[bool, Any]:
    current = value
    for part in path:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _set(output: dict[str, Any], path: list[str], value: Any) -> None:
    current = output
    for part in path[:-1]:
        nested = current.get(part)
        if not isinstance(nested, dict):
            nested = {}
            current[part] = nested
        current = nested
    current[path[-1]] = value


# --- GET /entities: order, offset, limit, after ------------------------------------------


def parse_order(params: Params) -> tuple[OrderField, ...]:
    orders: list[OrderField] = []
    for item in _strings(params, "order") or []:
        match = re.fullmatch(r"(asc|desc):(.+)", item, flags=re.DOTALL)
        if not match:
            raise InputError(
                f'Invalid order parameter "{item}", expected "<asc or desc>:<field name>"'
            )
        orders.append(OrderField(match.group(2).lower(), "asc" if match[1] == "asc" else "desc"))
    return tuple(orders)


@dataclass(frozen=True)
class Pagination:
    offset: int | None
    limit: int | None


def parse_pagination(params: Params) -> Pagination | None:
    offset = _integer(params, "offset")
    limit = _integer(params, "limit")
    after = _string(params, "after")
    if offset is None and limit is None and after is None:
        return None
    if offset is not None and offset < 0:
        raise InputError("Invalid offset, must be zero or greater")
    if limit is not None and limit <= 0:
        raise InputError("Invalid limit, must be greater than zero")
    if after is not None and not after:
        raise InputError("Invalid after, must not be empty")
    if after is not None:
        try:
            cursor = json.loads(base64.b64decode(after, validate=False).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InputError("Malformed after cursor, could not be parsed") from exc
        if not isinstance(cursor, dict):
            raise InputError("Malformed after cursor, could not be parsed")
        if "limit" in cursor:
            if not isinstance(cursor["limit"], int) or isinstance(cursor["limit"], bool):
                raise InputError("Malformed after cursor, limit was not an number")
            limit = cursor["limit"]
        if "offset" in cursor:
            if not isinstance(cursor["offset"], int) or isinstance(cursor["offset"], bool):
                raise InputError("Malformed after cursor, offset was not a number")
            offset = cursor["offset"]
    return Pagination(offset=offset, limit=limit)


def encode_after(limit: int, offset: int) -> str:
    return base64.b64encode(
        json.dumps({"limit": limit, "offset": offset}, separators=(",", ":")).encode()
    ).decode()


# --- queryEntities: cursors ---------------------------------------------------------------


@dataclass(frozen=True)
class QueryState:
    """Everything a queryEntities cursor carries, so later pages need nothing else."""

    filter_strings: list[str] | None
    query: object | None  # the predicate, when the query came through POST
    predicate_based: bool
    order: OrderField | None
    full_text_term: str
    full_text_fields: list[str] | None
    total: int | None
    skip_total: bool
    position: list[str | None] | None = None
    first: list[str | None] | None = None
    backwards: bool = False

    def entity_filter(self) -> EntityFilter | None:
        predicate = parse_predicate(self.query) if self.query is not None else None
        return combine(parse_filter_strings(self.filter_strings), predicate)

    def page_request(self, limit: int, offset: int = 0) -> EntityPageRequest:
        term = self.full_text_term.strip().lower()
        full_text = None
        if term:
            fields = self.full_text_fields or [self.order.field if self.order else "metadata.uid"]
            full_text = FullTextFilter(term, tuple(f.lower() for f in fields))
        after = None
        if self.position is not None:
            if self.order is not None and len(self.position) == 2:
                after = (self.position[0], str(self.position[1]))
            elif self.position:
                after = (None, str(self.position[-1]))
        return EntityPageRequest(
            filter=self.entity_filter(),
            order=self.order,
            full_text=full_text,
            limit=limit,
            offset=offset if self.position is None else 0,
            after=after,
            backwards=self.backwards,
            count=self.total is None and not self.skip_total,
            known_total=self.total,
        )


def encode_cursor(state: QueryState) -> str:
    cursor: dict[str, Any] = {
        "orderFields": [{"field": state.order.field, "order": state.order.order}]
        if state.order
        else [],
        "orderFieldValues": state.position or [],
        "isPrevious": state.backwards,
        "firstSortFieldValues": state.first,
        "totalItems": state.total,
        "skipTotalItems": state.skip_total,
    }
    if state.filter_strings is not None:
        cursor["filter"] = state.filter_strings
    if state.full_text_term:
        cursor["fullTextFilter"] = {
            "term": state.full_text_term,
            "fields": state.full_text_fields,
        }
    # Backstage's client sends a cursor back through POST exactly when it holds `query`.
    if state.predicate_based:
        cursor["query"] = state.query
    raw = json.dumps(cursor, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(raw).decode()


def decode_cursor(text: str) -> QueryState:
    try:
        cursor = json.loads(base64.b64decode(text, validate=False).decode())
        if not isinstance(cursor, dict):
            raise ValueError("not an object")
        orders = cursor.get("orderFields") or []
        order = None
        if orders:
            first = orders[0]
            if first.get("order") not in ("asc", "desc") or not isinstance(first.get("field"), str):
                raise ValueError("bad orderFields")
            order = OrderField(first["field"].lower(), first["order"])
        position = cursor.get("orderFieldValues")
        full_text = cursor.get("fullTextFilter") or {}
        filters = cursor.get("filter")
        if filters is not None and not (
            isinstance(filters, list) and all(isinstance(f, str) for f in filters)
        ):
            raise ValueError("bad filter")
        total = cursor.get("totalItems")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
            raise ValueError("bad totalItems")
        return QueryState(
            filter_strings=filters,
            query=cursor.get("query"),
            predicate_based="query" in cursor,
            order=order,
            full_text_term=str(full_text.get("term") or ""),
            full_text_fields=full_text.get("fields"),
            total=total,
            skip_total=bool(cursor.get("skipTotalItems")),
            position=list(position) if isinstance(position, list) else None,
            first=cursor.get("firstSortFieldValues"),
            backwards=bool(cursor.get("isPrevious")),
        )
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise InputError(f"Malformed cursor: {exc}") from exc


def parse_order_field(values: Sequence[str] | None) -> OrderField | None:
    """`orderField=metadata.name,asc`: only the first one is used, as in Backstage."""
    orders: list[OrderField] = []
    for value in values or []:
        field, _, order = value.partition(",")
        if order and order not in ("asc", "desc"):
            raise InputError("Invalid order field order, must be asc or desc")
        orders.append(OrderField(field.lower(), "desc" if order == "desc" else "asc"))
    return orders[0] if orders else None


def _total_mode(value: object) -> bool:
    if value in (None, "include"):
        return False
    if value == "exclude":
        return True
    raise InputError("Invalid totalItems, must be include or exclude")


@dataclass(frozen=True)
class PageQuery:
    state: QueryState
    limit: int
    offset: int
    fields: Transform | None


def parse_query_params(params: Params) -> PageQuery:
    """GET /entities/by-query."""
    limit = _integer(params, "limit")
    offset = _integer(params, "offset")
    if limit is not None and limit < 0:
        raise InputError("Invalid limit, must be zero or greater")
    if offset is not None and offset < 0:
        raise InputError("Invalid offset, must be zero or greater")
    fields = parse_fields(_strings(params, "fields"))
    cursor = _string(params, "cursor")
    if cursor is not None:
        if not cursor:
            raise InputError("Cursor cannot be empty")
        state = decode_cursor(cursor)
    else:
        filters = _strings(params, "filter")
        parse_filter_strings(filters)  # refuse a malformed filter on the first page
        text_fields = [
            f.strip() for v in _strings(params, "fullTextFilterFields") or [] for f in v.split(",")
        ]
        state = QueryState(
            filter_strings=filters,
            query=None,
            predicate_based=False,
            order=parse_order_field(_strings(params, "orderField")),
            full_text_term=_string(params, "fullTextFilterTerm") or "",
            full_text_fields=[f for f in text_fields if f] or None,
            total=None,
            skip_total=_total_mode(_string(params, "totalItems")),
        )
    return PageQuery(
        state=state,
        limit=DEFAULT_QUERY_LIMIT if limit is None else limit,
        offset=offset or 0,
        fields=fields,
    )


def _body_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"Invalid {name}, must be an integer, zero or greater")
    return value


def _body_strings(body: Mapping[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"Invalid {name}, must be an array of strings")
    return value


def parse_query_body(body: object) -> PageQuery:
    """POST /entities/by-query: the predicate form of queryEntities."""
    if not isinstance(body, dict):
        raise InputError("Expected body to be a JSON object")
    limit = _body_int(body, "limit")
    fields = parse_fields(_body_strings(body, "fields"))
    if "cursor" in body:
        cursor = body["cursor"]
        if not isinstance(cursor, str) or not cursor:
            raise InputError("Cursor cannot be empty")
        state = decode_cursor(cursor)
        return PageQuery(
            state=state,
            limit=DEFAULT_QUERY_LIMIT if limit is None else limit,
            offset=0,
            fields=fields,
        )
    query = body.get("query")
    if query is not None:
        parse_predicate(query)
    order: OrderField | None = None
    if body.get("orderBy") is not None:
        entries = body["orderBy"] if isinstance(body["orderBy"], list) else [body["orderBy"]]
        parsed: list[OrderField] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
                raise InputError("Invalid orderBy, expected [{field, order}]")
            direction = entry.get("order", "asc")
            if direction not in ("asc", "desc"):
                raise InputError("Invalid order field order, must be asc or desc")
            parsed.append(OrderField(entry["field"].lower(), direction))
        order = parsed[0] if parsed else None
    elif body.get("orderField") is not None:
        order = parse_order_field(_body_strings(body, "orderField"))
    text = body.get("fullTextFilter")
    if text is not None and not isinstance(text, dict):
        raise InputError("Invalid fullTextFilter, expected {term, fields}")
    text = text or {}
    term = text.get("term") or ""
    if not isinstance(term, str):
        raise InputError("Invalid fullTextFilter.term, must be a string")
    state = QueryState(
        filter_strings=None,
        query=query,
        predicate_based=True,
        order=order,
        full_text_term=term,
        full_text_fields=_body_strings(text, "fields"),
        total=None,
        skip_total=_total_mode(body.get("totalItems")),
    )
    return PageQuery(
        state=state,
        limit=DEFAULT_QUERY_LIMIT if limit is None else limit,
        offset=_body_int(body, "offset") or 0,
        fields=fields,
    )


# --- facets and by-refs -------------------------------------------------------------------


def parse_facets(values: Sequence[str] | None) -> list[str]:
    facets = [v for v in values or [] if v]
    if not facets:
        raise InputError("Missing facet parameter")
    return facets


@dataclass(frozen=True)
class RefsRequest:
    entity_refs: list[str]
    fields: list[str] | None
    query: object | None


def parse_refs_body(body: object) -> RefsRequest:
    prefix = (
        "Malformed request body (did you remember to specify an application/json content type?), "
    )
    if not isinstance(body, dict):
        raise InputError(prefix + "expected an object with entityRefs")
    refs = body.get("entityRefs")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InputError(prefix + "entityRefs must be an array of strings")
    fields = body.get("fields")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise InputError(prefix + "fields must be an array of strings")
    return RefsRequest(entity_refs=refs, fields=fields, query=body.get("query"))
