"""The search document: what of an entity is searchable and filterable, for every adapter.

This module is the one place that decides what is indexed. Both adapters index the same
fields and split text into the same words:

- a word is a run of letters and digits; anything else separates words (kebab-case,
  snake_case, dotted names), and so does a lower-case letter followed by an upper-case one
  (camelCase), a digit followed by an upper-case letter (`v2Api`), and the last capital of a
  run of capitals followed by a lower-case letter (`HTTPServer` is `http` and `server`);
- words compare lower-cased with diacritics removed (`Über` finds `uber`).

OpenSearch gets this from its analyzer (a pattern char filter, `word_delimiter_graph`,
lower-casing and ASCII folding, see opensearch_mappings.py); FTS5 from `unicode61` over text
whose camelCase boundaries were marked (see fts5.py); `name_words` is the reference.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from services.model.ci_events import EnvironmentState
from services.model.yaml_documents import load_documents

_ALNUM_RUN = re.compile(r"[^\W_]+")

# Bounds on what one entity may put into the index.
MAX_DEFINITION_BYTES = 2_000_000
MAX_DEFINITION_TEXT = 200_000
MAX_SPEC_TEXT = 50_000
MAX_QUERY_WORDS = 12


def fold(text: str) -> str:
    """Lower-case and strip diacritics, as both indexes compare words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def camel_cuts(run: str) -> list[int]:
    """Offsets inside a run of letters and digits where a camelCase word starts."""
    cuts: list[int] = []
    for i in range(1, len(run)):
        before, here = run[i - 1], run[i]
        if not here.isupper():
            continue
        if (
            before.islower()
            or before.isnumeric()
            or (before.isupper() and i + 1 < len(run) and run[i + 1].islower())
        ):
            cuts.append(i)
    return cuts


def word_spans(text: str) -> list[tuple[int, int]]:
    """Start and end offsets in `text` of each word of `name_words(text)`."""
    spans: list[tuple[int, int]] = []
    for run in _ALNUM_RUN.finditer(text):
        start = run.start()
        for cut in [*camel_cuts(run.group()), len(run.group())]:
            spans.append((start, run.start() + cut))
            start = run.start() + cut
    return spans


def name_words(text: str) -> list[str]:
    """Split kebab-case, snake_case, dotted and camelCase text into folded words."""
    return [fold(text[start:end]) for start, end in word_spans(text)]


def name_key(text: str) -> str:
    """The comparable form of a name: its words joined by single spaces."""
    return " ".join(name_words(text))


