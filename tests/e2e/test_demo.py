"""`cairn up --demo` as `make up` runs it: the demo repositories become the catalog, and the
demo's release (GitHub deployments and a workflow run, a CDEvents service deployment, sent
through the real receivers) shows as deployments, environments and deployment search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.server import CairnProcess, wait_until

PRODUCTION = {
    "component:default/payments-api": "success",
    "component:default/checkout-web": "failure",
    "component:default/notification-service": "success",
}
STAGING = {
    "component:default/payments-api": "success",
    "component:default/checkout-web": "success",
}


@pytest.fixture(scope="module")
def demo(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_args=["--demo"])


def _outcomes(demo: CairnProcess, environment: str) -> dict[str, str]:
    response = demo.get("/api/deployments", environment=environment, since="2h", limit=200)
    assert response.status_code == 200, response.text
    return {ref: d["status"] for d in response.json()["items"] for ref in d["entities"]}


def _refs(page: dict[str, Any]) -> set[str]:
    return {hit["ref"] for hit in page["items"]}


def test_the_demo_release_shows_as_deployments_per_environment(demo: CairnProcess) -> None:
    wait_until(
        lambda: _outcomes(demo, "production") == PRODUCTION,
        timeout=180,
        what="the demo's production deployments",
    )
    wait_until(lambda: _outcomes(demo, "staging") == STAGING, what="the staging deployments")

    # The store is fed by its own consumer: the deployments may be listed a moment before
    # the entity they name is in the catalog.
    checkout = demo.entity_when("component", "checkout-web")
    environments = {e["environment"]: e for e in checkout["status"]["deployments"]}
    assert environments["production"]["lastStatus"] == "failure"
    assert environments["production"]["version"] is None  # nothing ran there before
    assert environments["staging"]["version"] == environments["production"]["lastVersion"]

    [run] = demo.get("/api/pipelines", entity="payments-api").json()["items"]
    assert (run["status"], run["pipeline"], run["branch"]) == ("success", "CI", "main")


def test_search_finds_the_demo_components_by_where_they_run(demo: CairnProcess) -> None:
    wait_until(
        lambda: _outcomes(demo, "production") == PRODUCTION,
        timeout=180,
        what="the demo's production deployments",
    )
    running = {"component:default/payments-api", "component:default/notification-service"}
    wait_until(
        lambda: _refs(demo.search(deployed_to="production")) == running,
        what="the components running in production found by search",
    )
    failed = _refs(demo.search(last_deploy_status="failure", deployed_since="24h"))
    assert failed == {"component:default/checkout-web"}
