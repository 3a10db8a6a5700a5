"""What a Git host is answered for good, bad, repeated and unknown deliveries."""

from __future__ import annotations

import json
import uuid

from services.demo.github_payloads import push_payload
from tests.e2e.catalog_files import component
from tests.support.server import wait_until


def test_a_wrong_signature_is_refused_with_401(cairn, workspace) -> None:
    _repo, info = workspace.repo()
    payload = push_payload(info, "refs/heads/main", "0" * 40, "1" * 40, [])
    response = cairn.send("push", payload, secret="not-the-secret")
    assert response.status_code == 401
    response = cairn.send("push", payload, headers={"X-Hub-Signature-256": ""})
    assert response.status_code == 401


def test_a_malformed_body_is_refused_with_400(cairn) -> None:
    assert cairn.send("push", b"{not json").status_code == 400
    assert cairn.send("push", b"[1, 2]").status_code == 400


def test_an_oversized_body_is_refused_with_413(cairn) -> None:
    body = json.dumps({"padding": "x" * (26 * 1024 * 1024)}).encode()
    assert cairn.send("push", body).status_code == 413


def test_an_unused_event_is_accepted_and_ignored_with_a_reason(cairn) -> None:
    response = cairn.send("star", {"action": "created", "repository": {}})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored" and response.json()["reason"]
    ping = cairn.send("ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert ping.status_code == 202 and ping.json()["status"] == "ignored"


def test_a_repeated_delivery_is_acknowledged_without_reprocessing(cairn, workspace) -> None:
    repo, info = workspace.repo()
    name = f"dup-{uuid.uuid4().hex[:8]}"
    before, after = repo.commit_and_push({"catalog-info.yaml": component(name)})
    delivery = str(uuid.uuid4())
    first = cairn.push(info, before, after, delivery=delivery)
    again = cairn.push(info, before, after, delivery=delivery)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    wait_until(lambda: cairn.entity("component", name), what="the entity")