def _ref_value(value: Any, default_kind: str, namespace: str) -> str | None:
    """A spec ref field as a full ref (`group:default/team-a`), lower-cased for facets."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    kind, _, rest = text.rpartition(":") if ":" in text else (default_kind, "", text)
    ns, _, name = rest.rpartition("/") if "/" in rest else (namespace, "", rest)
    return f"{kind}:{ns}/{name}".lower()


def _ref_name(ref: str | None) -> str:
    return ref.rpartition("/")[2] if ref else ""


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


# --- API definitions ------------------------------------------------------------------

# Keys whose string values describe an API in words developers search for.
_DESCRIPTIVE_KEYS = frozenset(
    {"title", "summary", "description", "operationId", "name", "messageId", "x-displayName"}
)
# Mappings whose keys are names developers search for: paths, channels, schemas, messages...
_NAMED_MAPS = frozenset(
    {
        "paths",
        "channels",
        "schemas",
        "messages",
        "properties",
        "operations",
        "parameters",
        "requestBodies",
        "responses",
        "securitySchemes",
        "callbacks",
        "webhooks",
    }
)
_HTTP_STATUS = re.compile(r"^(\d{3}|[1-5]XX|default)$")


def _describe_structured(value: Any, out: list[str], under: str = "", depth: int = 0) -> None:
    if depth > 48:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if under in _NAMED_MAPS and not _HTTP_STATUS.match(name) and not name.startswith("$"):
                out.append(name)
            if name in _DESCRIPTIVE_KEYS and isinstance(item, str):
                out.append(item)
            elif name == "tags" and isinstance(item, list):
                out.extend(str(t.get("name", "")) if isinstance(t, dict) else str(t) for t in item)
            else:
                _describe_structured(item, out, name, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _describe_structured(item, out, under, depth + 1)


def definition_text(api_type: str | None, definition: Any) -> str:
    """The searchable text of an API definition: what names an operation, schema or message.

    OpenAPI and AsyncAPI documents (YAML or JSON) give their paths, channels, operation ids,
    schema, property and message names, titles, summaries and descriptions; GraphQL SDL,
    protobuf (gRPC) and anything unparseable are indexed as text, which the word splitting
    turns into type, field, service and rpc names.
    """
    kind = (api_type or "").lower()
    if isinstance(definition, dict | list):
        out: list[str] = []
        _describe_structured(definition, out)
        return " ".join(out)[:MAX_DEFINITION_TEXT]
    if not isinstance(definition, str) or not definition.strip():
        return ""
    raw = definition.encode()[:MAX_DEFINITION_BYTES]
    if kind in ("openapi", "asyncapi") or (kind == "" and definition.lstrip()[:1] in "{o"):
        reading = load_documents(raw, max_bytes=MAX_DEFINITION_BYTES, max_depth=64, max_documents=1)
        if reading.documents and isinstance(reading.documents[0].data, dict):
            out = []
            _describe_structured(reading.documents[0].data, out)
            return " ".join(out)[:MAX_DEFINITION_TEXT]
    return raw.decode(errors="ignore")[:MAX_DEFINITION_TEXT]


# --- the document ---------------------------------------------------------------------


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
    spec_text: str = ""  # every other spec value
    definition_text: str = ""  # the searchable text of an API definition
    updated_at: float = 0.0

    @property
    def ref_key(self) -> str:
        return self.ref.lower()

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def related_text(self) -> str:
        """The names of the owner, system and domain, searched as words."""
        return " ".join(_ref_name(r) for r in (self.owner, self.system, self.domain) if r)

    @property
    def label_pairs(self) -> list[str]:
        """Labels as `key=value` facet values."""
        return sorted(f"{k}={v}".lower() for k, v in self.labels.items())


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
    spec_type = str(spec["type"]).lower() if isinstance(spec.get("type"), str) else None
    spec_values: list[str] = []
    _flatten(
        {k: v for k, v in spec.items() if k not in ("owner", "system", "domain", "definition")},
        spec_values,
    )
    system = _ref_value(spec.get("system"), "system", namespace)
    if kind.lower() == "system":
        system = ref.lower()
    domain = _ref_value(spec.get("domain"), "domain", namespace)
    if kind.lower() == "domain":
        domain = ref.lower()
    definition = definition_text(spec_type, spec.get("definition")) if kind.lower() == "api" else ""
    return SearchDocument(
        ref=ref,
        kind=kind.lower(),
        namespace=namespace.lower(),
        name=name,
        title=title,
        description=description if isinstance(description, str) else None,
        owner=_ref_value(spec.get("owner"), "group", namespace),
        system=system,
        domain=domain,
        type=spec_type,
        lifecycle=(
            str(spec["lifecycle"]).lower() if isinstance(spec.get("lifecycle"), str) else None
        ),
        tags=[t.lower() for t in tags],
        labels=labels,
        name_text=" ".join(name_words(name) + name_words(title or "")),
        spec_text=" ".join(spec_values)[:MAX_SPEC_TEXT],
        definition_text=definition,
        updated_at=updated_at,
    )


def normalise_filter_value(field_name: str, value: str) -> str:
    """Filter values compare like the document's: lower-case, refs completed with defaults."""
    if field_name == "owner":
        return _ref_value(value, "group", "default") or value.lower()
    if field_name == "system":
        return _ref_value(value, "system", "default") or value.lower()
    if field_name == "domain":
        return _ref_value(value, "domain", "default") or value.lower()
    return value.strip().lower()


def query_words(text: str) -> list[str]:
    """The words of a query, in order, each once, at most MAX_QUERY_WORDS of them."""
    seen: list[str] = []
    for word in name_words(text):
        if word not in seen:
            seen.append(word)
    return seen[:MAX_QUERY_WORDS]


# --- deployments (services/model/ci_events.py, EnvironmentState) ------------------------


@dataclass(frozen=True)
class DeployedEnvironment:
    """What an entity runs in one environment, as every index keeps it beside the entity's
    document (written by the `cairn.deployments` projection, kept across entity changes)."""

    environment: str  # lower-cased
    version: str | None  # the version running there now (None: nothing, or removed)
    deployed_at: float | None  # when it was deployed (Unix time)
    last_status: str  # outcome of the newest deployment there
    last_version: str | None
    last_at: float  # when the newest deployment began (Unix time)


def deployed_environment(state: EnvironmentState) -> DeployedEnvironment:
    return DeployedEnvironment(
        environment=state.environment.strip().lower(),
        version=state.version,
        deployed_at=state.deployed_at.timestamp() if state.deployed_at else None,
        last_status=state.last_status,
        last_version=state.last_version,
        last_at=state.last_at.timestamp(),
    )
