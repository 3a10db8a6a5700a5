"""The embedded search index: SQLite FTS5 in its own file beside the store.

Documents live in a plain table (filters and facets are SQL over indexed columns) and their
text in an FTS5 table sharing the row id; bm25 ranks with names weighted far above the rest
and an exact name match first. Versions are kept apart from documents so a deletion still
guards against an older write arriving after it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.index.cursor import decode_cursor, encode_cursor
from services.index.document import SearchDocument, name_words, normalise_filter_value
from services.index.port import (
    FACET_FIELDS,
    FacetCount,
    IndexWrite,
    InvalidQuery,
    SearchHit,
    SearchPage,
    SearchQuery,
    Suggestion,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,
    ref_key TEXT NOT NULL UNIQUE,
    ref TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS docs_owner ON docs (owner);
CREATE INDEX IF NOT EXISTS docs_system ON docs (system);
CREATE INDEX IF NOT EXISTS docs_name ON docs (name_lower);
CREATE INDEX IF NOT EXISTS docs_updated ON docs (updated_at);
CREATE TABLE IF NOT EXISTS doc_tags (
    doc_id INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, doc_id)
);
CREATE INDEX IF NOT EXISTS doc_tags_by_doc ON doc_tags (doc_id);
CREATE TABLE IF NOT EXISTS versions (
    ref_key TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    name, title, tags, description, owner, spec,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
"""

# bm25 column weights, in the order of docs_fts's columns.
_WEIGHTS = "10.0, 6.0, 4.0, 2.0, 2.0, 1.0"
_COLUMN_OF_FACET = {
    "kind": "kind",
    "type": "type",
    "lifecycle": "lifecycle",
    "owner": "owner",
    "system": "system",
    "namespace": "namespace",
}
_MAX_LIMIT = 500


def _fts_query(text: str) -> str:
    """Every word of the query must match, each as a prefix (quoted, so no FTS syntax leaks)."""
    words = name_words(text)
    return " AND ".join(f'"{word}"*' for word in words)


