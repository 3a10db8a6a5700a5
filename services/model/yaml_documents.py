"""Bounded, JSON-shaped YAML loading for catalog files.

PyYAML's safe loader, with three changes that make it read descriptors the way Backstage
(YAML 1.2 core schema, JSON output) does and keep hostile files cheap:

- scalars like `2021-11-10` stay strings (no datetimes) and only `true`/`false` are
  booleans (`yes`, `no`, `on`, `off` stay strings);
- before anything is built, an event pass bounds the nesting depth and the number of
  documents, and a pass over the composed nodes bounds the size the document would have
  with every alias expanded (so "billion laughs" files fail fast) and rejects duplicate
  keys, as Backstage's parser does;
- the result is converted to plain JSON values (string keys, lists, no binary).

Documents before a broken one are kept; the problem that stopped the file is returned.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


try:  # libyaml's parser when PyYAML was built with it: several times faster
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """SafeLoader with YAML 1.2-style implicit booleans and no implicit timestamps."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class YamlDocument:
    index: int  # 1-based position in the file
    line: int  # 1-based line the document starts on
    data: Any  # JSON-compatible; None for an empty document


@dataclass(frozen=True)
class YamlReading:
    documents: list[YamlDocument]
    problem: str | None = None  # why reading stopped early, as a sentence
    document_limit_line: int | None = None  # set when max_documents stopped the reading


class YamlProblem(ValueError):
    """A document that cannot be loaded within the limits or as JSON data."""


def load_documents(
    data: bytes,
    *,
    max_bytes: int,
    max_depth: int,
    max_documents: int | None = None,
) -> YamlReading:
    """Load every YAML document in `data` within the limits, as JSON-compatible values."""
    if len(data) > max_bytes:
        return YamlReading(
            [], f"The file is {len(data)} bytes, over the limit of {max_bytes} bytes."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return YamlReading([], f"The file is not UTF-8 text (byte {exc.start} is invalid).")

    safe_count, problem, limit_line = _scan(text, max_depth, max_documents)
    documents: list[YamlDocument] = []
    loader = _Loader(text)
    try:
        for index in range(1, safe_count + 1):
            node = loader.get_node() if loader.check_node() else None
            if node is None:  # pragma: no cover - the scan counted this document
                break
            _check_node(node, max_depth, max_bytes)
            value = loader.construct_document(node)
            documents.append(
                YamlDocument(index=index, line=node.start_mark.line + 1, data=to_json(value))
            )
    except yaml.YAMLError as exc:
        problem = describe_yaml_error(exc)
    except YamlProblem as exc:
        problem = str(exc)
    finally:
        loader.dispose()
    return YamlReading(documents, problem, limit_line if problem is None else None)


def _scan(
    text: str, max_depth: int, max_documents: int | None
) -> tuple[int, str | None, int | None]:
    """How many leading documents are complete and within limits, and what stops the rest.

    Works on the event stream, which PyYAML produces without recursion, so even absurdly
    deep input is measured safely before any node is composed.
    """
    depth = 0
    started = 0
    complete = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                started += 1
                if max_documents is not None and started > max_documents:
                    return complete, None, _line(event.start_mark)
            elif isinstance(event, yaml.DocumentEndEvent):
                complete += 1
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > max_depth:
                    return (
                        complete,
                        (
                            f"Document {started} nests deeper than {max_depth} levels "
                            f"(line {_line(event.start_mark)})."
                        ),
                        None,
                    )
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        return complete, describe_yaml_error(exc), None
    return complete, None, None


class _Mark(Protocol):
    line: int


def _line(mark: _Mark | None) -> int:
    return mark.line + 1 if mark is not None else 0


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {what}."
        return f"YAML error: {what}."
    return f"YAML error: {exc}."


def _check_node(root: Node, max_depth: int, max_bytes: int) -> None:
    """Bound the alias-expanded size and depth of a composed document; reject duplicate keys."""
    try:
        _DocumentBounds(root, max_depth, max_bytes).size(root, 0)
    except RecursionError as exc:  # only with a max_depth beyond Python's own stack
        raise YamlProblem("The document nests too deeply to be read.") from exc


class _DocumentBounds:
    """The walk of `_check_node`. A method, not a closure calling itself: that is a
    reference cycle, which kept every document's nodes until the garbage collector found
    them instead of freeing them on return (docs/architecture.md, decision 27)."""

    def __init__(self, root: Node, max_depth: int, max_bytes: int) -> None:
        self.root = root
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self.sizes: dict[int, int] = {}

    def size(self, node: Node, depth: int) -> int:
        if depth > self.max_depth:
            raise YamlProblem(
                f"The document nests deeper than {self.max_depth} levels through its aliases "
                f"(line {node.start_mark.line + 1})."
            )
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, ScalarNode):
            size += len(node.value)
        elif isinstance(node, SequenceNode):
            for child in node.value:
                size += self.size(child, depth + 1)
        elif isinstance(node, MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:
                    if key.value in keys:
                        raise YamlProblem(
                            f'Duplicate key "{key.value}" at line {key.start_mark.line + 1}; '
                            "each key may appear once in a mapping."
                        )
                    keys.add(key.value)
                size += self.size(key, depth + 1) + self.size(value, depth + 1)
        if size > self.max_bytes:
            raise YamlProblem(
                f"Expanding the YAML aliases of the document that starts at line "
                f"{self.root.start_mark.line + 1} would make it larger than {self.max_bytes} "
                "bytes."
            )
        self.sizes[id(node)] = size
        return size


def to_json(value: Any) -> Any:
    """The value as JSON data: what Backstage would get from parsing the same YAML."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_json_key(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, set):
        return {_json_key(key): None for key in value}
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        raise YamlProblem("Binary (!!binary) values cannot be part of an entity.")
    raise YamlProblem(f"Values of type {type(value).__name__} cannot be part of an entity.")


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return str(key)
    raise YamlProblem(f"Mapping keys of type {type(key).__name__} cannot be part of an entity.")
