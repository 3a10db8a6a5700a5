"""Keyset pagination cursors shared by the index adapters.

A cursor carries the sort key of the last hit of a page (search_after style) and a
fingerprint of the query it belongs to. The next page starts strictly after that key, so a
document that did not change while a client pages is seen exactly once, however many others
are written or deleted meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from services.index.port import InvalidQuery, SearchQuery

_NOT_OURS = "The cursor is not one this API returned; start again without it."


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidQuery("cursor", _NOT_OURS) from exc
    if not isinstance(state, dict):
        raise InvalidQuery("cursor", _NOT_OURS)
    return state


def query_fingerprint(query: SearchQuery) -> str:
    shape = {
        "text": query.text.strip(),
        "filters": {k: sorted(v) for k, v in sorted(query.filters.items()) if v},
        "sort": query.sort,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


def keyset_cursor(query: SearchQuery, key: list[Any]) -> str:
    return encode_cursor({"q": query_fingerprint(query), "after": key})


def cursor_key(query: SearchQuery) -> list[Any] | None:
    """The sort key to start after, or None for the first page."""
    if not query.cursor:
        return None
    state = decode_cursor(query.cursor)
    key = state.get("after")
    if not isinstance(key, list) or not key:
        raise InvalidQuery("cursor", _NOT_OURS)
    if state.get("q") != query_fingerprint(query):
        raise InvalidQuery(
            "cursor",
            "The cursor belongs to a different query, filter or sort; start again without it.",
        )
    expected = {"relevance": (float, str, str), "name": (str, str), "updated": (float, str)}
    types = expected[query.sort]
    if len(key) != len(types) or not all(
        isinstance(v, t) or (t is float and isinstance(v, int))
        for v, t in zip(key, types, strict=False)
    ):
        raise InvalidQuery("cursor", _NOT_OURS)
    return [float(v) if t is float else v for v, t in zip(key, types, strict=True)]
