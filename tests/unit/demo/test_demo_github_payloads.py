"""Demo deliveries have the fields and headers GitHub documents, and verify as GitHub's do."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from ingest.github import normalise, verify_signature
from services.demo.github_payloads import (
    ZERO_SHA,
    CommitInfo,
    GitHubRepoInfo,
    encode,
    github_headers,
    ping_payload,
    push_payload,
    repository_payload,
    sign,
)
from services.model.events import GitEventReceived, RepositoryChanged

REPO = GitHubRepoInfo(
    owner="acme",
    name="checkout-web",
    clone_url="file:///srv/demo/remotes/acme/checkout-web.git",
    html_url="file:///srv/demo/remotes/acme/checkout-web.git",
)
COMMITS = [
    CommitInfo(
        id="c" * 40,
        tree_id="d" * 40,
        message="Describe checkout-web",
        timestamp="2024-03-04T09:05:00+00:00",
        added=("catalog-info.yaml",),
    )
]

PUSH_FIELDS = {
    "ref",
    "before",
    "after",
    "created",
    "deleted",
    "forced",
    "base_ref",
    "compare",
    "commits",
    "head_commit",
    "repository",
    "pusher",
    "sender",
}
COMMIT_FIELDS = {
    "id",
    "tree_id",
    "distinct",
    "message",
    "timestamp",
    "url",
    "author",
    "committer",
    "added",
    "removed",
    "modified",
}
REPOSITORY_FIELDS = {
    "id",
    "node_id",
    "name",
    "full_name",
    "private",
    "owner",
    "html_url",
    "clone_url",
    "git_url",
    "ssh_url",
    "default_branch",
    "archived",
    "visibility",
}


def test_sign_is_the_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"zen":"Speak like a human."}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign(body, b"secret") == f"sha256={expected}"
    assert verify_signature(body, sign(body, b"secret"), [b"secret"])


def test_headers_are_the_ones_github_sends() -> None:
    body = encode(push_payload(REPO, "refs/heads/main", ZERO_SHA, "c" * 40, COMMITS))
    headers = github_headers("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, b"secret")

    assert headers["X-GitHub-Event"] == "push"
    assert headers["X-GitHub-Delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert headers["X-GitHub-Hook-ID"].isdigit()
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "repository"
    repository_id = json.loads(body)["repository"]["id"]
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(repository_id)
    assert headers["X-Hub-Signature-256"] == sign(body, b"secret")
    sha1 = hmac.new(b"secret", body, hashlib.sha1).hexdigest()
    assert headers["X-Hub-Signature"] == f"sha1={sha1}"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"


def test_headers_without_a_secret_carry_no_signature() -> None:
    headers = github_headers("ping", "d", b"{}", None)
    assert "X-Hub-Signature-256" not in headers
    assert "X-Hub-Signature" not in headers


def test_push_payload_has_every_documented_field() -> None:
    payload = push_payload(REPO, "refs/heads/main", "a" * 40, "c" * 40, COMMITS)

    assert set(payload) >= PUSH_FIELDS
    assert set(payload["commits"][0]) >= COMMIT_FIELDS
    assert payload["head_commit"] == payload["commits"][-1]
    assert payload["created"] is False
    assert payload["compare"].endswith("/compare/aaaaaaaaaaaa...cccccccccccc")
    repository = payload["repository"]
    assert set(repository) >= REPOSITORY_FIELDS | {"master_branch", "stargazers", "organization"}
    assert repository["owner"]["login"] == repository["owner"]["name"] == "acme"
    assert isinstance(repository["created_at"], int)  # push deliveries use Unix times
    assert repository["full_name"] == "acme/checkout-web"
    assert json.loads(encode(payload)) == payload


def test_push_payload_for_a_new_branch_and_a_deleted_branch() -> None:
    created = push_payload(REPO, "refs/heads/main", ZERO_SHA, "c" * 40, COMMITS)
    deleted = push_payload(REPO, "refs/heads/main", "c" * 40, "e" * 40, COMMITS, deleted=True)
    assert created["created"] is True
    assert (deleted["deleted"], deleted["after"], deleted["commits"]) == (True, ZERO_SHA, [])
    assert deleted["head_commit"] is None


def test_payloads_are_the_same_for_the_same_arguments() -> None:
    assert push_payload(REPO, "refs/heads/main", ZERO_SHA, "c" * 40, COMMITS) == push_payload(
        REPO, "refs/heads/main", ZERO_SHA, "c" * 40, COMMITS
    )


def test_repository_payload_uses_iso_times_and_the_action() -> None:
    payload = repository_payload("archived", GitHubRepoInfo(**{**REPO.__dict__, "archived": True}))
    assert payload["action"] == "archived"
    assert set(payload["repository"]) >= REPOSITORY_FIELDS
    assert "master_branch" not in payload["repository"]
    assert isinstance(payload["repository"]["created_at"], str)
    assert payload["repository"]["archived"] is True
    assert payload["sender"]["login"]


def test_renamed_and_transferred_payloads_carry_the_changes() -> None:
    old_name = GitHubRepoInfo(**{**REPO.__dict__, "name": "checkout"})
    old_owner = GitHubRepoInfo(**{**REPO.__dict__, "owner": "acme-labs"})
    renamed = repository_payload("renamed", REPO, old_name)
    transferred = repository_payload("transferred", REPO, old_owner)
    assert renamed["changes"] == {"repository": {"name": {"from": "checkout"}}}
    assert transferred["changes"]["owner"]["from"]["organization"]["login"] == "acme-labs"

    event = normalise("repository", "d", renamed)
    assert isinstance(event, GitEventReceived)
    assert isinstance(event.change, RepositoryChanged)
    assert event.change.previous is not None
    assert event.change.previous.key == "localhost/acme/checkout"


@pytest.mark.parametrize("action", ["renamed", "transferred"])
def test_renamed_or_transferred_payload_needs_the_previous_repository(action: str) -> None:
    with pytest.raises(ValueError, match="needs the previous repository"):
        repository_payload(action, REPO)


def test_ping_payload_describes_the_hook() -> None:
    payload = ping_payload(REPO)
    assert payload["zen"]
    assert payload["hook_id"] == payload["hook"]["id"]
    assert payload["hook"]["events"] == ["push", "repository"]
    assert payload["repository"]["full_name"] == "acme/checkout-web"
