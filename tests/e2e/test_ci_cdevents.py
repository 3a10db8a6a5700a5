"""CDEvents over CloudEvents HTTP through `cairn up`: every conformance example answered
(used ones accepted once per (source, id), the others ignored with a reason), a service
deployment kept unmatched until a component names it, and tokens checked."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.demo.ci_payloads import cdevent, cloud_event_binary, cloud_event_structured
from tests.conftest import SHARED_DATA
from tests.e2e.catalog_files import component
from tests.e2e.conftest import Workspace
from tests.support.server import CairnProcess, wait_until

TOKEN = secrets.token_hex(16)
EXAMPLES = sorted((SHARED_DATA / "cdevents-conformance").glob("v*/*.json"))
USED = {
    f"{subject}_{predicate}"
    for subject, predicates in (
        ("service", ("deployed", "upgraded", "rolledback", "removed")),
        ("pipelinerun", ("queued", "started", "finished")),
        ("incident", ("detected", "reported", "resolved")),
        ("change", ("merged",)),
    )
    for predicate in predicates
}


@pytest.fixture(scope="module")
def cdevents(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={"CAIRN_CDEVENTS_TOKEN": f"retired,{TOKEN}"})


def _post(cairn: CairnProcess, request: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = request
    return cairn.post_webhook("/events/cdevents", body, headers)


def test_every_conformance_example_is_answered_in_both_modes(cdevents: CairnProcess) -> None:
    seen: set[tuple[str, str]] = set()
    answers: dict[str, int] = {}
    for path in EXAMPLES:
        event = json.loads(path.read_bytes())
        identity = (event["context"]["source"], event["context"]["id"])
        for mode in (cloud_event_binary, cloud_event_structured):
            response = _post(cdevents, mode(event, TOKEN))
            assert response.status_code == 202, f"{path}: {response.text}"
            answer = response.json()
            answers[answer["status"]] = answers.get(answer["status"], 0) + 1
            if path.stem in USED:
                expected = "duplicate" if identity in seen else "accepted"
                assert answer["status"] == expected, path
                seen.add(identity)
            else:
                assert answer["status"] == "ignored", path
                assert event["context"]["type"] in answer["reason"]
    assert answers["accepted"] == 2  # the examples share two (source, id) pairs
    assert answers["ignored"] == 2 * sum(1 for p in EXAMPLES if p.stem not in USED)


def test_a_service_deployment_waits_unmatched_until_a_component_names_it(
    cdevents: CairnProcess, workspace: Workspace
) -> None:
    name = f"checkout-{uuid.uuid4().hex[:8]}"
    event = cdevent(
        "dev.cdevents.service.deployed.0.3.0",
        f"service/{name}",
        {"environment": {"id": "production"}, "artifactId": f"pkg:oci/{name}@sha256%3Afeed"},
        spec="0.5.1",
        at=datetime.now(UTC),
    )
    assert _post(cdevents, cloud_event_structured(event, TOKEN)).json()["status"] == "accepted"
    [unmatched] = wait_until(
        lambda: [
            d
            for d in cdevents.get("/api/deployments", unmatched="true").json()["items"]
            if d["artifact"] and name in d["artifact"]
        ],
        what="the deployment listed as unmatched",
    )
    assert unmatched["entities"] == [] and unmatched["matched"] is False

    repo, info = workspace.repo(name)
    annotated = component(name).replace(
        "metadata:\n", f"metadata:\n  annotations:\n    cairn.dev/deployment-name: {name}\n", 1
    )
    before, after = repo.commit_and_push({"catalog-info.yaml": annotated})
    assert cdevents.push(info, before, after).status_code == 202

    [hit] = wait_until(
        lambda: cdevents.search(q=name, deployed_to="production")["items"],
        what="the component found as deployed to production",
    )
    assert hit["deployments"][0]["version"] == "sha256:feed"
    [attached] = cdevents.get("/api/deployments", entity=name).json()["items"]
    assert attached["id"] == unmatched["id"] and attached["matched"] is True


def test_pipeline_runs_arrive_as_cdevents(cdevents: CairnProcess) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    for predicate, content in (
        ("started", {"pipelineName": "release", "url": f"https://ci.acme.test/{run}"}),
        ("finished", {"pipelineName": "release", "outcome": "success"}),
    ):
        event = cdevent(f"dev.cdevents.pipelinerun.{predicate}.0.2.0", run, content)
        assert _post(cdevents, cloud_event_binary(event, TOKEN)).status_code == 202
    [listed] = wait_until(
        lambda: [
            r
            for r in cdevents.get("/api/pipelines", unmatched="true").json()["items"]
            if r["id"].endswith(f"#{run}") and r["status"] == "success"
        ],
        what="the finished run",
    )
    assert listed["pipeline"] == "release"


def test_events_need_one_of_the_configured_tokens(cdevents: CairnProcess) -> None:
    event = cdevent(
        "dev.cdevents.service.removed.0.2.0", "service/gone", {"environment": {"id": "qa"}}
    )
    assert _post(cdevents, cloud_event_binary(event, "wrong")).status_code == 401
    assert _post(cdevents, cloud_event_structured(event)).status_code == 401
    rotated = _post(cdevents, cloud_event_binary(event, "retired"))
    assert rotated.status_code == 202 and rotated.json()["status"] == "accepted"
