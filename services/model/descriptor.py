"""Reading catalog descriptors out of a repository: files in, entities and errors out.

Pure: the repository is reached only through the injected `FileSource`, and URLs only
through the injected `location_url`, so the same code serves git checkouts and tests.

One reading starts at a root file and behaves like Backstage processing that location:

- every YAML document is an entity; an empty document is skipped;
- placeholders are resolved first, then the entity is validated (Backstage's order), and a
  valid one is finalized: managed by the file it came from, originating from the root;
- a `Location` entity is itself emitted, and its relative `target`/`targets` are read in
  turn, resolved against its file's directory. Absolute URLs in targets are not followed:
  they point at other repositories (or elsewhere), which Cairn reads as locations of their
  own, so they are returned in `external_targets` for the caller to use, not as errors;
- every problem becomes a `ProcessingError` against the file it was found in, and reading
  carries on with everything else.

Nothing is read outside the repository, and every input is bounded by `DescriptorLimits`.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from services.model.entity import Entity, ProcessingError, finalize_entity
from services.model.placeholders import PlaceholderResolver
from services.model.refs import DEFAULT_NAMESPACE, EntityRef
from services.model.repo_paths import (
    OutsideRepository,
    is_absolute_url,
    normalize_path,
    resolve_relative,
)
from services.model.validation import validate_entity
from services.model.yaml_documents import YamlDocument, load_documents

_GLOB_CHARS = frozenset("*?[")


class FileSource(Protocol):
    """Read access to one commit of one repository.

    `read` takes a repository-relative POSIX path (no leading slash, no `..`) and returns
    the file's bytes, or None when there is no such file.
    """

    def read(self, path: str) -> bytes | None: ...


@runtime_checkable
class ListableFileSource(FileSource, Protocol):
    """A FileSource that can also list a directory, which lets Location targets use globs.

    `list` returns the repository-relative paths of the files directly inside `directory`
    (`""` is the repository root); an absent directory lists as empty. Only the file-name
    part of a target may hold wildcards (`./components/*.yaml`); `**` is not supported.
    """

    def list(self, directory: str) -> list[str]: ...


@dataclass(frozen=True)
class DescriptorLimits:
    max_file_bytes: int = 1_000_000  # per descriptor file; also bounds alias expansion
    max_documents: int = 500  # YAML documents in one reading, over all its files
    max_depth: int = 64  # YAML nesting depth, aliases included
    max_location_depth: int = 10  # Location targets followed below the root file
    max_placeholder_bytes: int = 5_000_000  # per file read by a placeholder
    max_files: int = 1_000  # files opened in one reading, placeholder files included


DEFAULT_LIMITS = DescriptorLimits()


@dataclass(frozen=True)
class ExternalTarget:
    """A Location target that is an absolute URL, so was not read as part of this repository."""

    location: str  # URL of the file holding the Location entity
    entity_ref: str  # the Location entity
    type: str | None  # the Location's spec.type, if it gave one
    target: str


@dataclass
class LocationReading:
    """What one reading found: accepted entities in file order, and every problem met.

    `files_read` lists each repository file the reading opened, in order: descriptor files
    reached through Location targets and files read by placeholders.
    """

    entities: list[Entity]
    errors: list[ProcessingError]
    files_read: list[str]
    external_targets: list[ExternalTarget] = field(default_factory=list)


def read_catalog(
    root_path: str,
    files: FileSource,
    location_url: Callable[[str], str],
    limits: DescriptorLimits = DEFAULT_LIMITS,
) -> LocationReading:
    """Read the descriptor at `root_path` and everything its Location entities point to.

    `location_url(path)` gives the URL of a repository file; entities are annotated as
    managed by the URL of their own file and originating from the URL of `root_path`.
    """
    try:
        root = normalize_path(root_path)
    except OutsideRepository:
        root = root_path
        reading = LocationReading(entities=[], errors=[], files_read=[])
        reading.errors.append(
            ProcessingError(
                message=f"Catalog file {root_path} points outside the repository.",
                location=location_url(root_path),
                path=root_path,
            )
        )
        return reading
    return _Reading(root, files, location_url, limits).run()


class _Reading:
    def __init__(
        self,
        root: str,
        files: FileSource,
        location_url: Callable[[str], str],
        limits: DescriptorLimits,
    ) -> None:
        self._root = root
        self._files = files
        self._location_url = location_url
        self._limits = limits
        self._origin = location_url(root)
        self._documents_left = limits.max_documents
        self._visited: set[str] = set()
        self._first_seen: dict[str, str] = {}  # ref key -> file that defined it first
        self.result = LocationReading(entities=[], errors=[], files_read=[])
        # The resolver reads through an object of its own, not a method of this reading:
        # a reading that holds a resolver holding the reading is a reference cycle, left for
        # the garbage collector with every file it read (docs/architecture.md, decision 27).
        self._opened = _OpenedFiles(files, limits.max_files, self.result.files_read)
        self._placeholders = PlaceholderResolver(
            self._opened.read_placeholder_file,
            max_bytes=limits.max_placeholder_bytes,
            max_depth=limits.max_depth,
        )

    def run(self) -> LocationReading:
        if not self._root:
            self._error(self._root, "The catalog file path is empty; name a file to read.")
        elif not self._read_file(self._root, ()):
            self._error(self._root, f"Catalog file {self._root} does not exist in the repository.")
        return self.result

    # -- files ---------------------------------------------------------------------------

    def _read_file(self, path: str, chain: tuple[str, ...]) -> bool:
        """Read one descriptor file; False when it does not exist. `chain` holds its ancestors."""
        self._visited.add(path)
        try:
            data = self._opened.open(path)
        except _TooManyFiles:
            self._error(
                path,
                f"{path} was not read: this catalog reading already opened "
                f"{self._limits.max_files} files, the limit.",
            )
            return True
        if data is None:
            return False
        if self._documents_left <= 0:
            self._error(
                path,
                f"{path} was not read: this catalog reading already holds "
                f"{self._limits.max_documents} YAML documents, the limit.",
            )
            return True
        reading = load_documents(
            data,
            max_bytes=self._limits.max_file_bytes,
            max_depth=self._limits.max_depth,
            max_documents=self._documents_left,
        )
        self._documents_left -= len(reading.documents)
        for document in reading.documents:
            self._read_document(path, document, (*chain, path))
        if reading.problem is not None:
            self._error(path, f"{path}: {reading.problem}")
        if reading.document_limit_line is not None:
            self._documents_left = 0
            self._error(
                path,
                f"{path}: this catalog reading reached its limit of "
                f"{self._limits.max_documents} YAML documents at line "
                f"{reading.document_limit_line}; the rest was not read.",
            )
        return True

    # -- documents -----------------------------------------------------------------------

    def _read_document(self, path: str, document: YamlDocument, chain: tuple[str, ...]) -> None:
        raw = document.data
        if raw is None:
            return
        ref = _raw_ref(raw)
        prefix = "" if ref else f"Document {document.index} (line {document.line}) of {path}: "

        resolved, problems = (
            self._placeholders.resolve(raw, posixpath.dirname(path))
            if isinstance(raw, dict)
            else (raw, [])
        )
        if problems:
            for problem in problems:
                self._error(path, prefix + problem, ref)
            return

        problems = validate_entity(resolved)
        if problems:
            for problem in problems:
                self._error(path, prefix + problem, ref)
            return

        try:
            entity = Entity.model_validate(resolved)
        except ValidationError as exc:  # validation above should make this unreachable
            self._error(path, prefix + f"The entity could not be read: {exc}", ref)
            return
        entity = finalize_entity(
            entity, location_url=self._location_url(path), origin_location_url=self._origin
        )
        key = entity.ref.key
        first = self._first_seen.get(key)
        if first is not None:
            where = "earlier in the same file" if first == path else f"in {first}"
            self._error(
                path,
                f"Entity {key} is defined again in {path}; it was already defined {where}, "
                "and the first definition is kept.",
                key,
            )
            return
        self._first_seen[key] = path
        self.result.entities.append(entity)
        if entity.kind == "Location":
            self._follow_targets(path, entity, chain)

    # -- Location targets ----------------------------------------------------------------

    def _follow_targets(self, path: str, location: Entity, chain: tuple[str, ...]) -> None:
        spec = location.spec
        targets: list[str] = []
        if isinstance(spec.get("target"), str) and spec["target"]:
            targets.append(spec["target"])
        if isinstance(spec.get("targets"), list):
            targets.extend(t for t in spec["targets"] if isinstance(t, str) and t)
        location_type = spec.get("type") if isinstance(spec.get("type"), str) else None
        ref = location.ref.key
        for target in targets:
            if is_absolute_url(target):
                self.result.external_targets.append(
                    ExternalTarget(
                        location=self._location_url(path),
                        entity_ref=ref,
                        type=location_type,
                        target=target,
                    )
                )
            elif _GLOB_CHARS.intersection(target):
                self._follow_glob(path, target, ref, chain)
            else:
                try:
                    resolved = resolve_relative(posixpath.dirname(path), target)
                except OutsideRepository as exc:
                    self._error(path, f"Location target {target} {exc}; it was not read.", ref)
                    continue
                self._visit(path, target, resolved, ref, chain)

    def _follow_glob(self, path: str, target: str, ref: str, chain: tuple[str, ...]) -> None:
        directory, pattern = posixpath.split(target)
        if _GLOB_CHARS.intersection(directory) or "**" in target:
            self._error(
                path,
                f"Location target {target} has wildcards outside its file name; only the "
                "last part of a target may hold them (e.g. ./components/*.yaml).",
                ref,
            )
            return
        if not isinstance(self._files, ListableFileSource):
            self._error(
                path,
                f"Location target {target} is a glob pattern, which this reader cannot "
                "expand; list the files one by one.",
                ref,
            )
            return
        try:
            base = resolve_relative(posixpath.dirname(path), directory or ".")
        except OutsideRepository as exc:
            self._error(path, f"Location target {target} {exc}; it was not read.", ref)
            return
        matches = sorted(
            candidate
            for candidate in self._files.list(base)
            if fnmatch.fnmatchcase(posixpath.basename(candidate), pattern)
        )
        if not matches:
            self._error(path, f"Location target {target} matches no files.", ref)
        for match in matches:
            self._visit(path, target, match, ref, chain)

    def _visit(
        self, path: str, target: str, resolved: str, ref: str, chain: tuple[str, ...]
    ) -> None:
        if not resolved:
            message = f"Location target {target} names the repository root, not a file."
            self._error(path, message, ref)
            return
        if resolved in chain:
            cycle = " -> ".join((*chain, resolved))
            self._error(
                path,
                f"Location target {target} leads back to {resolved}, which is already being "
                f"read ({cycle}); the cycle was not followed.",
                ref,
            )
            return
        if resolved in self._visited:
            return  # reached before through another Location: read once
        if len(chain) > self._limits.max_location_depth:
            self._error(
                path,
                f"Location target {target} ({resolved}) is more than "
                f"{self._limits.max_location_depth} Location levels below {self._root}; "
                "it was not read.",
                ref,
            )
            return
        if not self._read_file(resolved, chain):
            self._error(
                path,
                f"Location target {target} refers to {resolved}, which does not exist in "
                "the repository.",
                ref,
            )

    # -- errors --------------------------------------------------------------------------

    def _error(self, path: str, message: str, entity_ref: str | None = None) -> None:
        self.result.errors.append(
            ProcessingError(
                message=message,
                location=self._location_url(path),
                entity_ref=entity_ref,
                path=path,
            )
        )


class _TooManyFiles(Exception):
    pass


class _OpenedFiles:
    """The repository files one reading opened: at most `max_files`, listed in `read`."""

    def __init__(self, files: FileSource, max_files: int, read: list[str]) -> None:
        self._files = files
        self._max_files = max_files
        self._opened: set[str] = set()
        self._read = read

    def open(self, path: str) -> bytes | None:
        if path not in self._opened and len(self._opened) >= self._max_files:
            raise _TooManyFiles
        data = self._files.read(path)
        if data is not None and path not in self._opened:
            self._opened.add(path)
            self._read.append(path)
        return data

    def read_placeholder_file(self, path: str) -> bytes | None:
        try:
            return self.open(path)
        except _TooManyFiles:
            return None


def _raw_ref(raw: Any) -> str | None:
    """The ref of a document that may not be a valid entity, when it can be told at all."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("kind")
    metadata = raw.get("metadata")
    if not isinstance(kind, str) or not kind or not isinstance(metadata, dict):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    namespace = metadata.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        namespace = DEFAULT_NAMESPACE
    return EntityRef(kind=kind, namespace=namespace, name=name).key
