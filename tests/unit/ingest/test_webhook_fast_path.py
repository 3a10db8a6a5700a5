"""The receivers as `cairn ingest` serves them: webhook POSTs take the fast path past
FastAPI's routing and answer exactly as the routes do; everything else still reaches the
app; a log that publishes from the event loop is used that way."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.receiver import add_ingest_routes, create_ingest_router
from services.bus.port import PublishResult
from services.settings import WebhookSettings
from tests.unit.ingest.test_github_receiver import (
    LIMIT,
    SECRET,
    InMemoryEventLog,
    a_push,
    deliver,
)


class LoopPublishingEventLog(InMemoryEventLog):
    """Counts the publishes that came through `publish_async` (the Kafka log's path)."""

    def __init__(self) -> None:
        super().__init__()
        self.published_on_loop = 0

    async def publish_async(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        self.published_on_loop += 1
        return self.publish(topic, key, value, delivery_id=delivery_id)


def served(log: InMemoryEventLog) -> TestClient:
    settings: dict[str, Any] = {
        "github_webhook_secret": SecretStr(SECRET.decode()),
        "max_payload_bytes": LIMIT,
    }
    app = FastAPI()
    add_ingest_routes(app, create_ingest_router(WebhookSettings(**settings), log))
    return TestClient(app, raise_server_exceptions=False)


def test_a_push_is_accepted_once_and_its_repeat_is_a_duplicate() -> None:
    log = InMemoryEventLog()
    client = served(log)
    first = deliver(client, "push", a_push(), delivery="d-1")
    again = deliver(client, "push", a_push(), delivery="d-1")
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert again.status_code == 202 and again.json() == {"status": "duplicate", "delivery": "d-1"}
    assert len(log.records) == 1


def test_a_wrong_signature_is_refused_on_the_fast_path() -> None:
    log = InMemoryEventLog()
    response = deliver(served(log), "push", a_push(), secret=b"not-the-secret")
    assert response.status_code == 401 and "X-Hub-Signature-256" in response.json()["error"]
    assert log.records == []


def test_other_methods_and_paths_still_reach_the_app() -> None:
    client = served(InMemoryEventLog())
    assert client.get("/webhooks/github").status_code == 405
    assert client.post("/webhooks/nowhere", content=b"{}").status_code == 404
    assert "/webhooks/github" in client.get("/openapi.json").json()["paths"]


def test_a_log_that_publishes_from_the_event_loop_is_used_without_a_thread() -> None:
    log = LoopPublishingEventLog()
    response = deliver(served(log), "push", a_push(), delivery="d-2")
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert log.published_on_loop == 1 and len(log.records) == 1
