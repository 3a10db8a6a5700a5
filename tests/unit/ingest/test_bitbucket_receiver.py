"""The HTTP contract of `POST /webhooks/bitbucket`, against an in-memory event log."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.receiver import create_ingest_router
from services.bus.port import LogUnavailable
from services.demo.bitbucket_payloads import (
    BitbucketRepoInfo,
    bitbucket_headers,
    branch_push_payload,
    encode,
    repo_deleted_payload,
)
from services.model.events import GitEventReceived, PushReceived, RepositoryChanged
from services.settings import WebhookSettings
from tests.unit.ingest.test_github_receiver import InMemoryEventLog

SECRET = b"bb-secret"
LIMIT = 64 * 1024
REPO = BitbucketRepoInfo("acme", "billing-api", "https://bitbucket.org/acme/billing-api")
NEW = "2" * 40


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


def client_for(log: InMemoryEventLog, **settings: Any) -> TestClient:
    settings.setdefault("bitbucket_webhook_secret", SecretStr(SECRET.decode()))
    settings.setdefault("max_payload_bytes", LIMIT)
    app = FastAPI()
    app.include_router(create_ingest_router(WebhookSettings(**settings), log))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(log: InMemoryEventLog) -> TestClient:
    return client_for(log)


def a_push(branch: str = "main") -> dict[str, Any]:
    return branch_push_payload(REPO, branch, "1" * 40, NEW)


def deliver(
    client: TestClient,
    event_key: str,
    payload: Any,
    *,
    request_uuid: str = "0b7c7f58-2f4e-4d5c-8a4a-5f4f3c2b1a09",
    secret: bytes | None = SECRET,
    drop: tuple[str, ...] = (),
    **overrides: str,
) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = bitbucket_headers(event_key, request_uuid, body, secret)
    for name in drop:
        headers.pop(name)
    headers.update(overrides)
    return client.post("/webhooks/bitbucket", content=body, headers=headers)


def published(log: InMemoryEventLog) -> GitEventReceived:
    [(topic, key, value)] = log.records
    assert topic == "cairn.git.events"
    event = GitEventReceived.model_validate_json(value or b"")
    assert key == event.repository.key
    return event


def test_signed_push_is_published_then_accepted(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "repo:push", a_push(), request_uuid="r-1")
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "delivery": "r-1", "offset": 0}
    event = published(log)
    assert event.repository.key == "bitbucket.org/acme/billing-api"
    assert isinstance(event.change, PushReceived) and event.change.after == NEW
    assert list(log.deliveries) == ["bitbucket:r-1"]


def test_retried_request_is_acknowledged_once(client: TestClient, log: InMemoryEventLog) -> None:
    first = deliver(client, "repo:push", a_push(), request_uuid="r-2")
    retry = deliver(client, "repo:push", a_push(), request_uuid="r-2", **{"X-Attempt-Number": "2"})
    assert first.json()["status"] == "accepted"
    assert retry.json() == {"status": "duplicate", "delivery": "r-2"}
    assert len(log.records) == 1


def test_repo_deleted_is_published(client: TestClient, log: InMemoryEventLog) -> None:
    assert deliver(client, "repo:deleted", repo_deleted_payload(REPO)).status_code == 202
    assert published(log).change == RepositoryChanged(action="deleted")


def test_push_to_a_feature_branch_is_ignored(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "repo:push", a_push("feature"))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "not to main or master" in response.json()["reason"]
    assert log.records == []


# --- 401 -------------------------------------------------------------------------------


def test_unsigned_delivery_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "repo:push", a_push(), secret=None)
    assert response.status_code == 401
    assert "X-Hub-Signature" in response.json()["error"]
    assert log.records == []


def test_wrong_secret_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "repo:push", a_push(), secret=b"guess")
    assert response.status_code == 401
    assert "CAIRN_BITBUCKET_WEBHOOK_SECRET" in response.json()["error"]


def test_tampered_body_is_refused(client: TestClient) -> None:
    body = encode(a_push())
    headers = bitbucket_headers("repo:push", "r", body, SECRET)
    tampered = body.replace(b"billing", b"evil")
    assert client.post("/webhooks/bitbucket", content=tampered, headers=headers).status_code == 401


def test_second_secret_is_accepted_during_rotation(log: InMemoryEventLog) -> None:
    client = client_for(log, bitbucket_webhook_secret=SecretStr("old, new"))
    assert deliver(client, "repo:push", a_push(), secret=b"new").status_code == 202


def test_deliveries_are_refused_when_no_secret_is_configured(log: InMemoryEventLog) -> None:
    client = client_for(log, bitbucket_webhook_secret=None)
    response = deliver(client, "repo:push", a_push(), secret=None)
    assert response.status_code == 401
    message = response.json()["error"]
    assert "CAIRN_BITBUCKET_WEBHOOK_SECRET" in message and "--insecure-webhooks" in message


def test_insecure_mode_accepts_unsigned_deliveries(log: InMemoryEventLog) -> None:
    client = client_for(log, bitbucket_webhook_secret=None, insecure_webhooks=True)
    assert deliver(client, "repo:push", a_push(), secret=None).status_code == 202


# --- 400 / 413 / 503 -------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Event-Key", "X-Request-UUID"])
def test_missing_delivery_header_is_a_bad_request(client: TestClient, header: str) -> None:
    response = deliver(client, "repo:push", a_push(), drop=(header,))
    assert response.status_code == 400
    assert response.json() == {"error": f"The delivery has no {header} header."}


def test_event_key_that_is_not_one_is_a_bad_request(client: TestClient) -> None:
    response = deliver(client, "repo:push", a_push(), **{"X-Event-Key": "push"})
    assert response.status_code == 400


@pytest.mark.parametrize("body", [b"{not json", b"null"])
def test_body_that_is_not_a_json_object_is_a_bad_request(client: TestClient, body: bytes) -> None:
    assert deliver(client, "repo:push", body).status_code == 400


def test_malformed_payload_is_a_bad_request_naming_the_field(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    del payload["repository"]["links"]["html"]
    response = deliver(client, "repo:push", payload)
    assert response.status_code == 400
    assert "repository.links.html" in response.json()["error"]
    assert log.records == []


def test_oversized_body_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    payload = a_push()
    payload["padding"] = "x" * LIMIT
    assert deliver(client, "repo:push", payload).status_code == 413
    assert log.records == []


def test_unavailable_log_answers_503(client: TestClient, log: InMemoryEventLog) -> None:
    log.failure = LogUnavailable("broker unreachable")
    response = deliver(client, "repo:push", a_push())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
