"""The OpenSearch search index (opensearch-py), the production adapter of the index port.

Layout: a physical index per mapping version (`<alias>-v<N>-<stamp>`, created from the
template in opensearch_mappings.py) behind two aliases: `<alias>`, the one index searched,
and `<alias>-write`, every index the projection writes to (two while a rebuild runs).

Writes are bulk requests, one document id per entity ref, with the change's log offset as
an external version: OpenSearch itself refuses a write that is not newer than what it holds,
so a late or repeated change never overwrites a newer one. A deletion is written as a
tombstone document (`deleted: true`, same external version) rather than a delete, so the
guard outlives it (a real delete forgets its version after `index.gc_deletes`); searches
filter tombstones out and a rebuild drops them.

Deployments: an entity's environments are a child document of the entity's (a `join` field,
see opensearch_mappings.py), id `<ref key>#deployments`, routed to the entity, with the
`cairn.deployments` offset (+1, as OpenSearch's external versions cannot be negative and the
store's refill version is -1) as its own external version. So the two projections never
write the same document: an entity change, a tombstone or a re-creation leaves the
environments alone, and a late deployments write is refused like a late entity write. Search
filters the entity documents with `has_child` over one nested environment and reads the
page's environments with one `mget`. A scripted partial update of the entity document was
the alternative; it would need the painless module and give up external versions (which the
entity guard and the rebuild's merge are built on), because an entity write replaces the
whole document.

Failures: an unreachable cluster, 429 and 5xx raise `IndexUnavailable` after a few quick
retries (the caller retries the whole batch; every write is idempotent); a document the
cluster refuses (400-class item error) is reported in `WritesRejected` after the rest of the
batch was applied.

Refresh: the index refreshes every `refresh_interval` (500 ms by default; measured in
tests/benchmarks/search.py) and bulk writes do not wait for it, so a change is searchable
within about half a second of `apply` and bulk throughput is not bound by refreshes.
`refresh="wait_for"` makes `apply` return only once searchable; `"true"` forces a refresh
per batch (tests).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError
from opensearchpy.helpers import scan

from services.index.cursor import cursor_key, keyset_cursor
from services.index.document import (
    DeployedEnvironment,
    SearchDocument,
    name_key,
    name_words,
    normalise_filter_value,
    query_words,
)
from services.index.matching import typo_applies
from services.index.opensearch_mappings import (
    DEPLOYMENTS,
    ENTITY,
    LONG_TEXTS,
    MAPPING_VERSION,
    MAPPINGS,
    index_template,
)
from services.index.port import (
    DEPLOYMENT_FILTERS,
    EXACT_NAME_BONUS,
    FACET_FIELDS,
    FACET_SIZE,
    WEIGHTS,
    DeploymentFilter,
    DeploymentsWrite,
    FacetCount,
    IndexUnavailable,
    IndexWrite,
    InvalidQuery,
    RejectedWrite,
    SearchHit,
    SearchPage,
    SearchQuery,
    Suggestion,
    WritesRejected,
    deployment_filter,
)

log = logging.getLogger("cairn.index.opensearch")

Refresh = Literal["false", "wait_for", "true"]
T = TypeVar("T")
W = TypeVar("W", IndexWrite, DeploymentsWrite)

_FACET_FIELD = {"tag": "tags", "label": "labels"}
_MAPPED = frozenset(MAPPINGS["properties"])
_MAX_LIMIT = 500
_BULK_MAX_BYTES = 5 * 1024 * 1024
_BULK_MAX_ACTIONS = 2000
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_ITEM_RETRIES = (0.2, 0.5, 1.0)
_HIT_SOURCE = [
    "ref",
    "ref_key",
    "kind",
    "namespace",
    "name",
    "name_lower",
    "title",
    "description",
    "owner",
    "system",
    "type",
    "lifecycle",
    "tags",
    "updated_at",
]
# `request_timeout` is the client's; `timeout` then reaches the cluster as the wait limit.
_WAIT_YELLOW = {"wait_for_status": "yellow", "timeout": "30s", "request_timeout": 40}
_MISSING_ANALYSIS = re.compile(r"unknown (filter|tokenizer|char_filter) type|failed to find", re.I)
_MISSING_JOIN = re.compile(r"no handler for type \[join\]", re.I)
_DEPLOYMENTS_ID = "#deployments"
_MARK = re.compile(r"<em>(.*?)</em>", re.S)


def document_source(doc: SearchDocument) -> dict[str, Any]:
    return {
        "ref": doc.ref,
        "ref_key": doc.ref_key,
        "name_lower": doc.name.lower(),
        "name_key": doc.name_key,
        "name_length": len(doc.name),
        "updated_at": doc.updated_at,
        "deleted": False,
        "relation": ENTITY,
        "kind": doc.kind,
        "namespace": doc.namespace,
        "type": doc.type,
        "lifecycle": doc.lifecycle,
        "owner": doc.owner,
        "system": doc.system,
        "domain": doc.domain,
        "tags": doc.tags,
        "labels": doc.label_pairs,
        "name": doc.name,
        "title": doc.title,
        "description": doc.description,
        "related": doc.related_text,
        "spec": doc.spec_text,
        "definition": doc.definition_text,
    }


def tombstone_source(ref: str) -> dict[str, Any]:
    return {"ref": ref, "ref_key": ref.lower(), "deleted": True, "relation": ENTITY}


def deployments_id(ref_key: str) -> str:
    return f"{ref_key}{_DEPLOYMENTS_ID}"


def deployments_source(ref_key: str, environments: Sequence[DeployedEnvironment]) -> dict[str, Any]:
    return {
        "relation": {"name": DEPLOYMENTS, "parent": ref_key},
        "environments": [asdict(e) for e in sorted(environments, key=lambda e: e.environment)],
    }


@dataclass(frozen=True)
class BulkDocument:
    """One document of a bulk write: its id, external version, source and routing, and the
    write it comes from (named when the cluster rejects it)."""

    id: str
    version: int
    source: dict[str, Any]
    ref: str
    write_version: int
    routing: str | None = None


def entity_document(write: IndexWrite) -> BulkDocument:
    source = (
        tombstone_source(write.ref) if write.document is None else document_source(write.document)
    )
    return BulkDocument(write.ref.lower(), write.version, source, write.ref, write.version)


def deployments_document(write: DeploymentsWrite) -> BulkDocument:
    key = write.ref.lower()
    return BulkDocument(
        id=deployments_id(key),
        version=write.version + 1,  # non-negative for STORE_VERSION (-1)
        source=deployments_source(key, write.environments),
        ref=write.ref,
        write_version=write.version,
        routing=key,
    )


def newest_writes(writes: Sequence[W]) -> list[W]:
    """The newest write per ref."""
    newest: dict[str, W] = {}
    for write in writes:
        key = write.ref.lower()
        if key not in newest or newest[key].version < write.version:
            newest[key] = write
    return list(newest.values())


def _status(exc: TransportError) -> int | None:
    status = exc.status_code
    return status if isinstance(status, int) else None


class OpenSearchIndex:
    def __init__(
        self,
        url: str,
        alias: str = "cairn-entities",
        *,
        refresh: Refresh = "false",
        refresh_interval: str = "500ms",
        timeout: float = 10.0,
        settle_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.alias = alias
        self.write_alias = f"{alias}-write"
        self.refresh = refresh
        self.refresh_interval = refresh_interval
        self.settle_seconds = settle_seconds
        self._ready = False
        self.client = OpenSearch(
            hosts=[url],
            timeout=timeout,
            max_retries=0,
            retry_on_timeout=False,
            pool_maxsize=32,
        )

    # --- plumbing -------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run a request; an unreachable or overloaded cluster becomes IndexUnavailable."""
        try:
            return call()
        except OpenSearchConnectionError as exc:
            raise IndexUnavailable(
                f"OpenSearch at {self.url} cannot be reached ({what}): {exc.error}"
            ) from exc
        except TransportError as exc:
            status = _status(exc)
            if status in _TRANSIENT_STATUS:
                raise IndexUnavailable(
                    f"OpenSearch at {self.url} answered {status} ({what}): {exc.error}"
                ) from exc
            if status == 404 and "index_not_found" in str(exc.error):
                raise IndexUnavailable(
                    f"The search index '{self.alias}' does not exist in OpenSearch at "
                    f"{self.url}; start Cairn once or run `cairn reindex` to create it."
                ) from exc
            raise

    def new_index_name(self, suffix: str | None = None) -> str:
        stamp = suffix or datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        return f"{self.alias}-v{MAPPING_VERSION}-{stamp}"

    def aliased(self, alias: str) -> list[str]:
        """The physical indexes behind an alias ([] when the alias does not exist)."""
        try:
            found = self._call(
                f"read alias {alias}", lambda: self.client.indices.get_alias(name=alias)
            )
        except NotFoundError:
            return []
        return sorted(found)

    def _ensure(self) -> None:
        if not self._ready:
            self.ensure_ready()

    def ensure_ready(self) -> None:
        template = index_template(self.alias, self.refresh_interval)
        try:
            self._call(
                "apply the index template",
                lambda: self.client.indices.put_index_template(
                    name=f"{self.alias}-template", body=template
                ),
            )
        except TransportError as exc:
            if _MISSING_ANALYSIS.search(str(exc.info)):
                raise RuntimeError(
                    f"OpenSearch at {self.url} refused Cairn's index template: {exc.info}. "
                    "Its analyzers need the analysis-common module (word_delimiter_graph, "
                    "edge_ngram); install it in the OpenSearch distribution."
                ) from exc
            if _MISSING_JOIN.search(str(exc.info)):
                raise RuntimeError(
                    f"OpenSearch at {self.url} refused Cairn's index template: {exc.info}. "
                    "The deployments kept beside entities need the parent-join module (the "
                    "`join` field); install it in the OpenSearch distribution."
                ) from exc
            raise
        current = self.aliased(self.alias)
        if not current:
            first = self.new_index_name("initial")
            try:
                self._call(
                    "create the index",
                    lambda: self.client.indices.create(
                        index=first,
                        body={"aliases": {self.alias: {}, self.write_alias: {}}},
                    ),
                )
            except TransportError as exc:
                if "resource_already_exists" not in str(exc.error):
                    raise
            self._call(
                "wait for the index",
                lambda: self.client.cluster.health(index=self.alias, params=_WAIT_YELLOW),
            )
            self._ready = True
            return
        meta = self._call(
            "read the mapping", lambda: self.client.indices.get_mapping(index=current[0])
        )
        mappings = meta.get(current[0], {}).get("mappings", {})
        held = mappings.get("_meta", {})
        if held.get("mapping_version") != MAPPING_VERSION:
            self._add_missing_fields(current, mappings.get("properties", {}))
            log.warning(
                "the search index %s has mapping version %s, this Cairn declares %s: "
                "run `cairn reindex` to rebuild it with the new mapping",
                current[0],
                held.get("mapping_version"),
                MAPPING_VERSION,
            )
        self._ready = True

    def _add_missing_fields(self, indexes: list[str], held: dict[str, Any]) -> None:
        """Declare this mapping's new fields on an index of an older mapping, so writes keep
        being accepted until `cairn reindex` rebuilds it (existing documents gain nothing)."""
        missing = {k: v for k, v in MAPPINGS["properties"].items() if k not in held}
        if not missing:
            return
        try:
            self._call(
                "add the new fields to the mapping",
                lambda: self.client.indices.put_mapping(
                    index=",".join(indexes), body={"properties": missing}
                ),
            )
        except TransportError as exc:
            log.warning("could not add %s to %s: %s", sorted(missing), indexes, exc.info)

    def close(self) -> None:
        self.client.close()

    # --- writes ---------------------------------------------------------------------

    def _write_targets(self) -> list[str]:
        self._ensure()
        targets = self.aliased(self.write_alias) or self.aliased(self.alias)
        if not targets:
            raise IndexUnavailable(
                f"No search index behind '{self.write_alias}' in OpenSearch at {self.url}."
            )
        return targets

    def apply(self, writes: Sequence[IndexWrite]) -> None:
        newest = newest_writes(writes)
        if newest:
            self.bulk_write(self._write_targets(), newest, refresh=self.refresh)

    def apply_deployments(self, writes: Sequence[DeploymentsWrite]) -> None:
        newest = newest_writes(writes)
        if newest:
            self.bulk(
                self._write_targets(),
                [deployments_document(w) for w in newest],
                refresh=self.refresh,
            )

    def bulk_write(
        self, targets: list[str], writes: list[IndexWrite], *, refresh: Refresh = "false"
    ) -> None:
        self.bulk(targets, [entity_document(w) for w in writes], refresh=refresh)

    def bulk(
        self, targets: list[str], documents: list[BulkDocument], *, refresh: Refresh = "false"
    ) -> None:
        """Write each document into every target index with its external version."""
        pending = [(target, doc) for doc in documents for target in targets]
        rejected: dict[str, RejectedWrite] = {}
        attempt = 0
        while pending:
            failed: list[tuple[str, BulkDocument]] = []
            transient: list[str] = []
            swapped_to: list[str] | None = None
            for chunk, lines in self._chunks(pending):
                response = self._call(
                    "bulk write",
                    lambda lines=lines: self.client.bulk(  # type: ignore[misc]
                        body=lines, params={"refresh": refresh}
                    ),
                )
                if not response.get("errors"):
                    continue
                for (target, doc), item in zip(chunk, response["items"], strict=True):
                    result = item.get("index", {})
                    status = int(result.get("status", 200))
                    if status < 300 or status == 409:  # 409: a newer version is held
                        continue
                    error = result.get("error") or {}
                    reason = f"{error.get('type', status)}: {error.get('reason', '')}"
                    if status in _TRANSIENT_STATUS:
                        failed.append((target, doc))
                        transient.append(reason)
                    elif status == 404 and error.get("type") == "index_not_found_exception":
                        # The index was swapped away by a rebuild: write to the current ones.
                        if swapped_to is None:
                            swapped_to = self.aliased(self.write_alias)
                        failed.extend((now, doc) for now in swapped_to if now != target)
                    else:
                        rejected[doc.id] = RejectedWrite(
                            ref=doc.ref, version=doc.write_version, reason=reason
                        )
            pending = failed
            if pending:
                if attempt >= len(_ITEM_RETRIES):
                    raise IndexUnavailable(
                        f"OpenSearch at {self.url} kept refusing {len(pending)} write(s): "
                        f"{transient[0] if transient else 'index not found'}"
                    )
                time.sleep(_ITEM_RETRIES[attempt])
                attempt += 1
        if rejected:
            raise WritesRejected(list(rejected.values()))

    @staticmethod
    def _chunks(
        pending: list[tuple[str, BulkDocument]],
    ) -> Iterator[tuple[list[tuple[str, BulkDocument]], str]]:
        chunk: list[tuple[str, BulkDocument]] = []
        lines: list[str] = []
        size = 0
        for target, doc in pending:
            meta: dict[str, Any] = {
                "_index": target,
                "_id": doc.id,
                "version": doc.version,
                "version_type": "external",
            }
            if doc.routing is not None:
                meta["routing"] = doc.routing
            action = json.dumps({"index": meta})
            body = json.dumps(doc.source, ensure_ascii=False)
            chunk.append((target, doc))
            lines.append(action)
            lines.append(body)
            size += len(action) + len(body) + 2
            if size >= _BULK_MAX_BYTES or len(chunk) >= _BULK_MAX_ACTIONS:
                yield chunk, "\n".join(lines) + "\n"
                chunk, lines, size = [], [], 0
        if chunk:
            yield chunk, "\n".join(lines) + "\n"

    # --- reads ----------------------------------------------------------------------

    def count(self) -> int:
        self._ensure()
        response = self._call(
            "count",
            lambda: self.client.count(
                index=self.alias, body={"query": {"term": {"deleted": False}}}
            ),
        )
        return int(response["count"])

    def _filters(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = [{"term": {"deleted": False}}]
        for field_name, values in filters.items():
            if not values or field_name in DEPLOYMENT_FILTERS:
                continue
            if field_name not in FACET_FIELDS:
                raise InvalidQuery(
                    field_name,
                    f"Cannot filter on {field_name!r}; filter on {', '.join(FACET_FIELDS)}.",
                )
            normalised = sorted({normalise_filter_value(field_name, v) for v in values})
            clauses.append({"terms": {_FACET_FIELD.get(field_name, field_name): normalised}})
        deployed = deployment_filter(filters)
        if deployed is not None:
            clauses.append(_deployment_clause(deployed))
        return clauses

    @staticmethod
    def _word_query(word: str) -> dict[str, Any]:
        def way(weight: str, query: dict[str, Any]) -> dict[str, Any]:
            return {"constant_score": {"filter": query, "boost": WEIGHTS[weight]}}

        def either(*queries: dict[str, Any]) -> dict[str, Any]:
            return {"bool": {"should": list(queries), "minimum_should_match": 1}}

        ways = [
            way("name", {"match": {"name": word}}),
            way("title", {"match": {"title": word}}),
            way(
                "name_prefix",
                either({"match": {"name.prefix": word}}, {"match": {"title.prefix": word}}),
            ),
            way("tags", {"match": {"tags.words": word}}),
        ]
        if typo_applies(word):
            fuzzy = {
                "query": word,
                "fuzziness": 1,
                "prefix_length": 0,
                "fuzzy_transpositions": True,
            }
            ways.append(
                way("name_typo", either({"match": {"name": fuzzy}}, {"match": {"title": fuzzy}}))
            )
        ways += [
            way("description", {"match": {"description": word}}),
            way("related", {"match": {"related": word}}),
            way("spec", either({"match": {"spec": word}}, {"match": {"definition": word}})),
        ]
        return {"dis_max": {"queries": ways, "tie_breaker": 0.0}}

    def search(self, query: SearchQuery) -> SearchPage:
        limit = max(1, min(query.limit, _MAX_LIMIT))
        after = cursor_key(query)
        filters = self._filters(query.filters)
        self._ensure()
        words = query_words(query.text)
        if words:
            search_query: dict[str, Any] = {
                "bool": {
                    "filter": filters,
                    "must": [self._word_query(w) for w in words],
                    "should": [
                        {
                            "constant_score": {
                                "filter": {"term": {"name_key": name_key(query.text)}},
                                "boost": EXACT_NAME_BONUS,
                            }
                        }
                    ],
                }
            }
        else:
            search_query = {"bool": {"filter": filters}}
        sort = {
            "relevance": [{"_score": "desc"}, {"name_lower": "asc"}, {"ref_key": "asc"}],
            "name": [{"name_lower": "asc"}, {"ref_key": "asc"}],
            "updated": [{"updated_at": "desc"}, {"ref_key": "asc"}],
        }[query.sort]
        body: dict[str, Any] = {
            "query": search_query,
            "size": limit + 1,  # one more than asked tells whether a next page exists
            "sort": sort,
            "track_total_hits": True,
            "track_scores": bool(words),
            "_source": _HIT_SOURCE,
            "aggs": {
                facet: {
                    # The default order: most frequent first, ties by value (as FTS5 sorts).
                    # Spelling it out as a compound order makes the aggregation slower.
                    "terms": {"field": _FACET_FIELD.get(facet, facet), "size": FACET_SIZE}
                }
                for facet in FACET_FIELDS
            },
        }
        if after is not None:
            body["search_after"] = after
        if query.highlight and words:
            body["highlight"] = {
                "pre_tags": ["<em>"],
                "post_tags": ["</em>"],
                "encoder": "html",
                "require_field_match": True,
                "fields": {
                    "name": {"number_of_fragments": 0},
                    "name.prefix": {"number_of_fragments": 0},
                    "title": {"number_of_fragments": 0},
                    "title.prefix": {"number_of_fragments": 0},
                    "description": {"fragment_size": 200, "number_of_fragments": 1},
                    "tags.words": {"number_of_fragments": 0},
                    "definition": {"fragment_size": 150, "number_of_fragments": 1},
                },
            }
        # Asked explicitly, the shard request cache keeps a first page's query phase (hits,
        # exact total, facets) until a refresh that changed the index; by default it keeps
        # only size-0 requests. Later pages are rarely repeated. Why not a size-0 facet
        # request beside the hits: BENCHMARKS.md, issue 4.
        params = {"request_cache": "true"} if after is None else {}
        response = self._call(
            "search", lambda: self.client.search(index=self.alias, body=body, params=params)
        )
        hits = response["hits"]["hits"]
        more = len(hits) > limit
        hits = hits[:limit]
        items = self._with_deployments([self._hit(hit, bool(words)) for hit in hits])
        facets = {
            facet: [
                FacetCount(value=str(b["key"]), count=int(b["doc_count"]))
                for b in response["aggregations"][facet]["buckets"]
            ]
            for facet in FACET_FIELDS
        }
        next_cursor = None
        if more:
            last = hits[-1]["sort"]
            if query.sort == "relevance":
                key: list[Any] = [float(last[0]), last[1], last[2]]
            elif query.sort == "updated":
                key = [float(last[0]), last[1]]
            else:
                key = list(last)
            next_cursor = keyset_cursor(query, key)
        return SearchPage(
            items=items,
            total=int(response["hits"]["total"]["value"]),
            facets=facets,
            next_cursor=next_cursor,
        )

    def _with_deployments(self, items: list[SearchHit]) -> list[SearchHit]:
        """The page's hits with their environments (one realtime `mget` of their children)."""
        if not items:
            return items
        keys = [item.ref.lower() for item in items]
        body = {
            "docs": [
                {"_id": deployments_id(key), "routing": key, "_source": ["environments"]}
                for key in keys
            ]
        }
        response = self._call(
            "read deployments", lambda: self.client.mget(index=self.alias, body=body)
        )
        return [
            replace(item, deployments=[DeployedEnvironment(**e) for e in found])
            if (found := (doc.get("_source") or {}).get("environments"))
            else item
            for item, doc in zip(items, response["docs"], strict=True)
        ]

    @staticmethod
    def _hit(hit: dict[str, Any], scored: bool) -> SearchHit:
        source = hit["_source"]
        marks = hit.get("highlight") or {}
        highlights: dict[str, list[str]] = {}
        for field_name in ("name", "title"):
            merged = _merge_marks(marks.get(field_name, []) + marks.get(f"{field_name}.prefix", []))
            if merged:
                highlights[field_name] = [merged]
        if marks.get("description"):
            highlights["description"] = list(marks["description"])
        if marks.get("tags.words"):
            highlights["tags"] = list(marks["tags.words"])
        if marks.get("definition"):
            highlights["definition"] = list(marks["definition"])
        return SearchHit(
            ref=source["ref"],
            kind=source["kind"],
            namespace=source["namespace"],
            name=source["name"],
            title=source.get("title"),
            description=source.get("description"),
            owner=source.get("owner"),
            system=source.get("system"),
            type=source.get("type"),
            lifecycle=source.get("lifecycle"),
            tags=list(source.get("tags") or []),
            score=float(hit.get("_score") or 0.0) if scored else 0.0,
            updated_at=float(source.get("updated_at") or 0.0),
            highlights=highlights,
        )

    def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        words = name_words(prefix)
        if not words:
            return []
        self._ensure()
        body = {
            "size": limit,
            "_source": ["ref", "name", "title", "kind"],
            "query": {
                "bool": {
                    "filter": [{"term": {"deleted": False}}],
                    "must": [
                        {
                            "dis_max": {
                                "queries": [
                                    {
                                        "constant_score": {
                                            "filter": {"prefix": {"name_key": name_key(prefix)}},
                                            "boost": 2,
                                        }
                                    },
                                    {
                                        "constant_score": {
                                            "filter": {
                                                "bool": {
                                                    "must": [
                                                        {
                                                            "multi_match": {
                                                                "query": w,
                                                                "fields": [
                                                                    "name.prefix",
                                                                    "title.prefix",
                                                                ],
                                                            }
                                                        }
                                                        for w in words
                                                    ]
                                                }
                                            },
                                            "boost": 1,
                                        }
                                    },
                                ]
                            }
                        }
                    ],
                }
            },
            "sort": [
                {"_score": "desc"},
                {"name_length": "asc"},
                {"name_lower": "asc"},
                {"ref_key": "asc"},
            ],
        }
        response = self._call("suggest", lambda: self.client.search(index=self.alias, body=body))
        return [
            Suggestion(
                ref=h["_source"]["ref"],
                name=h["_source"]["name"],
                title=h["_source"].get("title"),
                kind=h["_source"]["kind"],
            )
            for h in response["hits"]["hits"]
        ]

    # --- rebuild ----------------------------------------------------------------------

    def begin_rebuild(self) -> OpenSearchRebuild:
        return OpenSearchRebuild(self)


class OpenSearchRebuild:
    """Builds a new physical index from the store while the current one keeps serving.

    1. Create the new index (refresh off while it loads) and add it to the write alias:
       from then on the projection's `apply` writes every change to both indexes. Wait
       `settle_seconds` for writes that resolved the alias just before.
    2. `write`: the store's entities, with the store's versions as external versions;
       `write_deployments`: the deployments store's environments, at `STORE_VERSION`.
    3. `finish`: copy every document of the current index into the new one with its
       version (tombstones and deployments included). External versions make this a merge:
       only what is newer than the store's copy lands, i.e. the changes the store had not
       applied yet, deletions, and every deployments document the projection wrote. Then
       restore refreshes and swap both aliases in one atomic request.
       Searches answer from the old index until that instant and from the new one after.
    4. Wait `settle_seconds`, then delete the old index.

    A rebuild left half-done (a crash) leaves an extra index in the write alias; the next
    rebuild removes it first.
    """

    def __init__(self, index: OpenSearchIndex) -> None:
        self._index = index
        client = index.client
        index.ensure_ready()
        self.old = index.aliased(index.alias)
        for leftover in set(index.aliased(index.write_alias)) - set(self.old):
            log.warning("removing %s, left by an unfinished rebuild", leftover)
            index._call(
                "remove a leftover index",
                lambda leftover=leftover: client.indices.delete(index=leftover),  # type: ignore[misc]
            )
        self.new = index.new_index_name()
        index._call(
            "create the new index",
            lambda: client.indices.create(
                index=self.new, body={"settings": {"index": {"refresh_interval": "-1"}}}
            ),
        )
        index._call(
            "wait for the new index",
            lambda: client.cluster.health(index=self.new, params=_WAIT_YELLOW),
        )
        index._call(
            "add the new index to the write alias",
            lambda: client.indices.update_aliases(
                body={"actions": [{"add": {"index": self.new, "alias": index.write_alias}}]}
            ),
        )
        time.sleep(index.settle_seconds)
        self.written = 0
        self.deployments = 0
        self.rejected: list[RejectedWrite] = []
        self.caught_up = 0

    def write(self, writes: Sequence[IndexWrite]) -> None:
        self._write([entity_document(w) for w in writes])
        self.written += len(writes)

    def write_deployments(self, writes: Sequence[DeploymentsWrite]) -> None:
        self._write([deployments_document(w) for w in writes])
        self.deployments += len(writes)

    def _write(self, documents: list[BulkDocument]) -> None:
        try:
            self._index.bulk([self.new], documents)
        except WritesRejected as exc:
            self.rejected.extend(exc.rejected)
            log.warning("rebuild: %s", exc)

    def _catch_up(self) -> None:
        client = self._index.client
        for old in self.old:
            # A scroll sees what was refreshed: make every write the old index took before
            # the new one joined the write alias visible to it.
            client.indices.refresh(index=old)
            batch: list[BulkDocument] = []
            hits = scan(
                client,
                index=old,
                query={
                    "query": {"match_all": {}},
                    "version": True,
                    "_source": True,
                    "stored_fields": list(LONG_TEXTS),
                },
                size=1000,
                scroll="5m",
            )
            for hit in hits:
                # Only fields this mapping declares: an old index may hold ones it dropped.
                source = {k: v for k, v in hit["_source"].items() if k in _MAPPED}
                for name, values in (hit.get("fields") or {}).items():
                    if name in _MAPPED and values:
                        source[name] = values[0]
                # Entity documents of an index of mapping version 1 have no join field.
                source.setdefault("relation", ENTITY)
                key, version = str(hit["_id"]), int(hit["_version"])
                batch.append(
                    BulkDocument(
                        id=key,
                        version=version,
                        source=source,
                        ref=source.get("ref", key.removesuffix(_DEPLOYMENTS_ID)),
                        write_version=version,
                        routing=hit.get("_routing"),
                    )
                )
                if len(batch) >= 1000:
                    self._copy(batch)
                    batch = []
            if batch:
                self._copy(batch)

    def _copy(self, batch: list[BulkDocument]) -> None:
        try:
            self._index.bulk([self.new], batch)
        except WritesRejected as exc:
            self.rejected.extend(exc.rejected)
        self.caught_up += len(batch)

    def finish(self) -> str:
        index, client = self._index, self._index.client
        started = time.monotonic()
        self._index._call("catch up from the old index", self._catch_up)
        index._call(
            "restore refreshes",
            lambda: client.indices.put_settings(
                index=self.new, body={"index": {"refresh_interval": index.refresh_interval}}
            ),
        )
        index._call("refresh the new index", lambda: client.indices.refresh(index=self.new))
        actions: list[dict[str, Any]] = [{"add": {"index": self.new, "alias": index.alias}}]
        for old in self.old:
            actions.append({"remove": {"index": old, "alias": index.alias}})
            actions.append({"remove": {"index": old, "alias": index.write_alias}})
        index._call(
            "swap the aliases",
            lambda: client.indices.update_aliases(body={"actions": actions}),
        )
        time.sleep(index.settle_seconds)
        for old in self.old:
            index._call(
                "delete the old index",
                lambda old=old: client.indices.delete(
                    index=old, params={"ignore_unavailable": "true"}
                ),  # type: ignore[misc]
            )
        return (
            f"'{index.alias}' now points to {self.new} ({self.written} documents and "
            f"{self.deployments} entities' deployments from the store, "
            f"{self.caught_up} checked against {', '.join(self.old) or 'no old index'} in "
            f"{time.monotonic() - started:.1f}s; {len(self.rejected)} rejected)"
        )

    def abort(self) -> None:
        index, client = self._index, self._index.client
        try:
            client.indices.update_aliases(
                body={"actions": [{"remove": {"index": self.new, "alias": index.write_alias}}]}
            )
            client.indices.delete(index=self.new, params={"ignore_unavailable": "true"})
        except TransportError as exc:  # best effort: the next rebuild removes leftovers
            log.warning("could not remove %s after a failed rebuild: %s", self.new, exc)


def _deployment_clause(deployed: DeploymentFilter) -> dict[str, Any]:
    """Entity documents whose deployments have one environment meeting every filter."""
    conditions: list[dict[str, Any]] = []
    if deployed.environments:
        conditions.append({"terms": {"environments.environment": deployed.environments}})
        conditions.append({"exists": {"field": "environments.version"}})
    if deployed.statuses:
        conditions.append({"terms": {"environments.last_status": deployed.statuses}})
    if deployed.since is not None:
        conditions.append(
            {"range": {f"environments.{deployed.since_field}": {"gte": deployed.since}}}
        )
    return {
        "has_child": {
            "type": DEPLOYMENTS,
            "score_mode": "none",
            "query": {
                "nested": {
                    "path": "environments",
                    "score_mode": "none",
                    "query": {"bool": {"filter": conditions}},
                }
            },
        }
    }


def _merge_marks(fragments: list[str]) -> str | None:
    """One highlighted text from several highlights of the same (whole) value: the union
    of their marks. Fragments of different texts are not merged; the first wins."""
    if not fragments:
        return None
    plain = _MARK.sub(r"\1", fragments[0])
    marked = [False] * len(plain)
    for fragment in fragments:
        if _MARK.sub(r"\1", fragment) != plain:
            continue
        at = 0
        for match in _MARK.finditer(fragment):
            start = match.start() - at
            length = len(match.group(1))
            for i in range(start, start + length):
                marked[i] = True
            at += len(match.group(0)) - length
    out: list[str] = []
    inside = False
    for i, char in enumerate(plain):
        if marked[i] and not inside:
            out.append("<em>")
            inside = True
        elif not marked[i] and inside:
            out.append("</em>")
            inside = False
        out.append(char)
    if inside:
        out.append("</em>")
    return "".join(out)
