"""Gitea and Forgejo deliveries -> envelopes, or the reason they are ignored; signatures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.common import Ignored, MalformedPayload
from ingest.gitea import normalise, signed_content, verify_signature
from services.demo.gitea_payloads import (
    ZERO_SHA,
    GiteaCommit,
    GiteaRepoInfo,
    create_payload,
    delete_payload,
    encode,
    form_body,
    gitea_headers,
    push_payload,
    repository_payload,
    sign,
)
from services.model.events import (
    CommitSeen,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
    ResyncRequested,
)

REPO = GiteaRepoInfo(
    owner="acme",
    name="ledger",
    html_url="https://codeberg.org/acme/ledger",
    clone_url="https://codeberg.org/acme/ledger.git",
)
BEFORE = "1" * 40
AFTER = "2" * 40
COMMITS = [GiteaCommit(id=AFTER, message="Describe the ledger", timestamp="2024-03-04T09:20:00Z")]


def envelope(result: GitEventReceived | Ignored) -> GitEventReceived:
    assert isinstance(result, GitEventReceived), result
    return result


def ignored(result: GitEventReceived | Ignored) -> str:
    assert isinstance(result, Ignored), result
    return result.reason


def test_push_to_the_default_branch_becomes_push_received() -> None:
    payload = push_payload(REPO, "refs/heads/main", BEFORE, AFTER, COMMITS)
    event = envelope(normalise("push", "d-1", payload))
    assert (event.source, event.delivery_id, event.event_type) == ("gitea", "d-1", "push")
    assert event.raw == payload
    assert event.repository == Repository(
        provider="gitea",
        host="codeberg.org",
        owner="acme",
        name="ledger",
        clone_url="https://codeberg.org/acme/ledger.git",
        html_url="https://codeberg.org/acme/ledger",
        default_branch="main",
    )
    assert event.change == PushReceived(
        ref="refs/heads/main",
        before=BEFORE,
        after=AFTER,
        commits=[CommitSeen(id=AFTER, timestamp=datetime(2024, 3, 4, 9, 20, tzinfo=UTC))],
    )


def test_push_to_another_branch_is_ignored_with_the_reason() -> None:
    payload = push_payload(REPO, "refs/heads/feature", BEFORE, AFTER, COMMITS)
    assert ignored(normalise("push", "d", payload)) == (
        "push to refs/heads/feature is not the default branch (main)"
    )


def test_tag_push_is_ignored() -> None:
    payload = push_payload(REPO, "refs/tags/v1.2.0", ZERO_SHA, AFTER)
    assert "not the default branch" in ignored(normalise("push", "d", payload))


def test_push_follows_a_default_branch_other_than_main() -> None:
    repo = GiteaRepoInfo(REPO.owner, REPO.name, REPO.html_url, REPO.clone_url, "trunk")
    event = envelope(normalise("push", "d", push_payload(repo, "refs/heads/trunk", BEFORE, AFTER)))
    assert event.repository.default_branch == "trunk"


def test_push_with_an_all_zero_after_is_a_deleted_branch() -> None:
    change = envelope(
        normalise("push", "d", push_payload(REPO, "refs/heads/main", BEFORE, ZERO_SHA))
    ).change
    assert change == PushReceived(ref="refs/heads/main", before=BEFORE, deleted=True)


def test_deleting_the_default_branch_is_a_push_with_deleted() -> None:
    event = envelope(normalise("delete", "d", delete_payload(REPO, "main")))
    assert event.event_type == "delete"
    assert event.change == PushReceived(ref="refs/heads/main", deleted=True)


@pytest.mark.parametrize(("ref", "ref_type"), [("feature", "branch"), ("main", "tag")])
def test_deleting_another_branch_or_a_tag_is_ignored(ref: str, ref_type: str) -> None:
    assert "not the default branch" in ignored(
        normalise("delete", "d", delete_payload(REPO, ref, ref_type))
    )


def test_created_branch_is_ignored_because_its_push_follows() -> None:
    assert "push" in ignored(normalise("create", "d", create_payload(REPO, "main", AFTER)))


def test_deleted_repository_becomes_repository_changed() -> None:
    event = envelope(normalise("repository", "d", repository_payload("deleted", REPO)))
    assert event.change == RepositoryChanged(action="deleted")
    assert event.repository.key == "codeberg.org/acme/ledger"


def test_created_repository_requests_a_resync() -> None:
    change = envelope(normalise("repository", "d", repository_payload("created", REPO))).change
    assert isinstance(change, ResyncRequested) and "acme/ledger" in change.reason


def test_unknown_repository_action_is_ignored() -> None:
    assert "'renamed'" in ignored(normalise("repository", "d", repository_payload("renamed", REPO)))


@pytest.mark.parametrize("event", ["issues", "pull_request", "release", "fork", "wiki"])
def test_events_cairn_does_not_use_are_ignored_by_name(event: str) -> None:
    assert ignored(normalise(event, "d", {})) == f"Gitea event {event!r} is not used by Cairn"


def test_owner_username_is_used_when_login_is_absent() -> None:
    payload = push_payload(REPO, "refs/heads/main", BEFORE, AFTER)
    del payload["repository"]["owner"]["login"]
    assert envelope(normalise("push", "d", payload)).repository.owner == "acme"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("repository"), "repository"),
        (lambda p: p["repository"].pop("html_url"), "repository.html_url"),
        (lambda p: p["repository"].pop("clone_url"), "repository.clone_url"),
        (lambda p: p["repository"].pop("default_branch"), "repository.default_branch"),
        (lambda p: p["repository"].update(owner="acme"), "repository.owner"),
        (lambda p: p.update(ref=None), "ref"),
        (lambda p: p["commits"][0].update(timestamp=12), "commits[0].timestamp"),
    ],
)
def test_malformed_push_names_the_field(mutate: Any, field: str) -> None:
    payload = push_payload(REPO, "refs/heads/main", BEFORE, AFTER, COMMITS)
    mutate(payload)
    with pytest.raises(MalformedPayload) as raised:
        normalise("push", "d", payload)
    assert f"The Gitea payload field '{field}'" in str(raised.value)


def test_repository_event_without_an_action_is_malformed() -> None:
    payload = repository_payload("deleted", REPO)
    del payload["action"]
    with pytest.raises(MalformedPayload, match="'action'"):
        normalise("repository", "d", payload)


# --- signature -------------------------------------------------------------------------


def test_bare_hex_signature_with_the_secret_is_valid() -> None:
    body = encode(push_payload(REPO, "refs/heads/main", BEFORE, AFTER))
    assert verify_signature(body, sign(body, b"s3cret"), [b"s3cret"])
    assert verify_signature(body, sign(body, b"s3cret").upper(), [b"s3cret"])


def test_signature_under_the_second_secret_is_valid_while_rotating() -> None:
    body = b'{"ref": "refs/heads/main"}'
    assert verify_signature(body, sign(body, b"new"), [b"old", b"new"])


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=" + "0" * 64, "0" * 63, "g" * 64, sign(b"other body", b"s3cret")],
)
def test_missing_prefixed_short_or_foreign_signature_is_invalid(header: str | None) -> None:
    assert not verify_signature(b'{"ref": "refs/heads/main"}', header, [b"s3cret"])


def test_form_encoded_delivery_is_verified_over_its_json_payload() -> None:
    payload_json = encode(push_payload(REPO, "refs/heads/main", BEFORE, AFTER))
    body = form_body(payload_json)
    assert signed_content(body, "application/x-www-form-urlencoded") == payload_json
    assert signed_content(body, "application/json") == body


# --- the demo deliveries have Gitea's shape --------------------------------------------


def test_demo_push_has_the_fields_of_giteas_push_payload_and_headers() -> None:
    payload = push_payload(REPO, "refs/heads/main", BEFORE, AFTER, COMMITS)
    assert set(payload) == {
        "ref",
        "before",
        "after",
        "compare_url",
        "commits",
        "total_commits",
        "head_commit",
        "repository",
        "pusher",
        "sender",
    }
    assert {
        "id",
        "owner",
        "name",
        "full_name",
        "html_url",
        "clone_url",
        "ssh_url",
        "default_branch",
        "archived",
        "private",
        "empty",
        "fork",
        "mirror",
    } <= set(payload["repository"])
    assert {"login", "username", "email", "html_url"} <= set(payload["repository"]["owner"])
    body = encode(payload)
    gitea = gitea_headers("push", "d", body, b"s")
    assert gitea["X-Gitea-Signature"] == sign(body, b"s")
    assert gitea["X-Hub-Signature-256"] == "sha256=" + sign(body, b"s")
    assert "X-Forgejo-Event" not in gitea
    forgejo = gitea_headers("push", "d", body, b"s", forgejo=True)
    assert forgejo["X-Forgejo-Signature"] == forgejo["X-Gitea-Signature"]
    assert forgejo["X-Forgejo-Delivery"] == forgejo["X-Gitea-Delivery"] == "d"
