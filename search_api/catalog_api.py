"""Backstage's catalog REST API under /api/catalog, over Cairn's live store.

Routes, parameters, response shapes, status codes and error bodies follow Backstage's
catalog backend (plugins/catalog-backend/src/service/createRouter.ts), so its published
`@backstage/catalog-client` works against Cairn unchanged. Reads go through
CatalogQueries; the routes that change the catalog only publish git events to the log
(the descriptor processor does the work, as for a webhook) and wait, bounded, for the
store to show the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urljoin

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute

from search_api.backstage_auth import TokenAuth
from search_api.backstage_entities import document_json, dumps, render_document, render_entity
from search_api.backstage_errors import (
    CatalogApiError,
    ConflictError,
    InputError,
    NotFoundError,
    ServiceUnavailableError,
    error_response,
)
from search_api.backstage_locations import (
    LocationTarget,
    parse_target,
    read_target,
    resolve_target,
    target_location_id,
)
from search_api.backstage_params import (
    PageQuery,
    QueryState,
    Transform,
    combine,
    encode_after,
    encode_cursor,
    parse_facets,
    parse_fields,
    parse_filter_params,
    parse_order,
    parse_pagination,
    parse_predicate,
    parse_query_body,
    parse_query_params,
    parse_refs_body,
)
from search_api.queries import CatalogQueries, generated_location_ref, location_data
from services.bus.port import LogUnavailable
from services.git.reader import GitReader
from services.model.catalog import EntityDocument, LocationRecord, ref_key
from services.model.descriptor import DescriptorLimits
from services.model.entity import (
    ANNOTATION_LOCATION,
    ANNOTATION_ORIGIN_LOCATION,
)
from services.model.events import GitEventReceived, LocationRemoved, Repository
from services.model.refs import InvalidRef, parse_ref
from services.model.relations import derive_relations, outgoing_relations
from services.model.resync import repository_from_key, resync_event
from services.model.topics import GIT_EVENTS
from services.model.validation import validate_entity
from services.store.catalog_query import AllOf, EntityListRequest, FieldMatch
from services.store.port import StoreUnavailable

log = logging.getLogger("cairn.catalog_api")

PREFIX = "/api/catalog"
STREAM_CHUNK = 200
Publish = Callable[[str, str, bytes], object]
JsonBody = Annotated[Any, Body()]


@dataclass
class CatalogApiContext:
    """What the catalog API needs, built by the composition root (services/cli.py)."""

    queries: CatalogQueries
    publish: Publish  # (topic, key, value): durable once it returns
    git: GitReader  # for dry runs only; its mirrors are the API's own
    catalog_files: list[str]
    limits: DescriptorLimits = field(default_factory=DescriptorLimits)
    git_timeout: float = 120.0
    auth: TokenAuth = field(default_factory=lambda: TokenAuth({}))
    wait_seconds: float = 10.0


# --- rendering ----------------------------------------------------------------------------


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _raw_json(dumps(value), status, headers)


def _raw_json(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=text.encode(), status_code=status, media_type="application/json", headers=headers
    )


def _shaped(document: EntityDocument, fields: Transform | None) -> str:
    """The document's JSON, reduced to `fields` when given."""
    if fields is None:
        return document_json(document)
    return dumps(fields(render_document(document)))


def _array(items: Iterable[str]) -> str:
    return f"[{','.join(items)}]"


def _location(record: LocationRecord) -> dict[str, Any]:
    return location_data(record)


# --- errors in Backstage's shape ----------------------------------------------------------


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    return f"Malformed request: {first.get('msg', 'the request body is not valid JSON')}"


