"""File sources for the model tests: a dict of files, and the shared Backstage examples folder.

Reached through fixtures only: importing from `conftest` breaks once other test folders
have a conftest of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# tests/unit/model/conftest.py -> the repository is parents[3]; shared/ sits beside it.
_DEFAULT_EXAMPLES = Path(__file__).resolve().parents[3].parent / "shared/data/backstage-examples"


def examples_dir() -> Path:
    configured = os.environ.get("CAIRN_BACKSTAGE_EXAMPLES")
    folder = Path(configured) if configured else _DEFAULT_EXAMPLES
    if not (folder / "SOURCE.md").is_file():
        raise RuntimeError(
            f"The Backstage example descriptors were not found at {folder}; set "
            "CAIRN_BACKSTAGE_EXAMPLES to the folder that holds them."
        )
    return folder


def location_url(path: str) -> str:
    return f"https://git.example.test/acme/catalog/blob/main/{path}"


class DictSource:
    """An in-memory repository: repository-relative path -> file content."""

    def __init__(self, files: dict[str, str | bytes]) -> None:
        self.files = {
            path: content.encode() if isinstance(content, str) else content
            for path, content in files.items()
        }
        self.reads: list[str] = []

    def read(self, path: str) -> bytes | None:
        self.reads.append(path)
        return self.files.get(path)


class ListableDictSource(DictSource):
    def list(self, directory: str) -> list[str]:
        prefix = f"{directory}/" if directory else ""
        return sorted(
            path
            for path in self.files
            if path.startswith(prefix) and "/" not in path[len(prefix) :]
        )


class DirectorySource:
    """A repository checked out in a directory (the shared examples)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, path: str) -> bytes | None:
        file = self.root / path
        return file.read_bytes() if file.is_file() else None


@pytest.fixture(scope="session")
def examples() -> DirectorySource:
    return DirectorySource(examples_dir())


@pytest.fixture
def url() -> Callable[[str], str]:
    return location_url


SourceFactory = Callable[..., DictSource]


@pytest.fixture
def make_source() -> SourceFactory:
    """make_source({path: content}, listable=False) -> an in-memory repository."""

    def make(files: dict[str, str | bytes], *, listable: bool = False) -> DictSource:
        return ListableDictSource(files) if listable else DictSource(files)

    return make
