"""The HTTP contract of `POST /webhooks/gitea` and `/webhooks/forgejo`, in memory."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.receiver import create_ingest_router
from services.bus.port import LogUnavailable
from services.demo.gitea_payloads import (
    GiteaRepoInfo,
    encode,
    form_body,
    gitea_headers,
    push_payload,
    repository_payload,
)
from services.model.events import GitEventReceived, PushReceived, RepositoryChanged
from services.settings import WebhookSettings
from tests.unit.ingest.test_github_receiver import InMemoryEventLog

SECRET = b"gitea-secret"
LIMIT = 64 * 1024
REPO = GiteaRepoInfo(
    "acme", "ledger", "https://gitea.com/acme/ledger", "https://gitea.com/acme/ledger.git"
)
AFTER = "2" * 40
ROUTES = ["/webhooks/gitea", "/webhooks/forgejo"]


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


def client_for(log: InMemoryEventLog, **settings: Any) -> TestClient:
    settings.setdefault("gitea_webhook_secret", SecretStr(SECRET.decode()))
    settings.setdefault("max_payload_bytes", LIMIT)
    app = FastAPI()
    app.include_router(create_ingest_router(WebhookSettings(**settings), log))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(log: InMemoryEventLog) -> TestClient:
    return client_for(log)


def a_push(ref: str = "refs/heads/main") -> dict[str, Any]:
    return push_payload(REPO, ref, "1" * 40, AFTER)


def deliver(
    client: TestClient,
    event: str,
    payload: Any,
    *,
    route: str = "/webhooks/gitea",
    delivery: str = "6c1f2d3e-8a9b-4c5d-9e0f-1a2b3c4d5e6f",
    secret: bytes | None = SECRET,
    forgejo: bool = False,
    drop: tuple[str, ...] = (),
    **overrides: str,
) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = gitea_headers(event, delivery, body, secret, forgejo=forgejo)
    for name in drop:
        headers.pop(name)
    headers.update(overrides)
    return client.post(route, content=body, headers=headers)


def published(log: InMemoryEventLog) -> GitEventReceived:
    [(topic, key, value)] = log.records
    assert topic == "cairn.git.events"
    event = GitEventReceived.model_validate_json(value or b"")
    assert key == event.repository.key
    return event


@pytest.mark.parametrize(("route", "forgejo"), [(ROUTES[0], False), (ROUTES[1], True)])
def test_signed_push_is_published_then_accepted(
    log: InMemoryEventLog, client: TestClient, route: str, forgejo: bool
) -> None:
    response = deliver(client, "push", a_push(), route=route, forgejo=forgejo, delivery="d-1")
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "delivery": "d-1", "offset": 0}
    event = published(log)
    assert event.repository.key == "gitea.com/acme/ledger"
    assert isinstance(event.change, PushReceived) and event.change.after == AFTER
    assert list(log.deliveries) == ["gitea:d-1"]


def test_forgejo_headers_alone_are_understood(client: TestClient, log: InMemoryEventLog) -> None:
    body = encode(a_push())
    headers = {
        k: v
        for k, v in gitea_headers("push", "fj-1", body, SECRET, forgejo=True).items()
        if not k.startswith(("X-Gitea-", "X-Gogs-", "X-GitHub-", "X-Hub-"))
    }
    response = client.post("/webhooks/forgejo", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert list(log.deliveries) == ["gitea:fj-1"]


def test_one_delivery_reaching_both_routes_is_processed_once(
    client: TestClient, log: InMemoryEventLog
) -> None:
    first = deliver(client, "push", a_push(), route=ROUTES[1], forgejo=True, delivery="d-2")
    again = deliver(client, "push", a_push(), route=ROUTES[0], forgejo=True, delivery="d-2")
    assert first.json()["status"] == "accepted"
    assert again.json() == {"status": "duplicate", "delivery": "d-2"}
    assert len(log.records) == 1


def test_form_encoded_delivery_signed_over_its_json_is_accepted(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload_json = encode(a_push())
    headers = gitea_headers("push", "d-3", payload_json, SECRET, form=True)
    response = client.post("/webhooks/gitea", content=form_body(payload_json), headers=headers)
    assert response.status_code == 202, response.text
    assert len(log.records) == 1


def test_repository_deleted_is_published(client: TestClient, log: InMemoryEventLog) -> None:
    assert deliver(client, "repository", repository_payload("deleted", REPO)).status_code == 202
    assert published(log).change == RepositoryChanged(action="deleted")


def test_push_to_another_branch_is_ignored(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "push", a_push("refs/heads/dev"))
    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "push to refs/heads/dev is not the default branch (main)",
    }
    assert log.records == []


# --- 401 -------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_unsigned_delivery_is_refused(
    client: TestClient, log: InMemoryEventLog, route: str
) -> None:
    response = deliver(client, "push", a_push(), route=route, secret=None)
    assert response.status_code == 401
    assert "X-Gitea-Signature" in response.json()["error"]
    assert log.records == []


def test_signature_with_the_wrong_secret_is_refused(
    client: TestClient, log: InMemoryEventLog
) -> None:
    response = deliver(client, "push", a_push(), secret=b"not-the-secret")
    assert response.status_code == 401
    assert "CAIRN_GITEA_WEBHOOK_SECRET" in response.json()["error"]


def test_tampered_body_is_refused(client: TestClient) -> None:
    body = encode(a_push())
    headers = gitea_headers("push", "d", body, SECRET)
    tampered = body.replace(b"acme", b"evil")
    assert client.post("/webhooks/gitea", content=tampered, headers=headers).status_code == 401


def test_github_style_signature_alone_does_not_authenticate(client: TestClient) -> None:
    response = deliver(client, "push", a_push(), drop=("X-Gitea-Signature", "X-Gogs-Signature"))
    assert response.status_code == 401


def test_second_secret_is_accepted_during_rotation(log: InMemoryEventLog) -> None:
    client = client_for(log, gitea_webhook_secret=SecretStr("old,new"))
    assert deliver(client, "push", a_push(), secret=b"new").status_code == 202


def test_deliveries_are_refused_when_no_secret_is_configured(log: InMemoryEventLog) -> None:
    client = client_for(log, gitea_webhook_secret=None)
    response = deliver(client, "push", a_push(), route=ROUTES[1], forgejo=True)
    assert response.status_code == 401
    message = response.json()["error"]
    assert "Forgejo" in message and "CAIRN_GITEA_WEBHOOK_SECRET" in message
    assert "--insecure-webhooks" in message


def test_insecure_mode_accepts_unsigned_deliveries(log: InMemoryEventLog) -> None:
    client = client_for(log, gitea_webhook_secret=None, insecure_webhooks=True)
    assert deliver(client, "push", a_push(), secret=None).status_code == 202


# --- 400 / 413 / 503 -------------------------------------------------------------------


def test_missing_event_header_is_a_bad_request(client: TestClient) -> None:
    response = deliver(client, "push", a_push(), drop=("X-Gitea-Event",))
    assert response.status_code == 400
    assert "X-Gitea-Event" in response.json()["error"]


def test_missing_delivery_header_is_a_bad_request(client: TestClient) -> None:
    response = deliver(client, "push", a_push(), drop=("X-Gitea-Delivery",))
    assert response.status_code == 400
    assert "X-Gitea-Delivery" in response.json()["error"]


@pytest.mark.parametrize("body", [b"{not json", b'"push"'])
def test_body_that_is_not_a_json_object_is_a_bad_request(client: TestClient, body: bytes) -> None:
    assert deliver(client, "push", body).status_code == 400


def test_malformed_payload_is_a_bad_request_naming_the_field(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    del payload["repository"]["clone_url"]
    response = deliver(client, "push", payload)
    assert response.status_code == 400
    assert "repository.clone_url" in response.json()["error"]
    assert log.records == []


def test_oversized_body_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    payload = a_push()
    payload["padding"] = "x" * LIMIT
    assert deliver(client, "push", payload).status_code == 413
    assert log.records == []


def test_unavailable_log_answers_503(client: TestClient, log: InMemoryEventLog) -> None:
    log.failure = LogUnavailable("disk is read-only")
    response = deliver(client, "push", a_push())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
