"""Bitbucket Cloud deliveries -> envelopes, or the reason they are ignored; signatures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.bitbucket import CONVENTIONAL_MAIN_BRANCHES, normalise, verify_signature
from ingest.common import Ignored, MalformedPayload
from services.demo.bitbucket_payloads import (
    BitbucketCommit,
    BitbucketRepoInfo,
    bitbucket_headers,
    branch_push_payload,
    encode,
    push_change,
    push_payload,
    repo_deleted_payload,
    repo_updated_payload,
    sign,
)
from services.model.events import (
    CommitSeen,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
)

REPO = BitbucketRepoInfo("acme", "billing-api", "https://bitbucket.org/acme/billing-api")
WITH_MAIN = BitbucketRepoInfo(
    "acme", "billing-api", "https://bitbucket.org/acme/billing-api", mainbranch="develop"
)
OLD = "1" * 40
NEW = "2" * 40
COMMITS = [BitbucketCommit(NEW, "Describe billing\n", "2024-03-04T09:20:00+00:00")]


def envelope(result: GitEventReceived | Ignored) -> GitEventReceived:
    assert isinstance(result, GitEventReceived), result
    return result


def ignored(result: GitEventReceived | Ignored) -> str:
    assert isinstance(result, Ignored), result
    return result.reason


def test_push_to_main_becomes_push_received_with_the_clone_url_from_the_html_link() -> None:
    payload = branch_push_payload(REPO, "main", OLD, NEW, COMMITS)
    assert "mainbranch" not in payload["repository"]  # as Bitbucket sends it
    event = envelope(normalise("repo:push", "r-1", payload))
    assert (event.source, event.delivery_id, event.event_type) == ("bitbucket", "r-1", "repo:push")
    assert event.raw == payload
    assert event.repository == Repository(
        provider="bitbucket",
        host="bitbucket.org",
        owner="acme",
        name="billing-api",
        clone_url="https://bitbucket.org/acme/billing-api.git",
        html_url="https://bitbucket.org/acme/billing-api",
        default_branch="main",
    )
    assert event.change == PushReceived(
        ref="refs/heads/main",
        before=OLD,
        after=NEW,
        commits=[CommitSeen(id=NEW, timestamp=datetime(2024, 3, 4, 9, 20, tzinfo=UTC))],
    )


def test_without_mainbranch_a_push_to_master_is_read_as_the_main_branch() -> None:
    event = envelope(normalise("repo:push", "r", branch_push_payload(REPO, "master", OLD, NEW)))
    assert event.repository.default_branch == "master"
    assert CONVENTIONAL_MAIN_BRANCHES == ("main", "master")


def test_without_mainbranch_other_branches_are_ignored_with_the_explanation() -> None:
    reason = ignored(normalise("repo:push", "r", branch_push_payload(REPO, "feature/x", OLD, NEW)))
    assert reason.startswith("push to refs/heads/feature/x is not to main or master")
    assert "does not name the repository's main branch" in reason


def test_named_mainbranch_is_the_only_branch_read() -> None:
    event = envelope(
        normalise("repo:push", "r", branch_push_payload(WITH_MAIN, "develop", OLD, NEW))
    )
    assert event.repository.default_branch == "develop"
    assert ignored(
        normalise("repo:push", "r", branch_push_payload(WITH_MAIN, "main", OLD, NEW))
    ) == ("push to refs/heads/main is not the main branch (develop)")


def test_branch_created_by_the_push_has_no_before_commit() -> None:
    change = envelope(
        normalise("repo:push", "r", branch_push_payload(REPO, "main", None, NEW))
    ).change
    assert isinstance(change, PushReceived)
    assert change.before is None and change.after == NEW and not change.deleted


def test_deleted_main_branch_is_a_push_with_deleted() -> None:
    payload = branch_push_payload(REPO, "main", OLD, None)
    assert payload["push"]["changes"][0]["new"] is None
    change = envelope(normalise("repo:push", "r", payload)).change
    assert change == PushReceived(ref="refs/heads/main", before=OLD, deleted=True)


def test_the_main_branch_change_is_picked_out_of_a_push_of_several_refs() -> None:
    payload = push_payload(
        REPO,
        [
            push_change(REPO, "v1.0.0", None, NEW, kind="tag"),
            push_change(REPO, "feature", OLD, NEW),
            push_change(REPO, "main", OLD, NEW, COMMITS),
        ],
    )
    change = envelope(normalise("repo:push", "r", payload)).change
    assert isinstance(change, PushReceived) and change.ref == "refs/heads/main"


def test_tag_only_push_is_ignored() -> None:
    payload = push_payload(REPO, [push_change(REPO, "main", None, NEW, kind="tag")])
    assert "tag main" in ignored(normalise("repo:push", "r", payload))


def test_repo_deleted_becomes_repository_changed() -> None:
    event = envelope(normalise("repo:deleted", "r", repo_deleted_payload(REPO)))
    assert event.change == RepositoryChanged(action="deleted")
    assert event.repository.key == "bitbucket.org/acme/billing-api"


def test_renamed_repository_names_its_previous_address() -> None:
    renamed = REPO.moved("acme", "billing")
    event = envelope(normalise("repo:updated", "r", repo_updated_payload(renamed, REPO)))
    assert event.repository.key == "bitbucket.org/acme/billing"
    assert isinstance(event.change, RepositoryChanged) and event.change.action == "renamed"
    assert event.change.previous is not None
    assert event.change.previous.key == "bitbucket.org/acme/billing-api"
    assert event.change.previous.clone_url == "https://bitbucket.org/acme/billing-api.git"


def test_repository_moved_to_another_workspace_is_transferred() -> None:
    moved = REPO.moved("acme-finance", "billing-api")
    change = envelope(normalise("repo:updated", "r", repo_updated_payload(moved, REPO))).change
    assert isinstance(change, RepositoryChanged) and change.action == "transferred"
    assert change.previous is not None and change.previous.owner == "acme"


def test_old_full_name_alone_gives_the_previous_address() -> None:
    payload = repo_updated_payload(REPO.moved("acme", "billing"), REPO)
    del payload["changes"]["links"]
    change = envelope(normalise("repo:updated", "r", payload)).change
    assert isinstance(change, RepositoryChanged) and change.previous is not None
    assert change.previous.html_url == "https://bitbucket.org/acme/billing-api"


def test_update_that_does_not_move_the_repository_is_ignored() -> None:
    payload = repo_updated_payload(REPO, REPO)
    payload["changes"] = {"description": {"new": "Bills", "old": ""}}
    assert "name or workspace" in ignored(normalise("repo:updated", "r", payload))


@pytest.mark.parametrize(
    "event_key", ["repo:fork", "repo:transfer", "pullrequest:created", "repo:commit_status_created"]
)
def test_events_cairn_does_not_use_are_ignored_by_key(event_key: str) -> None:
    assert ignored(normalise(event_key, "r", {})) == (
        f"Bitbucket event {event_key!r} is not used by Cairn"
    )


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("repository"), "repository"),
        (lambda p: p["repository"].pop("links"), "repository.links"),
        (lambda p: p["repository"]["links"]["html"].pop("href"), "repository.links.html.href"),
        (
            lambda p: p["repository"]["links"]["html"].update(href="https://bitbucket.org/acme"),
            "repository.links.html.href",
        ),
        (lambda p: p.pop("push"), "push"),
        (lambda p: p["push"].update(changes={}), "push.changes"),
        (lambda p: p["push"]["changes"][0].update(new=None, old=None), "push.changes[0].new"),
        (lambda p: p["push"]["changes"][0]["new"].pop("name"), "push.changes[0].new.name"),
        (
            lambda p: p["push"]["changes"][0]["new"]["target"].pop("hash"),
            "push.changes[0].new.target.hash",
        ),
        (
            lambda p: p["push"]["changes"][0]["commits"][0].update(date="soon"),
            "push.changes[0].commits[0].date",
        ),
    ],
)
def test_malformed_push_names_the_field(mutate: Any, field: str) -> None:
    payload = branch_push_payload(REPO, "main", OLD, NEW, COMMITS)
    mutate(payload)
    with pytest.raises(MalformedPayload) as raised:
        normalise("repo:push", "r", payload)
    assert f"The Bitbucket payload field '{field}'" in str(raised.value)


# --- signature -------------------------------------------------------------------------


def test_sha256_signature_with_the_secret_is_valid() -> None:
    body = encode(branch_push_payload(REPO, "main", OLD, NEW))
    assert verify_signature(body, sign(body, b"s3cret"), [b"s3cret"])


def test_signature_under_the_second_secret_is_valid_while_rotating() -> None:
    assert verify_signature(b"{}", sign(b"{}", b"new"), [b"old", b"new"])


@pytest.mark.parametrize(
    "header",
    [None, "", "0" * 64, "sha1=" + "0" * 40, "sha256=" + "0" * 63, sign(b"other", b"s3cret")],
)
def test_missing_bare_short_or_foreign_signature_is_invalid(header: str | None) -> None:
    assert not verify_signature(b"{}", header, [b"s3cret"])


# --- the demo deliveries have Bitbucket's documented shape -----------------------------


def test_demo_push_has_the_documented_fields_and_headers() -> None:
    payload = branch_push_payload(REPO, "main", OLD, NEW, COMMITS)
    assert set(payload) == {"push", "actor", "repository"}
    [change] = payload["push"]["changes"]
    assert set(change) == {
        "new",
        "old",
        "links",
        "created",
        "forced",
        "closed",
        "commits",
        "truncated",
    }
    assert {"type", "name", "target", "links"} <= set(change["new"])
    assert {"type", "hash", "date", "author", "message", "links", "parents"} <= set(
        change["new"]["target"]
    )
    assert {
        "type",
        "full_name",
        "links",
        "name",
        "scm",
        "owner",
        "workspace",
        "is_private",
        "project",
        "uuid",
    } <= set(payload["repository"])
    body = encode(payload)
    headers = bitbucket_headers("repo:push", "r", body, b"s")
    assert headers["X-Hub-Signature"] == sign(body, b"s")
    assert {"X-Event-Key", "X-Hook-UUID", "X-Request-UUID", "X-Attempt-Number"} <= set(headers)
    assert "X-Hub-Signature" not in bitbucket_headers("repo:push", "r", body, None)
