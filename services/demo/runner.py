"""`cairn up --demo`: make the demo repositories and push them through the real webhook path."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import httpx

from services.demo.github_payloads import github_headers
from services.demo.repos import create_demo_repositories


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _wait_for_server(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Cairn did not become ready at {base_url} within {timeout:.0f} s.")


def run_demo(base_url: str, root: Path, secret: bytes) -> None:
    """Create (or reopen) the demo repositories under `root` and deliver a push for each."""
    try:
        _wait_for_server(base_url)
        _say(f"making demo repositories in {root}")
        repositories = create_demo_repositories(root)
        accepted = 0
        for repository in repositories:
            body = json.dumps(repository.push_payload()).encode()
            headers = github_headers("push", str(uuid.uuid4()), body, secret)
            response = httpx.post(
                f"{base_url}/webhooks/github", content=body, headers=headers, timeout=30
            )
            outcome = response.json().get("status", response.status_code)
            _say(f"pushed {repository.full_name}: {response.status_code} {outcome}")
            accepted += response.status_code == 202
        total = _wait_for_catalog(base_url)
        _say(
            f"{accepted}/{len(repositories)} pushes accepted; {total} entities searchable. Try:\n"
            f"  curl '{base_url}/api/search?q=payment'\n"
            f"  curl '{base_url}/api/search?kind=component&lifecycle=production'\n"
            f"  curl '{base_url}/api/search/suggest?q=pay'\n"
            f"  curl '{base_url}/api/catalog/locations'   (one location is broken on purpose)\n"
            f"  edit a catalog-info.yaml under {root}/work, commit, and re-run `make up`"
        )
    except Exception as exc:  # the demo must never take the server down with it
        _say(f"failed: {exc}")


def _wait_for_catalog(base_url: str, settle: float = 1.0, timeout: float = 60.0) -> int:
    """Wait until the number of searchable entities stops growing."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = int(
            httpx.get(f"{base_url}/api/search", params={"limit": 1}, timeout=10).json()["total"]
        )
        if total != last:
            last, stable_since = total, time.monotonic()
        elif total > 0 and time.monotonic() - stable_since >= settle:
            return total
        time.sleep(0.1)
    return last
