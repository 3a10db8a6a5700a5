"""The generic `POST /api/deployments` through `cairn up`: a report for a repository kept
unmatched until its component appears, reports of one deployment merged in their own
order, a rollback recognised, and the token checked."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.demo.ci_payloads import deployment_report
from tests.e2e.catalog_files import component
from tests.e2e.conftest import Workspace
from tests.support.server import CairnProcess, wait_until

TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def api(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={"CAIRN_DEPLOYMENTS_TOKEN": f"{TOKEN},next-token"})


def _report(cairn: CairnProcess, body: dict[str, Any], token: str = TOKEN) -> httpx.Response:
    return httpx.post(
        f"{cairn.base_url}/api/deployments",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _deployments(cairn: CairnProcess, **params: Any) -> list[dict[str, Any]]:
    response = cairn.get("/api/deployments", **params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_report_waits_for_its_repository_s_component(
    api: CairnProcess, workspace: Workspace
) -> None:
    name = f"billing-{uuid.uuid4().hex[:8]}"
    repo, info = workspace.repo(name)
    started = datetime.now(UTC).replace(microsecond=0)
    body = deployment_report(
        repository=info.html_url,
        environment="production",
        status="success",
        version="2.0.0",
        deployment_id=f"{name}-1",
        started_at=started,
        finished_at=started + timedelta(seconds=30),
        url="https://ci.acme.test/jobs/1",
    )
    assert _report(api, body).status_code == 202
    wait_until(
        lambda: [d for d in _deployments(api, unmatched="true") if d["id"] == f"api:{name}-1"],
        what="the report listed as unmatched",
    )
    before, after = repo.commit_and_push({"catalog-info.yaml": component(name)})
    assert api.push(info, before, after).status_code == 202

    [deployment] = wait_until(
        lambda: _deployments(api, entity=name), what="the report attached to the component"
    )
    assert (deployment["version"], deployment["duration_seconds"]) == ("2.0.0", 30.0)
    entity = wait_until(
        lambda: (
            (e := api.entity("component", name)) and e.get("status", {}).get("deployments") and e
        ),
        what="the entity's environments",
    )
    assert entity["status"]["deployments"][0]["version"] == "2.0.0"


def test_reports_of_one_deployment_merge_in_their_own_order_and_a_rollback_is_marked(
    api: CairnProcess, workspace: Workspace
) -> None:
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    repo, info = workspace.repo(name)
    assert api.push(info, *repo.commit_and_push({"catalog-info.yaml": component(name)})).is_success
    wait_until(lambda: api.entity("component", name), what="the component")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def report(number: int, version: str, status: str, at: datetime) -> None:
        body = deployment_report(
            entity=name,
            environment="production",
            status=status,
            version=version,
            deployment_id=f"{name}-{number}",
            started_at=at,
            finished_at=at,
        )
        body["occurred_at"] = at.isoformat()
        assert _report(api, body, token="next-token").status_code == 202

    report(1, "1.0", "success", t0)
    report(2, "2.0", "success", t0 + timedelta(minutes=10))
    report(3, "1.0", "success", t0 + timedelta(minutes=20))
    report(3, "1.0", "in_progress", t0 + timedelta(minutes=19))

    def settled() -> list[dict[str, Any]]:
        items = _deployments(api, entity=name)
        return items if len(items) == 3 and len(items[0]["transitions"]) == 2 else []

    latest, *_older = wait_until(settled, what="three deployments, the last with two states")
    assert (latest["id"], latest["status"], latest["rollback"]) == (
        f"api:{name}-3",
        "success",
        True,
    )
    assert [d["id"] for d in _deployments(api, entity=name, since="55m")] == [
        f"api:{name}-3",
        f"api:{name}-2",
    ]


def test_reports_need_a_valid_token_and_a_complete_body(api: CairnProcess) -> None:
    body = deployment_report(entity="anything", environment="qa", status="success")
    wrong = _report(api, body, token="wrong")
    assert wrong.status_code == 401 and "CAIRN_DEPLOYMENTS_TOKEN" in wrong.json()["error"]
    incomplete = _report(api, {"entity": "anything", "status": "success"})
    assert incomplete.status_code == 400
    assert incomplete.json()["error"] == "The deployment payload field 'environment' is missing."
