"""`$text`, `$json` and `$yaml` placeholders, resolved like Backstage's PlaceholderProcessor.

A placeholder is a mapping with exactly one key, `$text`, `$json` or `$yaml`, whose value
is a path. It is replaced by the file's text, its parsed JSON, or its single YAML document.
Anything else that merely looks like one is left alone, as Backstage does: a mapping with
more than one key next to a `$` key, an unknown `$` key (e.g. JSON Schema's `$ref`), or a
non-string value. Resolved content is not searched for further placeholders.

Unlike Backstage, which can fetch any URL its integrations allow, Cairn reads placeholder
files only from the same repository, relative to the descriptor's directory: absolute URLs,
absolute paths and paths above the repository root are errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from services.model.repo_paths import OutsideRepository, resolve_relative
from services.model.yaml_documents import YamlProblem, load_documents, to_json

PLACEHOLDER_KEYS = ("$text", "$json", "$yaml")

ReadFile = Callable[[str], bytes | None]


class PlaceholderResolver:
    """Resolves placeholders in documents, reading each repository file at most once.

    `read` returns a repository file's bytes, or None when it does not exist. Each file
    may be at most `max_bytes`; `$yaml` content is held to `max_depth` like descriptors.
    """

    def __init__(self, read: ReadFile, *, max_bytes: int, max_depth: int) -> None:
        self._read = read
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._cache: dict[str, bytes | None] = {}

    def resolve(self, document: Any, base_dir: str) -> tuple[Any, list[str]]:
        """The document with its placeholders filled in, and one sentence per failure.

        A placeholder that fails is left in place; the caller decides what to do with a
        document that has failures (the descriptor reader drops it, as Backstage does).
        """
        problems: list[str] = []
        return self._walk(document, "", base_dir, problems), problems

    def _walk(self, value: Any, where: str, base_dir: str, problems: list[str]) -> Any:
        # A method, not a closure calling itself: that would be a reference cycle per
        # document, left for the garbage collector (docs/architecture.md, decision 27).
        if isinstance(value, list):
            return [
                self._walk(item, f"{where}[{index}]", base_dir, problems)
                for index, item in enumerate(value)
            ]
        if not isinstance(value, dict):
            return value
        if not any(isinstance(key, str) and key.startswith("$") for key in value):
            return {
                key: self._walk(item, f"{where}.{key}" if where else key, base_dir, problems)
                for key, item in value.items()
            }
        if len(value) != 1:
            return value
        ((key, argument),) = value.items()
        if key not in PLACEHOLDER_KEYS or not isinstance(argument, str):
            return value
        try:
            return self._resolve_one(key, argument, base_dir)
        except _PlaceholderFailure as exc:
            problems.append(f"Placeholder {key} in {where or 'the document'} {exc}")
            return value

    def _resolve_one(self, key: str, argument: str, base_dir: str) -> Any:
        try:
            path = resolve_relative(base_dir, argument)
        except OutsideRepository as exc:
            hint = (
                "; Cairn reads placeholder files only from the same repository, "
                "so use a path relative to this file"
            )
            raise _PlaceholderFailure(f"refers to {argument}, which {exc}{hint}.") from exc
        data = self._fetch(path)
        if data is None:
            raise _PlaceholderFailure(
                f"refers to {argument} ({path or 'the repository root'}), "
                "which does not exist in the repository."
            )
        if len(data) > self._max_bytes:
            raise _PlaceholderFailure(
                f"refers to {path}, which is {len(data)} bytes, over the limit of "
                f"{self._max_bytes} bytes for placeholder files."
            )
        if key == "$yaml":
            return self._yaml(path, data)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _PlaceholderFailure(f"refers to {path}, which is not UTF-8 text.") from exc
        if key == "$text":
            return text
        if _bracket_depth(text) > self._max_depth:
            raise _PlaceholderFailure(
                f"refers to {path}, whose JSON nests deeper than {self._max_depth} levels."
            )
        try:
            return to_json(json.loads(text, parse_constant=_reject_constant))
        except (ValueError, YamlProblem) as exc:
            raise _PlaceholderFailure(f"could not parse {path} as JSON: {exc}.") from exc

    def _yaml(self, path: str, data: bytes) -> Any:
        reading = load_documents(data, max_bytes=self._max_bytes, max_depth=self._max_depth)
        if reading.problem is not None:
            raise _PlaceholderFailure(f"could not read {path} as YAML: {reading.problem}")
        if len(reading.documents) != 1:
            raise _PlaceholderFailure(
                f"expects exactly one YAML document in {path}, but found {len(reading.documents)}."
            )
        return reading.documents[0].data

    def _fetch(self, path: str) -> bytes | None:
        if path not in self._cache:
            self._cache[path] = self._read(path) if path else None
        return self._cache[path]


# JSON strings (skipped whole) and brackets, so brackets inside strings do not count.
_JSON_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class _PlaceholderFailure(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings: checked before parsing, since
    Python's JSON parser recurses and would fail on hostile input with RecursionError."""
    depth = deepest = 0
    for token in _JSON_STRUCTURE.findall(text):
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest
