"""An entity flattened into search rows, the way Backstage's stitcher builds its `search` table.

Every leaf of the entity becomes a `(key, value)` row: the key is the dotted path, lower-cased
(`spec.lifecycle`, `metadata.annotations.backstage.io/techdocs-ref`); arrays are descended,
so each item is a row of the array's key, and a string item `x` also yields the row
`<key>.x = true` (so `metadata.tags.java` asks "is java one of the tags"). `metadata.name`,
`metadata.namespace` and `metadata.uid` are always present, `metadata.etag`, `relations`,
`status` and `attachments` never (relations are matched through the relations table).
Values are compared lower-cased; the original is kept for facets. A key longer than 200
characters is skipped and a value longer than 200 characters is stored as null, as in
Backstage. Pure: no database here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SPECIAL_KEYS = frozenset(
    {
        "attachments",
        "relations",
        "status",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "metadata.etag",
    }
)
# Keys every entity has one row of: the envelope's fields (strings, as validation requires)
# and the metadata keys written once above (unless metadata repeats such a key in another
# case, which no valid descriptor does). Counting their rows counts entities.
SINGLE_ROW_KEYS = frozenset({"apiversion", "kind", "metadata.name", "metadata.uid"})
# Of those, the keys whose value validation keeps within MAX_VALUE_LENGTH (a name or kind
# of at most 63 characters, a uid): every entity has one row of each, never null.
ALWAYS_VALUED_KEYS = frozenset({"kind", "metadata.name", "metadata.uid"})
# The keys Backstage's catalog table searches (its full-text filter's fields): their rows
# are also kept in a narrow table that finds substrings fast (tables.TextRow).
TEXT_KEYS = frozenset({"metadata.name", "metadata.title", "spec.profile.displayname"})
MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 200
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class SearchEntry:
    key: str
    value: str | None  # lower-cased, for matching and ordering
    original_value: str | None  # as written, for facets


def js_string(value: object) -> str:
    """`String(value)` as JavaScript writes a JSON scalar: `true`, `7`, `1.5`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def _traverse(root: Any) -> list[tuple[str, Any]]:
    output: list[tuple[str, Any]] = []
    _visit("", root, output, set())
    return output


def _visit(
    path: str, current: Any, output: list[tuple[str, Any]], seen_item_keys: set[str]
) -> None:
    # A module function, not a closure calling itself: that would be a reference cycle per
    # entity, left for the garbage collector (docs/architecture.md, decision 27).
    if path in SPECIAL_KEYS:
        return
    if current is None or isinstance(current, str | int | float | bool):
        output.append((path, current))
        seen_item_keys.add(path.lower())
        return
    if isinstance(current, list):
        for item in current:
            _visit(path, item, output, seen_item_keys)
            if isinstance(item, str):
                item_key = f"{path}.{item}"
                if item_key.lower() not in seen_item_keys:
                    output.append((item_key, True))
                    seen_item_keys.add(item_key.lower())
        return
    if isinstance(current, dict):
        for key, value in current.items():
            _visit(f"{path}.{key}" if path else str(key), value, output, seen_item_keys)


def build_search_entries(entity: dict[str, Any]) -> list[SearchEntry]:
    """The search rows of one entity (its body as stored: metadata.uid set, no relations).

    Rows repeating the same key, value and original value are written once.
    """
    raw = _traverse(entity)
    metadata = entity.get("metadata") if isinstance(entity.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    raw.append(("metadata.name", metadata.get("name")))
    raw.append(("metadata.namespace", metadata.get("namespace")))
    raw.append(("metadata.uid", metadata.get("uid")))
    if not metadata.get("namespace"):
        raw.append(("metadata.namespace", DEFAULT_NAMESPACE))
    entries: list[SearchEntry] = []
    seen: set[SearchEntry] = set()
    for raw_key, raw_value in raw:
        key = raw_key.lower()
        if len(key) > MAX_KEY_LENGTH:
            continue
        if raw_value is None:
            entry = SearchEntry(key, None, None)
        else:
            original = js_string(raw_value)
            value = original.lower()
            entry = (
                SearchEntry(key, value, original)
                if len(value) <= MAX_VALUE_LENGTH
                else SearchEntry(key, None, None)
            )
        if entry not in seen:
            seen.add(entry)
            entries.append(entry)
    return entries