class BackstageRoute(APIRoute):
    """Every failure of a catalog route answers in Backstage's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except CatalogApiError as exc:
                return error_response(request, exc.status, exc.name, exc.message)
            except RequestValidationError as exc:
                return error_response(request, 400, "InputError", _validation_message(exc))
            except (StoreUnavailable, LogUnavailable) as exc:
                return error_response(request, 503, ServiceUnavailableError.name, str(exc))
            except Exception as exc:
                log.exception("catalog API: %s %s failed", request.method, request.url.path)
                return error_response(
                    request, 500, "Error", f"The catalog failed to answer ({type(exc).__name__})."
                )

        return route


def _params(request: Request) -> dict[str, list[str]]:
    query = request.query_params
    return {key: query.getlist(key) for key in query}


def _next_link(request: Request, limit: int, offset: int) -> str:
    """Backstage's `Link` to the next page: this request without offset, with `after`."""
    pairs = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)]
    pairs = [(k, v) for k, v in pairs if k != "offset"]
    after = encode_after(limit, offset)
    if any(k == "after" for k, _ in pairs):
        first = next(i for i, (k, _) in enumerate(pairs) if k == "after")
        pairs = [(k, v) for i, (k, v) in enumerate(pairs) if k != "after" or i == first]
        pairs[first] = ("after", after)
    else:
        pairs.append(("after", after))
    path = request.url.path[len(PREFIX) :] if request.url.path.startswith(PREFIX) else "/"
    return f'<{path}?{urlencode(pairs, safe="*-._")}>; rel="next"'


def _parse_entity_ref(text: object) -> str:
    if not isinstance(text, str):
        raise InputError("entityRef must be a string, e.g. component:default/my-service.")
    try:
        return str(parse_ref(text))
    except InvalidRef as exc:
        raise InputError(str(exc)) from exc


# --- the router ---------------------------------------------------------------------------


