"""The HTTP contract of the CI/CD receivers, against an in-memory event log: what is
published to `cairn.ci.events`, and the answers to bad signatures, tokens and bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.cdevents import create_cdevents_router
from ingest.deployments_api import create_deployments_router
from ingest.receiver import create_ingest_router
from services.bus.port import LogConsumer, OutgoingRecord, PublishResult
from services.demo.ci_payloads import (
    cdevent,
    cloud_event_binary,
    cloud_event_structured,
    deployment_report,
    github_deployment_status_payload,
    gitlab_pipeline_payload,
)
from services.demo.github_payloads import GitHubRepoInfo, encode, github_headers
from services.demo.gitlab_payloads import GitLabProjectInfo, gitlab_headers
from services.model.ci_events import CiEventReceived, DeploymentReported
from services.model.topics import CI_EVENTS
from services.settings import WebhookSettings

SECRET, TOKEN = "hook-secret", "ci-token"
T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
REPO = GitHubRepoInfo(
    owner="acme",
    name="payments",
    clone_url="https://github.com/acme/payments.git",
    html_url="https://github.com/acme/payments",
)
PROJECT = GitLabProjectInfo("acme/payments", "https://gitlab.com/acme/payments")


class MemoryLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes | None]] = []
        self.deliveries: set[str] = set()

    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        if delivery_id is not None and delivery_id in self.deliveries:
            return PublishResult(offset=None, duplicate=True)
        if delivery_id is not None:
            self.deliveries.add(delivery_id)
        self.records.append((topic, key, value))
        return PublishResult(offset=len(self.records))

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        for record in records:
            self.publish(record.topic, record.key, record.value)

    def consumer(self, group: str, topics: Sequence[str]) -> LogConsumer:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def events(self) -> list[CiEventReceived]:
        return [
            CiEventReceived.model_validate_json(value)
            for topic, _key, value in self.records
            if topic == CI_EVENTS.name and value is not None
        ]


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def client(log: MemoryLog) -> Iterator[TestClient]:
    settings = WebhookSettings(
        github_webhook_secret=SecretStr(SECRET),
        gitlab_webhook_token=SecretStr(TOKEN),
        max_payload_bytes=64 * 1024,
    )
    app = FastAPI()
    app.include_router(create_ingest_router(settings, log))  # type: ignore[arg-type]
    app.include_router(create_cdevents_router([b"old", TOKEN.encode()], log, 64 * 1024))  # type: ignore[arg-type]
    app.include_router(create_deployments_router([TOKEN.encode()], log, 64 * 1024))  # type: ignore[arg-type]
    with TestClient(app) as test_client:
        yield test_client


def _status_delivery(secret: str) -> tuple[bytes, dict[str, str]]:
    body = encode(
        github_deployment_status_payload(REPO, 5, "success", sha="b" * 40, created_at=T0, at=T0)
    )
    return body, github_headers("deployment_status", "gh-1", body, secret.encode())


def test_a_github_deployment_status_goes_to_the_ci_topic(
    client: TestClient, log: MemoryLog
) -> None:
    body, headers = _status_delivery(SECRET)
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    [(topic, key, _value)] = log.records
    assert (topic, key) == ("cairn.ci.events", "github.com/acme/payments")
    again = client.post("/webhooks/github", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"


def test_a_github_deployment_with_a_bad_signature_is_refused(
    client: TestClient, log: MemoryLog
) -> None:
    body, headers = _status_delivery("not-the-secret")
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 401
    assert log.records == []


def test_a_gitlab_pipeline_hook_needs_the_token(client: TestClient, log: MemoryLog) -> None:
    body = json.dumps(
        gitlab_pipeline_payload(PROJECT, 7, "running", sha="c" * 40, created_at=T0)
    ).encode()
    wrong = client.post(
        "/webhooks/gitlab", content=body, headers=gitlab_headers("Pipeline Hook", "nope")
    )
    assert wrong.status_code == 401
    right = client.post(
        "/webhooks/gitlab", content=body, headers=gitlab_headers("Pipeline Hook", TOKEN)
    )
    assert right.status_code == 202, right.text
    [(topic, key, _value)] = log.records
    assert (topic, key) == ("cairn.ci.events", "gitlab.com/acme/payments")


def _deployed(event_id: str = "e-1") -> dict[str, object]:
    return cdevent(
        "dev.cdevents.service.deployed.0.2.0",
        "service/payments",
        {"environment": {"id": "production"}, "artifactId": "pkg:oci/payments@sha256%3Aabc"},
        event_id=event_id,
        at=T0,
    )


@pytest.mark.parametrize("mode", [cloud_event_binary, cloud_event_structured])
def test_a_cdevent_is_accepted_once_per_source_and_id(
    client: TestClient, log: MemoryLog, mode: object
) -> None:
    body, headers = mode(_deployed(), TOKEN)  # type: ignore[operator]
    first = client.post("/events/cdevents", content=body, headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "accepted", first.text
    assert client.post("/events/cdevents", content=body, headers=headers).json() == {
        "status": "duplicate",
        "delivery": "e-1",
    }
    [event] = log.events()
    assert isinstance(event.change, DeploymentReported)
    assert event.key == "service/payments"


def test_a_cdevent_cairn_does_not_use_is_ignored_with_a_reason(
    client: TestClient, log: MemoryLog
) -> None:
    event = cdevent("dev.cdevents.build.finished.0.2.0", "build-1", {}, spec="0.4.1")
    body, headers = cloud_event_binary(event, "old")
    response = client.post("/events/cdevents", content=body, headers=headers)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "build.finished" in response.json()["reason"]
    assert log.records == []


@pytest.mark.parametrize(
    ("authorization", "status"), [(None, 401), ("Bearer wrong", 401), ("Basic x", 401)]
)
def test_a_cdevent_without_a_valid_token_is_refused(
    client: TestClient, log: MemoryLog, authorization: str | None, status: int
) -> None:
    body, headers = cloud_event_binary(_deployed())
    if authorization:
        headers["Authorization"] = authorization
    response = client.post("/events/cdevents", content=body, headers=headers)
    assert response.status_code == status
    assert "CAIRN_CDEVENTS_TOKEN" in response.json()["error"]
    assert log.records == []


def test_a_malformed_cdevent_is_a_400_naming_the_field(client: TestClient) -> None:
    event = _deployed()
    del event["subject"]
    body, headers = cloud_event_structured(event, TOKEN)
    response = client.post("/events/cdevents", content=body, headers=headers)
    assert response.status_code == 400
    assert "'subject' is missing" in response.json()["error"]


def test_cdevents_without_a_configured_token_are_refused(log: MemoryLog) -> None:
    app = FastAPI()
    app.include_router(create_cdevents_router([], log, 1024 * 64))  # type: ignore[arg-type]
    body, headers = cloud_event_binary(_deployed(), TOKEN)
    with TestClient(app) as test_client:
        response = test_client.post("/events/cdevents", content=body, headers=headers)
    assert response.status_code == 401
    assert "no token is configured" in response.json()["error"]


def test_a_generic_report_is_accepted_with_the_token(client: TestClient, log: MemoryLog) -> None:
    report = deployment_report(entity="payments", environment="production", status="success")
    response = client.post(
        "/api/deployments",
        json=report,
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "deploy-77"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["delivery"] == "deploy-77"
    repeat = client.post(
        "/api/deployments",
        json=report,
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "deploy-77"},
    )
    assert repeat.json()["status"] == "duplicate"
    [event] = log.events()
    assert event.key == "component:default/payments"


def test_a_generic_report_with_a_wrong_token_or_body_is_refused(
    client: TestClient, log: MemoryLog
) -> None:
    report = deployment_report(entity="payments", environment="production", status="success")
    wrong = client.post("/api/deployments", json=report, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401
    assert "CAIRN_DEPLOYMENTS_TOKEN" in wrong.json()["error"]
    bad = client.post(
        "/api/deployments",
        json={"entity": "payments", "status": "success"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "The deployment payload field 'environment' is missing."
    assert log.records == []
