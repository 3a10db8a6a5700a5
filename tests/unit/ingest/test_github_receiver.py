"""The HTTP contract of `POST /webhooks/github`, against an in-memory event log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.receiver import create_ingest_router
from services.bus.port import (
    LogConsumer,
    LogUnavailable,
    OutgoingRecord,
    PublishResult,
)
from services.demo.github_payloads import (
    ZERO_SHA,
    CommitInfo,
    GitHubRepoInfo,
    encode,
    github_headers,
    push_payload,
    repository_payload,
)
from services.model.events import GitEventReceived, PushReceived, RepositoryChanged
from services.settings import WebhookSettings

SECRET = b"hook-secret"
LIMIT = 64 * 1024
REPO = GitHubRepoInfo(
    owner="acme",
    name="payments-api",
    clone_url="https://github.com/acme/payments-api.git",
    html_url="https://github.com/acme/payments-api",
)
COMMIT = CommitInfo(
    id="a" * 40, tree_id="b" * 40, message="Add refunds", timestamp="2024-03-04T09:00:00Z"
)


class InMemoryEventLog:
    """Just enough of the `EventLog` port for the receiver: publish with delivery dedupe."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes | None]] = []
        self.deliveries: dict[str, int] = {}
        self.failure: Exception | None = None
        self.publishing_threads: list[str] = []

    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        self.publishing_threads.append(threading.current_thread().name)
        if self.failure is not None:
            raise self.failure
        if delivery_id is not None and delivery_id in self.deliveries:
            return PublishResult(offset=None, duplicate=True)
        self.records.append((topic, key, value))
        offset = len(self.records) - 1
        if delivery_id is not None:
            self.deliveries[delivery_id] = offset
        return PublishResult(offset=offset)

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        for record in records:
            self.publish(record.topic, record.key, record.value)

    def consumer(self, group: str, topics: Sequence[str]) -> LogConsumer:
        raise NotImplementedError("the receiver never consumes")

    def close(self) -> None:
        pass


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


def client_for(log: InMemoryEventLog, **settings: Any) -> TestClient:
    settings.setdefault("github_webhook_secret", SecretStr(SECRET.decode()))
    settings.setdefault("max_payload_bytes", LIMIT)
    app = FastAPI()
    app.include_router(create_ingest_router(WebhookSettings(**settings), log))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(log: InMemoryEventLog) -> TestClient:
    return client_for(log)


def a_push(ref: str = "refs/heads/main") -> dict[str, Any]:
    """A full-shaped push delivery (about 10 KB, under the test's size limit)."""
    return push_payload(REPO, ref, ZERO_SHA, COMMIT.id, [COMMIT])


def deliver(
    client: TestClient,
    event: str,
    payload: Any,
    *,
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    secret: bytes | None = SECRET,
    drop: Sequence[str] = (),
    **overrides: str,
) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = github_headers(event, delivery, body, secret)
    for name in drop:
        headers.pop(name)
    headers.update(overrides)
    return client.post("/webhooks/github", content=body, headers=headers)


# --- accepted --------------------------------------------------------------------------


def test_signed_push_is_published_then_accepted(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "push", a_push(), delivery="d-1")

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "delivery": "d-1", "offset": 0}
    [(topic, key, value)] = log.records
    assert topic == "cairn.git.events"
    assert key == "github.com/acme/payments-api"
    assert value is not None
    event = GitEventReceived.model_validate_json(value)
    assert event.delivery_id == "d-1"
    assert event.source == "github"
    assert isinstance(event.change, PushReceived)
    assert event.change.after == COMMIT.id
    assert event.raw == a_push()
    assert list(log.deliveries) == ["github:d-1"]


def test_repository_deleted_event_is_published(client: TestClient, log: InMemoryEventLog) -> None:
    payload = repository_payload("deleted", REPO)
    response = deliver(client, "repository", payload, delivery="d-2")
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    event = GitEventReceived.model_validate_json(log.records[0][2] or b"")
    assert event.change == RepositoryChanged(action="deleted")


def test_repeated_delivery_is_answered_as_duplicate_and_published_once(
    client: TestClient, log: InMemoryEventLog
) -> None:
    first = deliver(client, "push", a_push(), delivery="d-1")
    again = deliver(client, "push", a_push(), delivery="d-1")

    assert first.json()["status"] == "accepted"
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "delivery": "d-1"}
    assert len(log.records) == 1


def test_form_encoded_delivery_is_accepted(client: TestClient, log: InMemoryEventLog) -> None:
    body = urlencode({"payload": json.dumps(a_push())}).encode()
    response = deliver(
        client, "push", body, **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert len(log.records) == 1


def test_publish_runs_in_a_worker_thread(client: TestClient, log: InMemoryEventLog) -> None:
    deliver(client, "push", a_push())
    [thread] = log.publishing_threads
    assert thread != threading.current_thread().name
    assert "worker" in thread.lower()


# --- ignored ---------------------------------------------------------------------------


def test_unused_event_is_ignored_with_its_reason(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "star", {"action": "created", "starred_at": None})
    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "GitHub event 'star' is not used by Cairn",
    }
    assert log.records == []


def test_push_to_a_feature_branch_is_ignored(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "push", a_push("refs/heads/feature"))
    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "push to refs/heads/feature is not the default branch (main)",
    }
    assert log.records == []


def test_ping_is_ignored(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "ping", {"zen": "Design for failure.", "hook_id": 1})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"


# --- 401 -------------------------------------------------------------------------------


def test_missing_signature_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    response = deliver(client, "push", a_push(), secret=None)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert log.records == []