def create_catalog_router(context: CatalogApiContext) -> APIRouter:
    queries = context.queries
    read = Depends(context.auth.dependency("read"))
    admin = Depends(context.auth.dependency("admin"))
    router = APIRouter(prefix=PREFIX, route_class=BackstageRoute, tags=["catalog"])

    # --- entities ---------------------------------------------------------------------

    @router.get("/entities", dependencies=[read])
    def entities(request: Request) -> Response:
        params = _params(request)
        entity_filter = parse_filter_params(params)
        fields = parse_fields(params.get("fields"))
        order = parse_order(params)
        pagination = parse_pagination(params)
        if pagination is None:
            listing = EntityListRequest(filter=entity_filter, order=order)
            return StreamingResponse(
                _stream_array(queries.stream_entities(listing), fields),
                media_type="application/json",
            )
        offset = pagination.offset or 0
        result = queries.list_entities(
            EntityListRequest(
                filter=entity_filter,
                order=order,
                offset=offset,
                limit=pagination.limit,
                by_ref=not order,
            )
        )
        headers = None
        if result.has_more and pagination.limit is not None:
            headers = {"link": _next_link(request, pagination.limit, offset + pagination.limit)}
        return _raw_json(_array(_shaped(e, fields) for e in result.entities), headers=headers)

    @router.get("/entities/by-query", dependencies=[read])
    def entities_by_query(request: Request) -> Response:
        return _raw_json(_query_page(queries, parse_query_params(_params(request))))

    @router.post("/entities/by-query", dependencies=[read])
    def entities_by_predicate(body: JsonBody = None) -> Response:
        return _raw_json(_query_page(queries, parse_query_body(body if body is not None else {})))

    @router.get("/entities/by-uid/{uid}", dependencies=[read])
    def entity_by_uid(uid: str) -> Response:
        stored = queries.stored_entity_by_uid(uid)
        if stored is None:
            raise NotFoundError(f"No entity with uid {uid}")
        return _json(queries.decorate_entity(render_entity(stored)))

    @router.get("/entities/by-name/{kind}/{namespace}/{name}", dependencies=[read])
    def entity_by_name(kind: str, namespace: str, name: str) -> Response:
        stored = queries.stored_entity(f"{kind}:{namespace}/{name}")
        if stored is None:
            raise NotFoundError(
                f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
            )
        return _json(queries.decorate_entity(render_entity(stored)))

    @router.get("/entities/by-name/{kind}/{namespace}/{name}/ancestry", dependencies=[read])
    def entity_ancestry(kind: str, namespace: str, name: str) -> Response:
        ref = f"{kind}:{namespace}/{name}".lower()
        root = queries.entities_by_refs([ref]).get(ref)
        if root is None:
            raise NotFoundError(f"No such entity {ref}")
        return _json(_ancestry(queries, root))

    @router.post("/entities/by-refs", dependencies=[read])
    def entities_by_refs(request: Request, body: JsonBody = None) -> Response:
        wanted = parse_refs_body(body)
        params = _params(request)
        fields = parse_fields(wanted.fields if wanted.fields is not None else params.get("fields"))
        predicate = parse_predicate(wanted.query) if wanted.query is not None else None
        entity_filter = combine(parse_filter_params(params), predicate)
        found = queries.entities_by_refs(wanted.entity_refs, entity_filter)
        items = (
            _shaped(found[ref_key(ref)], fields) if ref_key(ref) in found else "null"
            for ref in wanted.entity_refs
        )
        return _raw_json(f'{{"items":{_array(items)}}}')

    @router.get("/entity-facets", dependencies=[read])
    def entity_facets(request: Request) -> Response:
        params = _params(request)
        facets = parse_facets(params.get("facet"))
        return _json(_facets(queries, facets, parse_filter_params(params)))

    @router.post("/entity-facets", dependencies=[read])
    def entity_facets_by_predicate(body: JsonBody = None) -> Response:
        if not isinstance(body, dict):
            raise InputError("Expected body to be a JSON object with facets")
        raw = body.get("facets")
        if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
            raise InputError("Invalid facets, must be an array of strings")
        query = body.get("query")
        entity_filter = parse_predicate(query) if query is not None else None
        return _json(_facets(queries, parse_facets(raw), entity_filter))

    # --- locations --------------------------------------------------------------------

    @router.get("/locations", dependencies=[read])
    def locations() -> Response:
        return _json([{"data": _location(r)} for r in queries.location_records()])

    @router.get("/locations/by-entity/{kind}/{namespace}/{name}", dependencies=[read])
    def location_by_entity(kind: str, namespace: str, name: str) -> Response:
        ref = f"{kind}:{namespace}/{name}".lower()
        stored = queries.stored_entity(ref)
        if stored is None:
            raise NotFoundError(f"found no entity for ref {ref}")
        record = queries.location_record(stored.location_id)
        if record is None:
            raise NotFoundError(f"Found no location with key {stored.location_target}")
        return _json(_location(record))

    @router.get("/locations/{location_id}", dependencies=[read])
    def location(location_id: str) -> Response:
        record = queries.location_record(location_id)
        if record is None:
            raise NotFoundError(f"Found no location with ID {location_id}")
        return _json(_location(record))

    @router.post("/locations", dependencies=[admin])
    def create_location(request: Request, body: JsonBody = None) -> Response:
        params = _params(request)
        dry_run = (params.get("dryRun") or ["false"])[0].strip().lower() in (
            "true",
            "1",
            "yes",
            "y",
        )
        on_conflict = (params.get("onConflict") or ["reject"])[0]
        if on_conflict not in ("reject", "refresh"):
            raise InputError("Invalid onConflict, must be reject or refresh")
        location_type, target_url = _location_input(body)
        target = _resolve(context, target_url)
        if dry_run:
            return _json(_dry_run(context, target, location_type, target_url), status=201)
        return _json(_register(context, target, location_type, target_url, on_conflict), status=201)

    @router.delete("/locations/{location_id}", dependencies=[admin])
    def delete_location(location_id: str) -> Response:
        record = queries.location_record(location_id)
        if record is None:
            raise NotFoundError(f"Found no location with ID {location_id}")
        repository = _repository_of(queries, record)
        event = GitEventReceived(
            source="cairn-api",
            delivery_id=f"location-removed-{location_id}-{time.time_ns()}",
            event_type="location_removed",
            repository=repository,
            change=LocationRemoved(location_id=location_id, path=record.path),
        )
        context.publish(GIT_EVENTS.name, repository.key, event.model_dump_json().encode())
        owned = list(record.entity_refs)

        def removed() -> bool:
            return queries.location_record(location_id) is None and not queries.entities_by_refs(
                owned
            )

        _wait_until(removed, context.wait_seconds)
        return Response(status_code=204)

    # --- refresh and validation -------------------------------------------------------

    @router.post("/refresh", dependencies=[admin])
    def refresh(body: JsonBody = None) -> Response:
        if not isinstance(body, dict) or "entityRef" not in body:
            raise InputError("Expected a JSON body with entityRef")
        ref = _parse_entity_ref(body["entityRef"])
        stored = queries.stored_entity(ref)
        if stored is None:
            raise NotFoundError(f"Entity {ref} not found")
        record = queries.location_record(stored.location_id)
        if record is None:
            raise NotFoundError(f"Entity {ref} has no location to refresh from")
        repository = _repository_of(queries, record)
        event = resync_event(repository, f"refresh of {ref} through the catalog API")
        context.publish(GIT_EVENTS.name, repository.key, event.model_dump_json().encode())
        return Response(status_code=200)

    @router.post("/validate-entity", dependencies=[read])
    def validate(body: JsonBody = None) -> Response:
        problems = _validate(body)
        if problems:
            return _json(
                {"errors": [{"name": "InputError", "message": p} for p in problems]}, status=400
            )
        return Response(status_code=200)

    return router


