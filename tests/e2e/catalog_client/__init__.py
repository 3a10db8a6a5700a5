"""Runs Backstage's own `@backstage/catalog-client` (npm) against a running Cairn."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
SCRIPT = HERE / "run.mjs"


def call(method: str, *args: Any, token: str | None = None) -> dict[str, Any]:
    return {"method": method, "args": list(args), **({"token": token} if token else {})}


def run_client(base_url: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call's result: {"ok": True, "value": ...} or {"ok": False, "error": {...}}."""
    if not (HERE / "node_modules" / "@backstage" / "catalog-client").is_dir():
        pytest.fail(
            "The Node catalog client is not installed: run `make catalog-client` "
            "(make test does it).",
            pytrace=False,
        )
    done = subprocess.run(
        ["node", str(SCRIPT), base_url, "-"],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def values(base_url: str, calls: list[dict[str, Any]]) -> list[Any]:
    """The results of calls that must all succeed."""
    results = run_client(base_url, calls)
    failed = [(c["method"], r["error"]) for c, r in zip(calls, results, strict=True) if not r["ok"]]
    assert not failed, failed
    return [r["value"] for r in results]
