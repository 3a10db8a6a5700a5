"""The search document: what of an entity is searchable and filterable, for every adapter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_SPLIT = re.compile(r"[^0-9A-Za-z]+")


def name_words(text: str) -> list[str]:
    """Split kebab-case, snake_case, dotted and camelCase names into lower-case words."""
    words: list[str] = []
    for part in _WORD_SPLIT.split(text):
        if part:
            words.extend(w.lower() for w in _CAMEL_BOUNDARY.split(part) if w)
    return words


def _ref_value(value: Any, default_kind: str, namespace: str) -> str | None:
    """A spec ref field as a full ref (`group:default/team-a`), lower-cased for facets."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    kind, _, rest = text.rpartition(":") if ":" in text else (default_kind, "", text)
    ns, _, name = rest.rpartition("/") if "/" in rest else (namespace, "", rest)
    return f"{kind}:{ns}/{name}".lower()


def _flatten(value: Any, out: list[str], depth: int = 0) -> None:
    if depth > 32:
        return
    if isinstance(value, dict):
        for item in value.values():
            _flatten(item, out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, out, depth + 1)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        out.append(str(value))


@dataclass(frozen=True)
class SearchDocument:
    ref: str
    kind: str
    namespace: str
    name: str
    title: str | None
    description: str | None
    owner: str | None
    system: str | None
    domain: str | None
    type: str | None
    lifecycle: str | None
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    name_text: str = ""  # the name and title split into words
    spec_text: str = ""  # every other spec value, API definitions included
    updated_at: float = 0.0


def build_search_document(ref: str, entity: dict[str, Any], updated_at: float) -> SearchDocument:
    metadata = entity.get("metadata") or {}
    spec = entity.get("spec") or {}
    namespace = str(metadata.get("namespace") or "default")
    kind = str(entity.get("kind", ""))
    name = str(metadata.get("name", ""))
    title = metadata.get("title") if isinstance(metadata.get("title"), str) else None
    description = metadata.get("description")
    tags = [t for t in metadata.get("tags") or [] if isinstance(t, str)]
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    spec_values: list[str] = []
    _flatten({k: v for k, v in spec.items() if k not in ("owner", "system", "domain")}, spec_values)
    system = _ref_value(spec.get("system"), "system", namespace)
    if kind.lower() == "system":
        system = ref.lower()
    return SearchDocument(
        ref=ref,
        kind=kind.lower(),
        namespace=namespace.lower(),
        name=name,
        title=title,
        description=description if isinstance(description, str) else None,
        owner=_ref_value(spec.get("owner"), "group", namespace),
        system=system,
        domain=_ref_value(spec.get("domain"), "domain", namespace),
        type=str(spec["type"]).lower() if isinstance(spec.get("type"), str) else None,
        lifecycle=(
            str(spec["lifecycle"]).lower() if isinstance(spec.get("lifecycle"), str) else None
        ),
        tags=[t.lower() for t in tags],
        labels=labels,
        name_text=" ".join(name_words(name) + name_words(title or "")),
        spec_text=" ".join(spec_values),
        updated_at=updated_at,
    )


def normalise_filter_value(field_name: str, value: str) -> str:
    """Filter values compare like the document's: lower-case, refs completed with defaults."""
    if field_name == "owner":
        return _ref_value(value, "group", "default") or value.lower()
    if field_name == "system":
        return _ref_value(value, "system", "default") or value.lower()
    return value.strip().lower()