def install_catalog_api(app: FastAPI, context: CatalogApiContext) -> None:
    app.include_router(create_catalog_router(context))


# --- helpers behind the routes ------------------------------------------------------------


def _stream_array(documents: Iterator[EntityDocument], fields: Transform | None) -> Iterator[bytes]:
    yield b"["
    first = True
    chunk: list[str] = []
    for document in documents:
        chunk.append(_shaped(document, fields))
        if len(chunk) >= STREAM_CHUNK:
            yield (("" if first else ",") + ",".join(chunk)).encode()
            first, chunk = False, []
    if chunk:
        yield (("" if first else ",") + ",".join(chunk)).encode()
    yield b"]"


def _position(state: QueryState, value: str | None, uid: str) -> list[str | None]:
    return [value, uid] if state.order is not None else [uid]


def _query_page(queries: CatalogQueries, query: PageQuery) -> str:
    """One page of queryEntities as JSON, with Backstage's cursors (see
    DefaultEntitiesCatalog)."""
    state = query.state
    page = queries.query_entities(state.page_request(query.limit, query.offset))
    if state.total is not None:
        total = state.total
    elif state.skip_total or page.total is None:
        total = 0
    else:
        total = page.total
    positions = [_position(state, value, uid) for value, uid in page.positions]
    first = state.first
    if first is None:
        first = positions[0] if positions else []
    page_info: dict[str, str] = {}
    if page.has_more and positions:
        page_info["nextCursor"] = encode_cursor(
            _with(state, position=positions[-1], first=first, backwards=False, total=total)
        )
    if state.first is not None and positions and positions[0] != state.first:
        page_info["prevCursor"] = encode_cursor(
            _with(state, position=positions[0], first=state.first, backwards=True, total=total)
        )
    items = _array(_shaped(e, query.fields) for e in page.entities)
    return f'{{"items":{items},"totalItems":{total},"pageInfo":{dumps(page_info)}}}'


def _with(
    state: QueryState,
    *,
    position: list[str | None],
    first: list[str | None],
    backwards: bool,
    total: int,
) -> QueryState:
    return QueryState(
        filter_strings=state.filter_strings,
        query=state.query,
        predicate_based=state.predicate_based,
        order=state.order,
        full_text_term=state.full_text_term,
        full_text_fields=state.full_text_fields,
        total=None if state.skip_total else total,
        skip_total=state.skip_total,
        position=position,
        first=first,
        backwards=backwards,
    )


