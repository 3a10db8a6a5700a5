"""The HTTP contract of `POST /webhooks/gitlab`, against an in-memory event log."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.receiver import create_ingest_router
from services.bus.port import LogUnavailable
from services.demo.gitlab_payloads import (
    GitLabProjectInfo,
    encode,
    gitlab_headers,
    project_event_payload,
    push_payload,
)
from services.model.events import GitEventReceived, PushReceived, RepositoryChanged
from services.settings import WebhookSettings
from tests.unit.ingest.test_github_receiver import InMemoryEventLog

TOKEN = "gl-hook-token"
LIMIT = 64 * 1024
PROJECT = GitLabProjectInfo("acme/platform/payments", "https://gitlab.com/acme/platform/payments")
AFTER = "2" * 40


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


def client_for(log: InMemoryEventLog, **settings: Any) -> TestClient:
    settings.setdefault("gitlab_webhook_token", SecretStr(TOKEN))
    settings.setdefault("max_payload_bytes", LIMIT)
    app = FastAPI()
    app.include_router(create_ingest_router(WebhookSettings(**settings), log))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(log: InMemoryEventLog) -> TestClient:
    return client_for(log)


def a_push(ref: str = "refs/heads/main") -> dict[str, Any]:
    return push_payload(PROJECT, ref, "1" * 40, AFTER)


def deliver(
    client: TestClient,
    event: str,
    payload: Any,
    *,
    token: str | None = TOKEN,
    key: str = "3f0c2a8e-5b7d-4c1e-9a6f-0d2b4e8c1a77",
    drop: tuple[str, ...] = (),
    **overrides: str,
) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = gitlab_headers(event, token, idempotency_key=key)
    for name in drop:
        headers.pop(name)
    headers.update(overrides)
    return client.post("/webhooks/gitlab", content=body, headers=headers)


def published(log: InMemoryEventLog) -> GitEventReceived:
    [(topic, key, value)] = log.records
    assert topic == "cairn.git.events"
    event = GitEventReceived.model_validate_json(value or b"")
    assert key == event.repository.key
    return event


def test_push_with_the_token_is_published_then_accepted(
    client: TestClient, log: InMemoryEventLog
) -> None:
    response = deliver(client, "Push Hook", a_push(), key="k-1")
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "delivery": "k-1", "offset": 0}
    event = published(log)
    assert event.repository.key == "gitlab.com/acme/platform/payments"
    assert isinstance(event.change, PushReceived) and event.change.after == AFTER
    assert list(log.deliveries) == ["gitlab:k-1"]


def test_delivery_is_named_by_the_event_uuid_without_an_idempotency_key(
    client: TestClient, log: InMemoryEventLog
) -> None:
    response = deliver(
        client,
        "Push Hook",
        a_push(),
        drop=("Idempotency-Key",),
        **{"X-Gitlab-Event-UUID": "ev-7"},
    )
    assert response.json()["delivery"] == "ev-7"
    assert list(log.deliveries) == ["gitlab:ev-7"]


def test_repeated_delivery_is_acknowledged_once(client: TestClient, log: InMemoryEventLog) -> None:
    first = deliver(client, "Push Hook", a_push(), key="k-1")
    again = deliver(client, "Push Hook", a_push(), key="k-1")
    assert first.json()["status"] == "accepted"
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "delivery": "k-1"}
    assert len(log.records) == 1


def test_project_destroy_system_hook_uses_the_instance_header(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    response = deliver(
        client, "System Hook", payload, **{"X-Gitlab-Instance": "https://gitlab.acme.test"}
    )
    assert response.status_code == 202, response.text
    event = published(log)
    assert event.change == RepositoryChanged(action="deleted")
    assert event.repository.key == "gitlab.acme.test/acme/platform/payments"


def test_project_destroy_without_the_instance_header_is_a_bad_request(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    response = deliver(client, "System Hook", payload, drop=("X-Gitlab-Instance",))
    assert response.status_code == 400
    assert "X-Gitlab-Instance" in response.json()["error"]
    assert log.records == []


def test_push_to_another_branch_is_ignored_with_the_reason(
    client: TestClient, log: InMemoryEventLog
) -> None:
    response = deliver(client, "Push Hook", a_push("refs/heads/feature"))
    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "push to refs/heads/feature is not the default branch (main)",
    }
    assert log.records == []


def test_unused_event_is_ignored(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "Issue Hook", {"object_kind": "issue"})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert log.records == []


# --- 401 -------------------------------------------------------------------------------


def test_missing_token_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "Push Hook", a_push(), token=None)
    assert response.status_code == 401
    assert "X-Gitlab-Token" in response.json()["error"]
    assert log.records == []


def test_wrong_token_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "Push Hook", a_push(), token="guess")
    assert response.status_code == 401
    assert "CAIRN_GITLAB_WEBHOOK_TOKEN" in response.json()["error"]
    assert log.records == []


def test_either_token_is_accepted_during_rotation(log: InMemoryEventLog) -> None:
    client = client_for(log, gitlab_webhook_token=SecretStr("old-token, new-token"))
    assert deliver(client, "Push Hook", a_push(), token="new-token", key="a").status_code == 202
    assert deliver(client, "Push Hook", a_push(), token="old-token", key="b").status_code == 202
    assert deliver(client, "Push Hook", a_push(), token="old-token,new-token").status_code == 401


def test_deliveries_are_refused_when_no_token_is_configured(log: InMemoryEventLog) -> None:
    client = client_for(log, gitlab_webhook_token=None)
    response = deliver(client, "Push Hook", a_push())
    assert response.status_code == 401
    message = response.json()["error"]
    assert "CAIRN_GITLAB_WEBHOOK_TOKEN" in message and "--insecure-webhooks" in message
    assert log.records == []


def test_insecure_mode_accepts_deliveries_without_a_token(log: InMemoryEventLog) -> None:
    client = client_for(log, gitlab_webhook_token=None, insecure_webhooks=True)
    assert deliver(client, "Push Hook", a_push(), token=None).status_code == 202


def test_insecure_mode_still_checks_a_configured_token(log: InMemoryEventLog) -> None:
    client = client_for(log, insecure_webhooks=True)
    assert deliver(client, "Push Hook", a_push(), token=None).status_code == 401
    assert deliver(client, "Push Hook", a_push(), token="wrong").status_code == 401


def test_the_github_secret_does_not_open_the_gitlab_route(log: InMemoryEventLog) -> None:
    client = client_for(
        log, gitlab_webhook_token=None, github_webhook_secret=SecretStr("gh-secret")
    )
    assert deliver(client, "Push Hook", a_push(), token="gh-secret").status_code == 401


# --- 400 / 413 / 503 -------------------------------------------------------------------


def test_missing_event_header_is_a_bad_request(client: TestClient) -> None:
    response = deliver(client, "Push Hook", a_push(), drop=("X-Gitlab-Event",))
    assert response.status_code == 400
    assert response.json() == {"error": "The delivery has no X-Gitlab-Event header."}


def test_delivery_without_any_delivery_id_is_a_bad_request(client: TestClient) -> None:
    response = deliver(
        client, "Push Hook", a_push(), drop=("Idempotency-Key", "X-Gitlab-Event-UUID")
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
def test_body_that_is_not_a_json_object_is_a_bad_request(client: TestClient, body: bytes) -> None:
    assert deliver(client, "Push Hook", body).status_code == 400


def test_malformed_payload_is_a_bad_request_naming_the_field(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    del payload["project"]["web_url"]
    response = deliver(client, "Push Hook", payload)
    assert response.status_code == 400
    assert "project.web_url" in response.json()["error"]
    assert log.records == []


def test_oversized_body_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    payload = a_push()
    payload["padding"] = "x" * LIMIT
    response = deliver(client, "Push Hook", payload)
    assert response.status_code == 413
    assert log.records == []


def test_unavailable_log_answers_503_with_retry_after(
    client: TestClient, log: InMemoryEventLog
) -> None:
    log.failure = LogUnavailable("broker unreachable")
    response = deliver(client, "Push Hook", a_push())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
