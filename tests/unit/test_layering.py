"""The layout's rules, checked on the source: roles import services only, and the core
(services/model) imports no framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("ingest", "processors", "search_api")
FRAMEWORKS = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "faust",
    "kafka",
    "aiokafka",
    "opensearchpy",
    "uvicorn",
    "httpx",
    "alembic",
    "psycopg",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("role", ROLES)
def test_a_role_never_imports_another_role(role: str) -> None:
    others = [r for r in ROLES if r != role]
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources(role)
        for name in _imports(path)
        if name.split(".")[0] in others
    ]
    assert offenders == []


def test_the_core_model_imports_no_framework() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources("services/model")
        for name in _imports(path)
        if name.split(".")[0] in FRAMEWORKS
    ]
    assert offenders == []


def test_orm_rows_stay_inside_the_store() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in ("ingest", "processors", "search_api", "services")
        for path in _sources(package)
        if "services/store" not in path.as_posix()
        for name in _imports(path)
        if name.startswith("services.store.tables")
    ]
    assert offenders == []