def _facets(
    queries: CatalogQueries, facets: Sequence[str], entity_filter: Any
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    counted = queries.entity_facets([f.lower() for f in facets], entity_filter)
    return {
        "facets": {
            facet: [{"value": c.value, "count": c.count} for c in counted.get(facet.lower(), [])]
            for facet in facets
        }
    }


def _annotation(stored_or_body: dict[str, Any], name: str) -> str | None:
    metadata = stored_or_body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(name) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def _url_of(annotation: str | None) -> str | None:
    if annotation is None:
        return None
    kind, _, target = annotation.partition(":")
    return target if kind == "url" and target else None


def _targets_of(location: dict[str, Any]) -> list[str]:
    spec = location.get("spec") if isinstance(location.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    targets = [spec["target"]] if isinstance(spec.get("target"), str) else []
    if isinstance(spec.get("targets"), list):
        targets += [t for t in spec["targets"] if isinstance(t, str)]
    return targets


def _ancestry(queries: CatalogQueries, root: EntityDocument) -> dict[str, Any]:
    """The Location entities whose targets brought each entity in, up to the root file.

    Cairn keeps no processing graph; the chain is the one the descriptors state: an entity
    in file F has as parents the Location entities (from the same origin) targeting F.
    """
    origin = _annotation(root.body, ANNOTATION_ORIGIN_LOCATION)
    candidates: list[EntityDocument] = []
    if origin is not None:
        candidates = queries.list_entities(
            EntityListRequest(
                filter=AllOf(
                    (
                        FieldMatch("kind", ("location",)),
                        FieldMatch(
                            f"metadata.annotations.{ANNOTATION_ORIGIN_LOCATION}", (origin.lower(),)
                        ),
                    )
                )
            )
        ).entities

    def parents(entity: EntityDocument) -> list[EntityDocument]:
        own = _url_of(_annotation(entity.body, ANNOTATION_LOCATION))
        if own is None:
            return []
        found = []
        for location in candidates:
            if location.ref == entity.ref:
                continue
            base = _url_of(_annotation(location.body, ANNOTATION_LOCATION))
            if base is None:
                continue
            for target in _targets_of(location.body):
                resolved = urljoin(base, target)
                if resolved == own or (
                    any(c in target for c in "*?[") and _glob_match(own, resolved)
                ):
                    found.append(location)
                    break
        return found

    seen = {ref_key(root.ref)}
    todo: list[EntityDocument] = []
    items: list[dict[str, Any]] = []
    current: EntityDocument | None = root
    while current is not None:
        parent_refs: list[str] = []
        for parent in parents(current):
            parent_refs.append(ref_key(parent.ref))
            if ref_key(parent.ref) not in seen:
                seen.add(ref_key(parent.ref))
                todo.append(parent)
        items.append({"entity": render_document(current), "parentEntityRefs": parent_refs})
        current = todo.pop() if todo else None
    return {"rootEntityRef": ref_key(root.ref), "items": items}


def _glob_match(url: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    directory, _, _ = pattern.rpartition("/")
    return url.rpartition("/")[0] == directory and fnmatchcase(url, pattern)


def _location_input(body: object) -> tuple[str, str]:
    if not isinstance(body, dict) or not body:
        raise InputError("Malformed request: expected a JSON body with type and target")
    location_type, target = body.get("type"), body.get("target")
    if not isinstance(location_type, str) or not isinstance(target, str) or not target:
        raise InputError("Malformed request: type and target must be strings")
    if location_type != "url":
        raise InputError('Registered locations must be of an allowed type ["url"]')
    return location_type, target


def _resolve(context: CatalogApiContext, target_url: str) -> LocationTarget:
    parsed = parse_target(target_url)
    key = Repository(
        host=parsed.host, owner=parsed.owner, name=parsed.name, clone_url="", html_url=""
    ).key
    state = context.queries.repository(key)
    known = (
        repository_from_key(state.key, state.clone_url, state.html_url, state.default_branch)
        if state is not None and state.status != "deleted"
        else None
    )
    return resolve_target(parsed, known, context.git_timeout)


def _repository_of(queries: CatalogQueries, record: LocationRecord) -> Repository:
    state = queries.repository(record.repository_key)
    if state is not None:
        return repository_from_key(state.key, state.clone_url, state.html_url, state.default_branch)
    parsed = parse_target(record.target)
    return Repository(
        host=parsed.host,
        owner=parsed.owner,
        name=parsed.name,
        clone_url=parsed.clone_url,
        html_url=parsed.html_url,
        default_branch=parsed.branch or "main",
    )


def _response_location(
    location_type: str, target_url: str, record: LocationRecord | None, target: LocationTarget
) -> dict[str, Any]:
    if record is not None:
        return _location(record)
    location_id = target_location_id(target)
    return {
        "id": location_id or f"{location_type}:{target_url}",
        "type": location_type,
        "target": target.file_url or target_url,
        "entityRef": generated_location_ref(location_type, target.file_url or target_url),
    }


def _existing(queries: CatalogQueries, target: LocationTarget) -> list[LocationRecord]:
    if target.path is not None:
        record = queries.location_record(target_location_id(target) or "")
        return [record] if record is not None else []
    key = target.repository.key
    return [r for r in queries.location_records() if r.repository_key == key]


def _dry_run(
    context: CatalogApiContext, target: LocationTarget, location_type: str, target_url: str
) -> dict[str, Any]:
    existing = _existing(context.queries, target)
    reading = read_target(target, context.git, context.catalog_files, context.limits)
    if reading.errors:
        raise InputError(", ".join(f"InputError: {e.message}" for e in reading.errors))
    if not reading.roots:
        raise NotFoundError(
            f"No catalog file ({', '.join(context.catalog_files)}) was found in "
            f"{target.repository.html_url}."
        )
    entities = []
    for entity in reading.entities:
        edges = derive_relations(entity)
        entities.append(entity.to_backstage(relations=outgoing_relations(entity.ref, edges)))
    return {
        "exists": bool(existing),
        "location": _response_location(
            location_type, target_url, existing[0] if existing else None, target
        ),
        "entities": entities,
    }


def _register(
    context: CatalogApiContext,
    target: LocationTarget,
    location_type: str,
    target_url: str,
    on_conflict: str,
) -> dict[str, Any]:
    queries = context.queries
    existing = _existing(queries, target)
    if existing and on_conflict != "refresh":
        raise ConflictError(
            f"Location {location_type}:{target.file_url or target_url} already exists"
        )
    repository = target.repository
    before = queries.repository(repository.key)
    processed_before = before.processed_at if before is not None else None
    event = resync_event(repository, f"location registered through the catalog API: {target_url}")
    context.publish(GIT_EVENTS.name, repository.key, event.model_dump_json().encode())

    def processed() -> bool:
        state = queries.repository(repository.key)
        return state is not None and state.processed_at != processed_before

    if not _wait_until(processed, context.wait_seconds):
        # Accepted and durable in the log: it appears when the processor gets to it.
        return {
            "location": _response_location(location_type, target_url, None, target),
            "entities": [],
        }
    records = _existing(queries, target)
    if not records:
        if target.path is not None:
            raise NotFoundError(
                f"{target.path} was not read from {repository.html_url}: Cairn reads only the "
                f"catalog files named by CAIRN_CATALOG_FILES ({', '.join(context.catalog_files)})."
            )
        raise NotFoundError(
            f"No catalog file ({', '.join(context.catalog_files)}) was found in "
            f"{repository.html_url}."
        )
    refs = [ref for record in records for ref in record.entity_refs]

    def stored() -> bool:
        return len(queries.entities_by_refs(refs)) == len({ref_key(r) for r in refs})

    _wait_until(stored, context.wait_seconds)
    found = queries.entities_by_refs(refs)
    return {
        "location": _location(records[0]),
        "entities": [render_document(found[ref_key(r)]) for r in refs if ref_key(r) in found],
    }


def _wait_until(check: Callable[[], bool], seconds: float) -> bool:
    """Poll the store with a growing pause until `check` holds or time runs out."""
    deadline = time.monotonic() + seconds
    pause = 0.02
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.25)


def _validate(body: object) -> list[str]:
    """Backstage's /validate-entity: the envelope, the location ref, then the entity."""
    if not isinstance(body, dict) or not body:
        return ["Malformed request: expected a JSON body with entity and location"]
    location = body.get("location")
    if not isinstance(location, str):
        return ["Malformed request: location must be a string, e.g. url:https://host/path"]
    entity = body.get("entity")
    if not isinstance(entity, dict):
        return ["Malformed request: entity must be an object"]
    location_type, colon, location_target = location.partition(":")
    if not colon or not location_type or not location_target:
        return [
            f"Unable to parse location ref '{location}', expected '<type>:<target>', "
            "e.g. 'url:https://host/path'"
        ]
    if location_type != "url":
        return [
            f"Invalid location ref {location}, only 'url:<target>' is supported, "
            "e.g. url:https://host/path"
        ]
    return validate_entity(entity)
