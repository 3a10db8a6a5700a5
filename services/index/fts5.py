"""The embedded search index: SQLite FTS5 in its own file beside the store.

Documents live in a plain table (filters, sorts and facets are SQL over indexed columns) and
their text in an FTS5 table sharing the row id. The FTS5 text has every camelCase boundary
marked with U+2063, which the tokenizer treats as a separator, so `unicode61` splits words
exactly as `document.name_words` (and OpenSearch's analyzer) does.

Relevance follows the port's contract: per query word the weight of the best way it matches
(a CASE over the FTS5 row sets of each way), plus the exact-name bonus; typos are found
through `name_terms`, the deletion neighbourhood of every word ever seen in a name or title.
Versions are kept apart from documents so a deletion still guards against an older write
arriving after it.

A rebuild (`cairn reindex`) re-derives every document from the store in place, in short
transactions, so searches (WAL readers) and the projection's writes go on meanwhile.
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.index.cursor import cursor_key, keyset_cursor
from services.index.document import (
    DeployedEnvironment,
    SearchDocument,
    camel_cuts,
    name_key,
    name_words,
    normalise_filter_value,
    query_words,
)
from services.index.matching import deletions, excerpt, highlight, typo_applies, within_one_edit
from services.index.port import (
    DEPLOYMENT_FILTERS,
    EXACT_NAME_BONUS,
    FACET_FIELDS,
    FACET_SIZE,
    TYPO_MIN_LENGTH,
    WEIGHTS,
    DeploymentFilter,
    DeploymentsWrite,
    FacetCount,
    IndexWrite,
    InvalidQuery,
    SearchHit,
    SearchPage,
    SearchQuery,
    Suggestion,
    deployment_filter,
)

SCHEMA_VERSION = 3
WORD_BREAK = "\u2063"  # INVISIBLE SEPARATOR: a separator for the tokenizer only

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,
    ref_key TEXT NOT NULL UNIQUE,
    ref TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    name_key TEXT NOT NULL,
    -- the words of the name, title and tags, each between spaces (" payment gateway "):
    -- scoring tests them with instr() instead of one FTS5 query per way a word can match
    name_words TEXT NOT NULL,
    title_words TEXT NOT NULL,
    tag_words TEXT NOT NULL,
    title TEXT,
    description TEXT,
    owner TEXT,
    system TEXT,
    domain TEXT,
    type TEXT,
    lifecycle TEXT,
    tags TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_kind ON docs (kind);
CREATE INDEX IF NOT EXISTS docs_type ON docs (type);
CREATE INDEX IF NOT EXISTS docs_lifecycle ON docs (lifecycle);
CREATE INDEX IF NOT EXISTS docs_owner ON docs (owner);
CREATE INDEX IF NOT EXISTS docs_system ON docs (system);
CREATE INDEX IF NOT EXISTS docs_domain ON docs (domain);
CREATE INDEX IF NOT EXISTS docs_namespace ON docs (namespace);
CREATE INDEX IF NOT EXISTS docs_name ON docs (name_lower, ref_key);
CREATE INDEX IF NOT EXISTS docs_name_key ON docs (name_key);
CREATE INDEX IF NOT EXISTS docs_updated ON docs (updated_at, ref_key);
CREATE TABLE IF NOT EXISTS doc_values (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    doc_id INTEGER NOT NULL,
    PRIMARY KEY (field, value, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_values_by_doc ON doc_values (doc_id);
CREATE TABLE IF NOT EXISTS versions (
    ref_key TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS name_vocab (term TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS name_terms (
    variant TEXT NOT NULL,
    term TEXT NOT NULL,
    PRIMARY KEY (variant, term)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    name, title, tags, description, related, spec, definition,
    tokenize = "unicode61 remove_diacritics 2 separators '{WORD_BREAK}'",
    prefix = '2 3'
);
"""
# Deployments per entity and environment (the `cairn.deployments` projection), kept apart
# from `docs` so entity changes, deletions and rebuilds leave them alone.
_DEPLOYMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_deployments (
    ref_key TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT,
    deployed_at REAL,
    last_status TEXT NOT NULL,
    last_version TEXT,
    last_at REAL NOT NULL,
    PRIMARY KEY (ref_key, environment)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_deployments_by_environment
    ON doc_deployments (environment, deployed_at);
CREATE TABLE IF NOT EXISTS deployment_versions (
    ref_key TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
"""
_OLD_TABLES = ("docs_fts", "docs", "doc_tags", "doc_values", "versions", "name_vocab", "name_terms")

# Facets that are columns of `docs`; `tag` and `label` live in `doc_values`.
_COLUMN_FACETS = ("kind", "type", "lifecycle", "owner", "system", "domain", "namespace")
_VALUE_FACETS = {"tag": "tag", "label": "label"}
_DEFINITION_COLUMN = 6
_MAX_LIMIT = 500
_SNIPPET_START, _SNIPPET_END = "\x02", "\x03"
_FACET_CACHE_SIZE = 64


def _marked(text: str) -> str:
    """Text with its camelCase boundaries marked for the tokenizer."""
    if not any(c.isupper() for c in text):
        return text
    out: list[str] = []
    word: list[str] = []

    def flush() -> None:
        run = "".join(word)
        at = 0
        for cut in camel_cuts(run):
            out.append(run[at:cut])
            out.append(WORD_BREAK)
            at = cut
        out.append(run[at:])
        word.clear()

    for c in text:
        if c.isalnum():
            word.append(c)
        else:
            flush()
            out.append(c)
    flush()
    return "".join(out)


def _spaced(words: list[str]) -> str:
    return " " + " ".join(words) + " "


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


class Fts5SearchIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-16000")
        # Reads through one shared mapping instead of a page cache per reader thread.
        conn.execute("PRAGMA mmap_size=268435456")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, score REAL, "
                "kind TEXT, type TEXT, lifecycle TEXT, owner TEXT, system TEXT, domain TEXT, "
                "namespace TEXT, name_lower TEXT, ref_key TEXT, updated_at REAL)"
            )
            self._local.conn = conn
            self._local.facets = OrderedDict()
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def ensure_ready(self) -> None:
        with self._write_lock:
            version = self._writer.execute("PRAGMA user_version").fetchone()[0]
            has_docs = self._writer.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'docs'"
            ).fetchone()
            if has_docs and version != SCHEMA_VERSION:
                # An index of an older layout: start empty; `cairn reindex` (or the start-up
                # fill from the store, see services/index/reindex.py) fills it again.
                for table in _OLD_TABLES:
                    self._writer.execute(f"DROP TABLE IF EXISTS {table}")
            self._writer.executescript(_SCHEMA)
            self._writer.executescript(_DEPLOYMENT_SCHEMA)
            self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()

    # --- writes ---------------------------------------------------------------------

    def apply(self, writes: Sequence[IndexWrite]) -> None:
        self._apply(writes, rewrite_equal=False)

    def _apply(self, writes: Sequence[IndexWrite], *, rewrite_equal: bool) -> None:
        newest: dict[str, IndexWrite] = {}
        for write in writes:
            key = write.ref.lower()
            if key not in newest or newest[key].version < write.version:
                newest[key] = write
        if not newest:
            return
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                for key, write in newest.items():
                    held = conn.execute(
                        "SELECT version FROM versions WHERE ref_key = ?", (key,)
                    ).fetchone()
                    if held is not None and (
                        held[0] > write.version or (held[0] == write.version and not rewrite_equal)
                    ):
                        continue
                    conn.execute(
                        "INSERT INTO versions (ref_key, version) VALUES (?, ?) "
                        "ON CONFLICT (ref_key) DO UPDATE SET version = excluded.version",
                        (key, write.version),
                    )
                    self._remove(conn, key)
                    if write.document is not None:
                        self._insert(conn, key, write.document)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _remove(self, conn: sqlite3.Connection, key: str) -> None:
        row = conn.execute("SELECT id FROM docs WHERE ref_key = ?", (key,)).fetchone()
        if row is None:
            return
        conn.execute("DELETE FROM docs_fts WHERE rowid = ?", (row[0],))
        conn.execute("DELETE FROM doc_values WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM docs WHERE id = ?", (row[0],))

    def _insert(self, conn: sqlite3.Connection, key: str, doc: SearchDocument) -> None:
        cursor = conn.execute(
            "INSERT INTO docs (ref_key, ref, kind, namespace, name, name_lower, name_key, "
            "name_words, title_words, tag_words, title, description, owner, system, domain, "
            "type, lifecycle, tags, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                doc.ref,
                doc.kind,
                doc.namespace,
                doc.name,
                doc.name.lower(),
                doc.name_key,
                _spaced(name_words(doc.name)),
                _spaced(name_words(doc.title or "")),
                _spaced(name_words(" ".join(doc.tags))),
                doc.title,
                doc.description,
                doc.owner,
                doc.system,
                doc.domain,
                doc.type,
                doc.lifecycle,
                json.dumps(doc.tags),
                doc.updated_at,
            ),
        )
        doc_id = cursor.lastrowid
        conn.execute(
            "INSERT INTO docs_fts (rowid, name, title, tags, description, related, spec, "
            "definition) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc_id,
                _marked(doc.name),
                _marked(doc.title or ""),
                _marked(" ".join(doc.tags)),
                _marked(doc.description or ""),
                _marked(doc.related_text),
                _marked(doc.spec_text),
                _marked(doc.definition_text),
            ),
        )
        values = [("tag", tag, doc_id) for tag in doc.tags]
        values += [("label", pair, doc_id) for pair in doc.label_pairs]
        if values:
            conn.executemany(
                "INSERT OR IGNORE INTO doc_values (field, value, doc_id) VALUES (?, ?, ?)", values
            )
        for word in set(name_words(doc.name) + name_words(doc.title or "")):
            # Only words a typo can reach: 3+ letters (a deletion from a 4-letter query
            # word), no digits (typo_applies).
            if len(word) < TYPO_MIN_LENGTH - 1 or any(c.isdigit() for c in word):
                continue
            if conn.execute("INSERT OR IGNORE INTO name_vocab (term) VALUES (?)", (word,)).rowcount:
                conn.executemany(
                    "INSERT OR IGNORE INTO name_terms (variant, term) VALUES (?, ?)",
                    [(variant, word) for variant in deletions(word)],
                )

    def apply_deployments(self, writes: Sequence[DeploymentsWrite]) -> None:
        newest: dict[str, DeploymentsWrite] = {}
        for write in writes:
            key = write.ref.lower()
            if key not in newest or newest[key].version < write.version:
                newest[key] = write
        if not newest:
            return
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                for key, write in newest.items():
                    held = conn.execute(
                        "SELECT version FROM deployment_versions WHERE ref_key = ?", (key,)
                    ).fetchone()
                    if held is not None and held[0] >= write.version:
                        continue
                    conn.execute(
                        "INSERT INTO deployment_versions (ref_key, version) VALUES (?, ?) "
                        "ON CONFLICT (ref_key) DO UPDATE SET version = excluded.version",
                        (key, write.version),
                    )
                    conn.execute("DELETE FROM doc_deployments WHERE ref_key = ?", (key,))
                    conn.executemany(
                        "INSERT OR REPLACE INTO doc_deployments (ref_key, environment, version, "
                        "deployed_at, last_status, last_version, last_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                key,
                                e.environment,
                                e.version,
                                e.deployed_at,
                                e.last_status,
                                e.last_version,
                                e.last_at,
                            )
                            for e in write.environments
                        ],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _with_deployments(self, items: list[SearchHit]) -> list[SearchHit]:
        if not items:
            return items
        keys = [item.ref.lower() for item in items]
        marks = ", ".join("?" for _ in keys)
        found: dict[str, list[DeployedEnvironment]] = {}
        for key, *values in self._reader().execute(
            "SELECT ref_key, environment, version, deployed_at, last_status, last_version, "
            f"last_at FROM doc_deployments WHERE ref_key IN ({marks}) ORDER BY environment",
            keys,
        ):
            found.setdefault(key, []).append(DeployedEnvironment(*values))
        return [
            replace(item, deployments=found[item.ref.lower()])
            if item.ref.lower() in found
            else item
            for item in items
        ]

    def optimize(self) -> None:
        with self._write_lock:
            self._writer.execute("INSERT INTO docs_fts (docs_fts) VALUES ('optimize')")

    # --- reads ----------------------------------------------------------------------

    def count(self) -> int:
        return int(self._reader().execute("SELECT count(*) FROM docs").fetchone()[0])

    def search(self, query: SearchQuery) -> SearchPage:
        limit = max(1, min(query.limit, _MAX_LIMIT))
        after = cursor_key(query)
        where, params = self._filters(query.filters)
        words = query_words(query.text)
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            # One row more than asked tells whether a next page exists.
            if words:
                page, total, facets, match = self._text_search(
                    conn, query, words, where, params, limit + 1, after
                )
            else:
                page, total, facets = self._browse(conn, query, where, params, limit + 1, after)
                match = None
            more = len(page) > limit
            page = page[:limit]
            highlights = (
                self._highlights(conn, page, words, match) if query.highlight and words else {}
            )
        finally:
            conn.execute("COMMIT")
        items = self._with_deployments(
            [self._hit(row, highlights.get(row["id"], {})) for row in page]
        )
        next_cursor = None
        if more:
            last = page[-1]
            key: list[Any] = {
                "relevance": [float(last["score"]), last["name_lower"], last["ref_key"]],
                "name": [last["name_lower"], last["ref_key"]],
                "updated": [float(last["updated_at"]), last["ref_key"]],
            }[query.sort]
            next_cursor = keyset_cursor(query, key)
        return SearchPage(items=items, total=total, facets=facets, next_cursor=next_cursor)

    def _filters(self, filters: dict[str, list[str]]) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for field_name, values in filters.items():
            if not values or field_name in DEPLOYMENT_FILTERS:
                continue
            if field_name not in FACET_FIELDS:
                raise InvalidQuery(
                    field_name,
                    f"Cannot filter on {field_name!r}; filter on {', '.join(FACET_FIELDS)}.",
                )
            normalised = sorted({normalise_filter_value(field_name, v) for v in values})
            marks = ", ".join("?" for _ in normalised)
            if field_name in _VALUE_FACETS:
                where.append(
                    "docs.id IN (SELECT doc_id FROM doc_values WHERE field = ? "
                    f"AND value IN ({marks}))"
                )
                params.append(_VALUE_FACETS[field_name])
            else:
                where.append(f"docs.{field_name} IN ({marks})")
            params.extend(normalised)
        deployed = deployment_filter(filters)
        if deployed is not None:
            clause, values = _deployment_clause(deployed)
            where.append(clause)
            params.extend(values)
        return where, params

    def _typo_candidates(self, conn: sqlite3.Connection, word: str) -> list[str]:
        if not typo_applies(word):
            return []
        variants = sorted(deletions(word))
        marks = ", ".join("?" for _ in variants)
        rows = conn.execute(
            f"SELECT DISTINCT term FROM name_terms WHERE variant IN ({marks})", variants
        ).fetchall()
        return sorted(t for (t,) in rows if t != word and within_one_edit(t, word))

    def _text_search(
        self,
        conn: sqlite3.Connection,
        query: SearchQuery,
        words: list[str],
        where: list[str],
        params: list[Any],
        limit: int,
        after: list[Any] | None,
    ) -> tuple[list[sqlite3.Row], int, dict[str, list[FacetCount]], str]:
        ways: list[str] = []
        score_parts: list[str] = []
        score_params: list[Any] = []
        for word in words:
            phrase = _phrase(word)
            typos = self._typo_candidates(conn, word)
            typo_expr = (
                "{name title} : (" + " OR ".join(_phrase(t) for t in typos) + ")" if typos else None
            )
            way = f"{phrase} OR {{name title}} : {phrase}*"
            if typo_expr:
                way += f" OR {typo_expr}"
            ways.append(f"({way})")
            # The ways a word matches, best first. Name, title and tag words are tested on
            # the row (instr over its space-separated words); description and related need
            # FTS5, and whatever else matched the word is spec or definition text.
            nt = "(docs.name_words || docs.title_words)"
            cases = [
                ("instr(docs.name_words, ?) > 0", [f" {word} "], WEIGHTS["name"]),
                ("instr(docs.title_words, ?) > 0", [f" {word} "], WEIGHTS["title"]),
                (f"instr({nt}, ?) > 0", [f" {word}"], WEIGHTS["name_prefix"]),
                ("instr(docs.tag_words, ?) > 0", [f" {word} "], WEIGHTS["tags"]),
            ]
            if typos:
                cases.append(
                    (
                        "(" + " OR ".join(f"instr({nt}, ?) > 0" for _ in typos) + ")",
                        [f" {t} " for t in typos],
                        WEIGHTS["name_typo"],
                    )
                )
            for column, weight in (("description", "description"), ("related", "related")):
                cases.append(
                    (
                        "docs.id IN (SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?)",
                        [f"{column} : {phrase}"],
                        WEIGHTS[weight],
                    )
                )
            whens = " ".join(f"WHEN {test} THEN {weight}" for test, _, weight in cases)
            score_parts.append(f"(CASE {whens} ELSE {WEIGHTS['spec']} END)")
            score_params.extend(p for _, params_, _ in cases for p in params_)
        match = " AND ".join(ways)
        score = f"(CASE WHEN docs.name_key = ? THEN {EXACT_NAME_BONUS} ELSE 0 END) + " + " + ".join(
            score_parts
        )
        filters = "".join(f" AND {w}" for w in where)
        hits_params = [name_key(query.text), *score_params, match, *params]
        order, keyset, key_params = self._order(query.sort, after, "h")
        cache_key, summary = self._cached_summary(conn, query)
        conn.row_factory = sqlite3.Row
        try:
            if summary is not None:
                # Total and facets known for this state of the index: only the page is
                # needed, scored and sorted without materialising the hits.
                total, facets = summary
                page = conn.execute(
                    "SELECT docs.*, h.score AS score FROM (SELECT * FROM (SELECT docs.id AS id, "
                    f"{score} AS score, docs.name_lower AS name_lower, docs.ref_key AS ref_key, "
                    "docs.updated_at AS updated_at FROM docs_fts CROSS JOIN docs "
                    f"ON docs.id = docs_fts.rowid WHERE docs_fts MATCH ?{filters}) h "
                    f"WHERE {keyset} ORDER BY {order} LIMIT ?) h JOIN docs ON docs.id = h.id "
                    f"ORDER BY {order}",
                    [*hits_params, *key_params, limit],
                ).fetchall()
                return page, total, facets, match
            conn.execute("DELETE FROM temp.hits")
            conn.execute(
                f"INSERT INTO temp.hits SELECT docs.id, {score}, docs.kind, docs.type, "
                "docs.lifecycle, docs.owner, docs.system, docs.domain, docs.namespace, "
                "docs.name_lower, docs.ref_key, docs.updated_at "
                # CROSS JOIN keeps the full-text match the outer loop: with a filter SQLite
                # would otherwise walk an index of docs and run the match once per row.
                "FROM docs_fts CROSS JOIN docs ON docs.id = docs_fts.rowid "
                f"WHERE docs_fts MATCH ?{filters}",
                hits_params,
            )
            total = int(conn.execute("SELECT count(*) FROM temp.hits").fetchone()[0])
            facets = self._facets(conn, "temp.hits h", "h.id")
            self._remember_summary(cache_key, total, facets)
            # Sort the narrow hits first; join the wide document rows for the page only.
            page = conn.execute(
                "SELECT docs.*, h.score AS score FROM (SELECT id, score, name_lower, ref_key, "
                f"updated_at FROM temp.hits h WHERE {keyset} ORDER BY {order} LIMIT ?) h "
                f"JOIN docs ON docs.id = h.id ORDER BY {order}",
                [*key_params, limit],
            ).fetchall()
        finally:
            conn.row_factory = None
        return page, total, facets, match

    def _cached_summary(
        self, conn: sqlite3.Connection, query: SearchQuery
    ) -> tuple[str | None, tuple[int, dict[str, list[FacetCount]]] | None]:
        """Total and facets of an earlier identical query, if the index has not changed since.

        `PRAGMA data_version` changes whenever another connection commits, so an entry is
        only used for the exact state it was computed on. Deployment filters with relative
        times are never cached (their meaning moves with the clock).
        """
        if any(query.filters.get(name) for name in DEPLOYMENT_FILTERS):
            return None, None
        data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        key = json.dumps(
            [
                data_version,
                query_words(query.text),
                name_key(query.text),
                sorted((k, sorted(v)) for k, v in query.filters.items() if v),
            ]
        )
        cache: OrderedDict[str, tuple[int, dict[str, list[FacetCount]]]] = self._local.facets
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
        return key, found

    def _remember_summary(
        self, key: str | None, total: int, facets: dict[str, list[FacetCount]]
    ) -> None:
        if key is None:
            return
        cache: OrderedDict[str, tuple[int, dict[str, list[FacetCount]]]] = self._local.facets
        cache[key] = (total, facets)
        while len(cache) > _FACET_CACHE_SIZE:
            cache.popitem(last=False)

    def _browse(
        self,
        conn: sqlite3.Connection,
        query: SearchQuery,
        where: list[str],
        params: list[Any],
        limit: int,
        after: list[Any] | None,
    ) -> tuple[list[sqlite3.Row], int, dict[str, list[FacetCount]]]:
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        cache_key, summary = self._cached_summary(conn, query)
        if summary is not None:
            total, facets = summary
        else:
            total = int(conn.execute(f"SELECT count(*) FROM docs {clause}", params).fetchone()[0])
            if where:
                conn.execute("DELETE FROM temp.hits")
                conn.execute(
                    "INSERT INTO temp.hits SELECT docs.id, 0, docs.kind, docs.type, "
                    "docs.lifecycle, docs.owner, docs.system, docs.domain, docs.namespace, "
                    f"docs.name_lower, docs.ref_key, docs.updated_at FROM docs {clause}",
                    params,
                )
                facets = self._facets(conn, "temp.hits h", "h.id")
            else:
                facets = self._facets(conn, "docs h", None)
            self._remember_summary(cache_key, total, facets)
        order, keyset, key_params = self._order(query.sort, after, "docs")
        conditions = " AND ".join([*where, keyset])
        conn.row_factory = sqlite3.Row
        try:
            page = conn.execute(
                f"SELECT docs.*, 0.0 AS score FROM docs WHERE {conditions} "
                f"ORDER BY {order} LIMIT ?",
                [*params, *key_params, limit],
            ).fetchall()
        finally:
            conn.row_factory = None
        return page, total, facets

    @staticmethod
    def _order(sort: str, after: list[Any] | None, table: str) -> tuple[str, str, list[Any]]:
        """ORDER BY terms, the keyset condition ("1" on a first page), and its parameters."""
        if sort == "relevance" and table != "h":
            # Without query text every score is 0: relevance is the name order (indexed).
            order = f"{table}.name_lower ASC, {table}.ref_key ASC"
            if after is None:
                return order, "1", []
            return order, f"({table}.name_lower, {table}.ref_key) > (?, ?)", after[1:]
        if sort == "relevance":
            score = "h.score"
            order = f"{score} DESC, {table}.name_lower ASC, {table}.ref_key ASC"
            if after is None:
                return order, "1", []
            keyset = (
                f"({score} < ? OR ({score} = ? AND ({table}.name_lower, {table}.ref_key) > (?, ?)))"
            )
            return order, keyset, [after[0], after[0], after[1], after[2]]
        if sort == "name":
            order = f"{table}.name_lower ASC, {table}.ref_key ASC"
            if after is None:
                return order, "1", []
            return order, f"({table}.name_lower, {table}.ref_key) > (?, ?)", after
        order = f"{table}.updated_at DESC, {table}.ref_key ASC"
        if after is None:
            return order, "1", []
        keyset = f"({table}.updated_at < ? OR ({table}.updated_at = ? AND {table}.ref_key > ?))"
        return order, keyset, [after[0], after[0], after[1]]

    def _facets(
        self, conn: sqlite3.Connection, source: str, hit_id: str | None
    ) -> dict[str, list[FacetCount]]:
        facets: dict[str, list[FacetCount]] = {}
        for facet in _COLUMN_FACETS:
            rows = conn.execute(
                f"SELECT h.{facet}, count(*) FROM {source} WHERE h.{facet} IS NOT NULL "
                f"GROUP BY h.{facet} ORDER BY count(*) DESC, h.{facet} LIMIT {FACET_SIZE}"
            ).fetchall()
            facets[facet] = [FacetCount(value=str(v), count=int(c)) for v, c in rows]
        # Tags and labels in one pass over the hits' values.
        if hit_id is None:
            sql = "SELECT field, value, count(*) FROM doc_values GROUP BY field, value"
        else:
            sql = (
                f"SELECT v.field, v.value, count(*) FROM {source} JOIN doc_values v "
                f"ON v.doc_id = {hit_id} GROUP BY v.field, v.value"
            )
        counted: dict[str, list[tuple[str, int]]] = {}
        for stored, value, count in conn.execute(sql):
            counted.setdefault(stored, []).append((str(value), int(count)))
        for facet, stored in _VALUE_FACETS.items():
            best = sorted(counted.get(stored, []), key=lambda vc: (-vc[1], vc[0]))[:FACET_SIZE]
            facets[facet] = [FacetCount(value=v, count=c) for v, c in best]
        return facets

    def _highlights(
        self,
        conn: sqlite3.Connection,
        page: list[sqlite3.Row],
        words: list[str],
        match: str | None,
    ) -> dict[int, dict[str, list[str]]]:
        found: dict[int, dict[str, list[str]]] = {}
        for row in page:
            marks: dict[str, list[str]] = {}
            for field_name, loose in (("name", True), ("title", True), ("description", False)):
                text = row[field_name]
                marked = highlight(text, words, loose=loose) if text else None
                if marked is not None:
                    marks[field_name] = [excerpt(marked)]
            tags = [
                marked
                for marked in (highlight(t, words, loose=False) for t in json.loads(row["tags"]))
                if marked
            ]
            if tags:
                marks["tags"] = tags
            found[row["id"]] = marks
        if match and page:
            ids = [row["id"] for row in page]
            marks_sql = ", ".join("?" for _ in ids)
            rows = conn.execute(
                f"SELECT rowid, snippet(docs_fts, {_DEFINITION_COLUMN}, ?, ?, '…', 16) "
                f"FROM docs_fts WHERE docs_fts MATCH ? AND rowid IN ({marks_sql})",
                [_SNIPPET_START, _SNIPPET_END, match, *ids],
            ).fetchall()
            for rowid, snippet in rows:
                if snippet and _SNIPPET_START in snippet:
                    found[rowid]["definition"] = [_snippet_html(snippet)]
        return found

    @staticmethod
    def _hit(row: sqlite3.Row, highlights: dict[str, list[str]]) -> SearchHit:
        return SearchHit(
            ref=row["ref"],
            kind=row["kind"],
            namespace=row["namespace"],
            name=row["name"],
            title=row["title"],
            description=row["description"],
            owner=row["owner"],
            system=row["system"],
            type=row["type"],
            lifecycle=row["lifecycle"],
            tags=json.loads(row["tags"]),
            score=float(row["score"]),
            updated_at=float(row["updated_at"]),
            highlights=highlights,
        )

    def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        words = name_words(prefix)
        if not words:
            return []
        key = name_key(prefix)
        conn = self._reader()
        rows = conn.execute(
            "SELECT ref, name, title, kind, ref_key FROM docs "
            "WHERE name_key >= ? AND name_key < ? "
            "ORDER BY length(name_lower), name_lower, ref_key LIMIT ?",
            (key, key + "\U0010ffff", limit),
        ).fetchall()
        found = [Suggestion(ref=r[0], name=r[1], title=r[2], kind=r[3]) for r in rows]
        if len(found) < limit:
            seen = {r[4] for r in rows}
            match = "{name title} : (" + " AND ".join(_phrase(w) + "*" for w in words) + ")"
            more = conn.execute(
                "SELECT docs.ref, docs.name, docs.title, docs.kind, docs.ref_key FROM docs_fts "
                "JOIN docs ON docs.id = docs_fts.rowid WHERE docs_fts MATCH ? "
                "ORDER BY length(docs.name_lower), docs.name_lower, docs.ref_key LIMIT ?",
                (match, limit + len(seen)),
            ).fetchall()
            for r in more:
                if r[4] not in seen and len(found) < limit:
                    found.append(Suggestion(ref=r[0], name=r[1], title=r[2], kind=r[3]))
                    seen.add(r[4])
        return found

    # --- rebuild ----------------------------------------------------------------------

    def begin_rebuild(self) -> Fts5Rebuild:
        return Fts5Rebuild(self)


class Fts5Rebuild:
    """Rebuilds the FTS5 index in place: every document re-derived from the store.

    Each batch is its own short transaction, so the projection's writes interleave and WAL
    readers keep searching the committed state. A store version equal to the index's is
    rewritten (that is what re-deriving means); an older one is skipped, so a change the
    projection applied meanwhile is never undone. Documents the store does not have are
    left to the projection (a deletion it has not applied yet, or a change the store has
    not caught up with).

    Deployments live in their own tables, which a rebuild leaves as they are; the store's
    environments (`write_deployments`, at `STORE_VERSION`) fill in only entities the index
    holds none for (e.g. an index file that was lost), never replacing the projection's.
    """

    def __init__(self, index: Fts5SearchIndex) -> None:
        self._index = index
        self.written = 0
        self.deployments = 0

    def write(self, writes: Sequence[IndexWrite]) -> None:
        self._index._apply(writes, rewrite_equal=True)
        self.written += len(writes)

    def write_deployments(self, writes: Sequence[DeploymentsWrite]) -> None:
        self._index.apply_deployments(writes)
        self.deployments += len(writes)

    def finish(self) -> str:
        self._index.optimize()
        return (
            f"{self._index.path} rebuilt in place ({self.written} documents and "
            f"{self.deployments} entities' deployments from the store)"
        )

    def abort(self) -> None:
        """Nothing to undo: every batch written is a valid state of the index."""


def _deployment_clause(deployed: DeploymentFilter) -> tuple[str, list[Any]]:
    """`docs` rows with one environment meeting every deployment filter."""
    conditions: list[str] = []
    params: list[Any] = []
    if deployed.environments:
        marks = ", ".join("?" for _ in deployed.environments)
        conditions.append(f"environment IN ({marks}) AND version IS NOT NULL")
        params.extend(deployed.environments)
    if deployed.statuses:
        marks = ", ".join("?" for _ in deployed.statuses)
        conditions.append(f"last_status IN ({marks})")
        params.extend(deployed.statuses)
    if deployed.since is not None:
        conditions.append(f"{deployed.since_field} >= ?")
        params.append(deployed.since)
    return (
        f"docs.ref_key IN (SELECT ref_key FROM doc_deployments WHERE {' AND '.join(conditions)})",
        params,
    )


def _snippet_html(snippet: str) -> str:
    text = html.escape(snippet.replace(WORD_BREAK, ""))
    return text.replace(_SNIPPET_START, "<em>").replace(_SNIPPET_END, "</em>")