class Fts5SearchIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def ensure_ready(self) -> None:
        with self._write_lock:
            self._writer.executescript(_SCHEMA)

    def close(self) -> None:
        self._writer.close()

    # --- writes ---------------------------------------------------------------------

    def apply(self, writes: Sequence[IndexWrite]) -> None:
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
                    if held is not None and held[0] >= write.version:
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
        conn.execute("DELETE FROM doc_tags WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM docs WHERE id = ?", (row[0],))

    def _insert(self, conn: sqlite3.Connection, key: str, doc: SearchDocument) -> None:
        cursor = conn.execute(
            "INSERT INTO docs (ref_key, ref, kind, namespace, name, name_lower, title, "
            "description, owner, system, domain, type, lifecycle, tags, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                doc.ref,
                doc.kind,
                doc.namespace,
                doc.name,
                doc.name.lower(),
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
            "INSERT INTO docs_fts (rowid, name, title, tags, description, owner, spec) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                doc_id,
                f"{doc.name} {doc.name_text}",
                doc.title or "",
                " ".join(doc.tags),
                doc.description or "",
                " ".join(name_words(doc.owner or "")),
                doc.spec_text,
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO doc_tags (doc_id, tag) VALUES (?, ?)",
            [(doc_id, tag) for tag in doc.tags],
        )

    # --- reads ----------------------------------------------------------------------

    def count(self) -> int:
        return int(self._reader().execute("SELECT count(*) FROM docs").fetchone()[0])

    def search(self, query: SearchQuery) -> SearchPage:
        limit = max(1, min(query.limit, _MAX_LIMIT))
        offset = 0
        if query.cursor:
            state = decode_cursor(query.cursor)
            offset = int(state.get("offset", 0))
            if state.get("sort") != query.sort or offset < 0:
                raise InvalidQuery("cursor", "The cursor belongs to a different sort order.")
        base, params = self._hits_sql(query)
        conn = self._reader()
        order = {
            "relevance": "exact DESC, rank ASC, name_lower ASC, ref_key ASC",
            "name": "name_lower ASC, ref_key ASC",
            "updated": "updated_at DESC, ref_key ASC",
        }[query.sort]
        rows = conn.execute(
            f"WITH hits AS ({base}) SELECT ref, kind, namespace, name, title, description, "
            f"owner, system, type, lifecycle, tags, exact, rank FROM hits ORDER BY {order} "
            "LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        total = int(
            conn.execute(f"WITH hits AS ({base}) SELECT count(*) FROM hits", params).fetchone()[0]
        )
        items = [
            SearchHit(
                ref=r[0],
                kind=r[1],
                namespace=r[2],
                name=r[3],
                title=r[4],
                description=r[5],
                owner=r[6],
                system=r[7],
                type=r[8],
                lifecycle=r[9],
                tags=json.loads(r[10]),
                score=round(float(r[11]) * 100.0 - float(r[12]), 4),
            )
            for r in rows
        ]
        next_offset = offset + len(items)
        next_cursor = (
            encode_cursor({"offset": next_offset, "sort": query.sort})
            if next_offset < total and items
            else None
        )
        return SearchPage(
            items=items,
            total=total,
            facets=self._facets(conn, base, params),
            next_cursor=next_cursor,
        )

    def _hits_sql(self, query: SearchQuery) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for field_name, values in query.filters.items():
            if not values:
                continue
            if field_name not in FACET_FIELDS:
                raise InvalidQuery(field_name, f"Cannot filter on {field_name!r}.")
            normalised = [normalise_filter_value(field_name, v) for v in values]
            marks = ", ".join("?" for _ in normalised)
            if field_name == "tag":
                where.append(f"docs.id IN (SELECT doc_id FROM doc_tags WHERE tag IN ({marks}))")
            else:
                where.append(f"docs.{_COLUMN_OF_FACET[field_name]} IN ({marks})")
            params.extend(normalised)
        text = query.text.strip()
        match = _fts_query(text) if text else ""
        if match:
            source = (
                "docs JOIN (SELECT rowid AS doc_id, bm25(docs_fts, "
                f"{_WEIGHTS}) AS rank FROM docs_fts WHERE docs_fts MATCH ?) m "
                "ON m.doc_id = docs.id"
            )
            params.insert(0, match)
            exact = "(docs.name_lower = ?)"
            params.insert(0, text.lower())
            rank = "m.rank"
        else:
            source, exact, rank = "docs", "0", "0.0"
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT docs.*, {exact} AS exact, {rank} AS rank FROM {source} {clause}"
        return sql, params

    def _facets(
        self, conn: sqlite3.Connection, base: str, params: list[Any]
    ) -> dict[str, list[FacetCount]]:
        facets: dict[str, list[FacetCount]] = {}
        for facet, column in _COLUMN_OF_FACET.items():
            rows = conn.execute(
                f"WITH hits AS ({base}) SELECT {column}, count(*) FROM hits "
                f"WHERE {column} IS NOT NULL GROUP BY {column} ORDER BY count(*) DESC, {column}",
                params,
            ).fetchall()
            facets[facet] = [FacetCount(value=str(v), count=int(c)) for v, c in rows]
        rows = conn.execute(
            f"WITH hits AS ({base}) SELECT t.tag, count(*) FROM doc_tags t "
            "JOIN hits ON hits.id = t.doc_id GROUP BY t.tag ORDER BY count(*) DESC, t.tag",
            params,
        ).fetchall()
        facets["tag"] = [FacetCount(value=str(v), count=int(c)) for v, c in rows]
        return facets

    def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        text = prefix.strip().lower()
        if not text:
            return []
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = (
            self._reader()
            .execute(
                "SELECT ref, name, title, kind FROM docs WHERE name_lower LIKE ? ESCAPE '\\' "
                "ORDER BY length(name_lower), name_lower LIMIT ?",
                (escaped + "%", limit),
            )
            .fetchall()
        )
        found = [Suggestion(ref=r[0], name=r[1], title=r[2], kind=r[3]) for r in rows]
        if len(found) < limit and _fts_query(text):
            seen = {s.ref for s in found}
            more = (
                self._reader()
                .execute(
                    "SELECT docs.ref, docs.name, docs.title, docs.kind FROM docs_fts "
                    "JOIN docs ON docs.id = docs_fts.rowid WHERE docs_fts MATCH ? "
                    "ORDER BY bm25(docs_fts, 10.0, 6.0, 0, 0, 0, 0) LIMIT ?",
                    ("{name title} : " + _fts_query(text), limit * 2),
                )
                .fetchall()
            )
            for r in more:
                if r[0] not in seen and len(found) < limit:
                    found.append(Suggestion(ref=r[0], name=r[1], title=r[2], kind=r[3]))
                    seen.add(r[0])
        return found