def test_signature_with_the_wrong_secret_is_refused(
    client: TestClient, log: InMemoryEventLog
) -> None:
    response = deliver(client, "push", a_push(), secret=b"not-the-secret")
    assert response.status_code == 401
    assert log.records == []


def test_tampered_body_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    body = encode(a_push())
    headers = github_headers("push", "d", body, SECRET)
    response = client.post(
        "/webhooks/github", content=body.replace(b"main", b"evil"), headers=headers
    )
    assert response.status_code == 401


def test_delivery_signed_with_the_second_secret_is_accepted_during_rotation(
    log: InMemoryEventLog,
) -> None:
    client = client_for(log, github_webhook_secret=SecretStr("old-secret, new-secret"))
    response = deliver(client, "push", a_push(), secret=b"new-secret")
    assert response.status_code == 202


def test_unsigned_deliveries_are_refused_when_no_secret_is_configured(
    log: InMemoryEventLog,
) -> None:
    client = client_for(log, github_webhook_secret=None)
    response = deliver(client, "push", a_push(), secret=None)

    assert response.status_code == 401
    message = response.json()["error"]
    assert "Unsigned deliveries are refused" in message
    assert "CAIRN_GITHUB_WEBHOOK_SECRET" in message
    assert "--insecure-webhooks" in message
    assert log.records == []


def test_insecure_mode_accepts_unsigned_deliveries(log: InMemoryEventLog) -> None:
    client = client_for(log, github_webhook_secret=None, insecure_webhooks=True)
    response = deliver(client, "push", a_push(), secret=None)
    assert response.status_code == 202
    assert len(log.records) == 1


def test_insecure_mode_still_checks_a_configured_secret(log: InMemoryEventLog) -> None:
    client = client_for(log, insecure_webhooks=True)
    assert deliver(client, "push", a_push(), secret=None).status_code == 401
    assert deliver(client, "push", a_push(), secret=b"wrong").status_code == 401
    assert deliver(client, "push", a_push()).status_code == 202


# --- 400 -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_delivery_header_is_a_bad_request(
    client: TestClient, log: InMemoryEventLog, header: str
) -> None:
    response = deliver(client, "push", a_push(), drop=[header])
    assert response.status_code == 400
    assert response.json() == {"error": f"The delivery has no {header} header."}
    assert log.records == []


def test_body_that_is_not_json_is_a_bad_request(client: TestClient) -> None:
    response = deliver(client, "push", b"ref=refs/heads/main")
    assert response.status_code == 400
    assert response.json() == {"error": "The delivery body is not valid JSON."}


def test_json_that_is_not_an_object_is_a_bad_request(client: TestClient) -> None:
    response = deliver(client, "push", b'[{"ref": "refs/heads/main"}]')
    assert response.status_code == 400
    assert response.json() == {"error": "The delivery body is an array, not a JSON object."}


def test_form_without_a_payload_field_is_a_bad_request(client: TestClient) -> None:
    body = urlencode({"data": "{}"}).encode()
    response = deliver(
        client, "push", body, **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert "payload" in response.json()["error"]


def test_malformed_payload_is_a_bad_request_naming_the_field(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    del payload["repository"]["clone_url"]
    response = deliver(client, "push", payload)
    assert response.status_code == 400
    assert "repository.clone_url" in response.json()["error"]
    assert log.records == []


# --- 413 -------------------------------------------------------------------------------


def test_declared_content_length_over_the_limit_is_refused(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    payload["padding"] = "x" * LIMIT
    response = deliver(client, "push", payload)
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["error"]
    assert "CAIRN_MAX_PAYLOAD_BYTES" in response.json()["error"]
    assert log.records == []


def test_streamed_body_without_content_length_over_the_limit_is_refused(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    payload["padding"] = "x" * LIMIT
    body = encode(payload)
    headers = github_headers("push", "d", body, SECRET)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = client.post("/webhooks/github", content=chunks(), headers=headers)
    assert response.request.headers.get("content-length") is None
    assert response.status_code == 413
    assert log.records == []


def test_body_longer_than_its_declared_content_length_is_refused(
    client: TestClient, log: InMemoryEventLog
) -> None:
    payload = a_push()
    payload["padding"] = "x" * LIMIT
    body = encode(payload)
    headers = github_headers("push", "d", body, SECRET)
    headers["Content-Length"] = "100"
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.request.headers["content-length"] == "100"  # the lie was really sent
    assert response.status_code == 413
    assert log.records == []


def test_content_length_that_is_not_a_number_is_a_bad_request(client: TestClient) -> None:
    body = encode(a_push())
    headers = github_headers("push", "d", body, SECRET)
    headers["Content-Length"] = "lots"
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 400


# --- the log fails ---------------------------------------------------------------------


def test_unavailable_log_answers_503_with_retry_after(
    client: TestClient, log: InMemoryEventLog
) -> None:
    log.failure = LogUnavailable("broker unreachable")
    response = deliver(client, "push", a_push())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert set(response.json()) == {"error"}


def test_unexpected_publish_failure_is_never_answered_2xx(
    client: TestClient, log: InMemoryEventLog
) -> None:
    log.failure = OSError("disk full")
    response = deliver(client, "push", a_push())
    assert response.status_code == 500
    assert set(response.json()) == {"error"}


def test_log_recovers_and_the_retried_delivery_is_accepted(
    client: TestClient, log: InMemoryEventLog
) -> None:
    log.failure = LogUnavailable("broker unreachable")
    assert deliver(client, "push", a_push(), delivery="d-9").status_code == 503
    log.failure = None
    response = deliver(client, "push", a_push(), delivery="d-9")
    assert response.json() == {"status": "accepted", "delivery": "d-9", "offset": 0}
