"""Repository-relative POSIX paths, and the rule that nothing is read outside the repository."""

from __future__ import annotations

import posixpath
import re

_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class OutsideRepository(ValueError):
    """A path or URL that leads outside the repository; the message ends a sentence."""


def is_absolute_url(target: str) -> bool:
    return bool(_ABSOLUTE_URL.match(target))


def normalize_path(path: str) -> str:
    """A repository-relative path in canonical form: no `./`, no `..`, no leading slash."""
    cleaned = path.strip().lstrip("/")
    normalized = posixpath.normpath(cleaned) if cleaned else "."
    if normalized == ".." or normalized.startswith("../"):
        raise OutsideRepository("points outside the repository")
    return "" if normalized == "." else normalized


def resolve_relative(base_dir: str, target: str) -> str:
    """Resolve `target`, written in a file inside `base_dir`, to a repository-relative path.

    The result is "" when it names the repository root itself. Absolute URLs, absolute
    paths and paths climbing above the root raise OutsideRepository.
    """
    if is_absolute_url(target):
        raise OutsideRepository("is an absolute URL, outside the repository")
    if target.startswith("/"):
        raise OutsideRepository("is an absolute path; only paths relative to the file are followed")
    joined = posixpath.normpath(posixpath.join(base_dir, target))
    if joined == ".." or joined.startswith("../"):
        raise OutsideRepository("points outside the repository")
    return "" if joined == "." else joined
