"""`cairn up --demo`: make the demo repositories, push them through the real webhook path,
then report a release of some of them (GitHub deployments and a workflow run, a CDEvents
service deployment: services/demo/ci_events.py) through the real CI/CD receivers."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.demo.ci_events import DemoDelivery, ci_deliveries, expected_deployments
from services.demo.ci_payloads import cloud_event_structured, iso
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


def run_demo(base_url: str, root: Path, secret: bytes, cdevents_token: str) -> None:
    """Create (or reopen) the demo repositories under `root`, deliver a push for each, then
    the CI/CD events of one release (GitHub signed with `secret`, CDEvents with the token)."""
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
        now = datetime.now(UTC).replace(microsecond=0)
        deliveries = ci_deliveries(repositories, now)
        sent = _send_ci(base_url, deliveries, secret, cdevents_token)
        deployed = _wait_for_deployments(
            base_url, now - timedelta(hours=1), expected_deployments(deliveries)
        )
        _say(
            f"{accepted}/{len(repositories)} pushes accepted; {total} entities searchable; "
            f"{sent}/{len(deliveries)} CI/CD events accepted, {deployed} deployments "
            "in the last hour. Try:\n"
            f"  curl '{base_url}/api/search?q=payment'\n"
            f"  curl '{base_url}/api/search?kind=component&lifecycle=production'\n"
            f"  curl '{base_url}/api/search/suggest?q=pay'\n"
            f"  curl '{base_url}/api/catalog/locations'   (one location is broken on purpose)\n"
            f"  curl '{base_url}/api/deployments?environment=production'\n"
            f"  curl '{base_url}/api/search?deployed_to=staging'\n"
            f"  curl '{base_url}/api/search?last_deploy_status=failure&deployed_since=24h'\n"
            f"  curl '{base_url}/api/pipelines?entity=payments-api'\n"
            f"  edit a catalog-info.yaml under {root}/work, commit, and re-run `make up`"
        )
    except Exception as exc:  # the demo must never take the server down with it
        _say(f"failed: {exc}")


def _send_ci(
    base_url: str, deliveries: Sequence[DemoDelivery], secret: bytes, cdevents_token: str
) -> int:
    """Deliver the CI/CD events in order; how many were accepted."""
    accepted = 0
    for delivery in deliveries:
        if delivery.event is None:
            body, headers = cloud_event_structured(delivery.payload, cdevents_token)
        else:
            body = json.dumps(delivery.payload).encode()
            headers = github_headers(delivery.event, str(uuid.uuid4()), body, secret)
        response = httpx.post(
            f"{base_url}{delivery.path}", content=body, headers=headers, timeout=30
        )
        outcome = response.json().get("status", response.status_code)
        _say(f"reported {delivery.what}: {response.status_code} {outcome}")
        accepted += response.status_code == 202
    return accepted


def _wait_for_deployments(
    base_url: str, since: datetime, expected: int, timeout: float = 30.0
) -> int:
    """Wait until the API lists `expected` deployments since `since`; how many it lists."""
    deadline = time.monotonic() + timeout
    listed = 0
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{base_url}/api/deployments", params={"since": iso(since), "limit": 200}, timeout=10
        )
        listed = len(response.json()["items"]) if response.status_code == 200 else 0
        if listed >= expected:
            break
        time.sleep(0.2)
    return listed


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
