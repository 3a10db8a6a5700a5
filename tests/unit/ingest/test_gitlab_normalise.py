"""GitLab webhook and system hook deliveries -> envelopes, or the reason they are ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ingest.common import Ignored, MalformedPayload
from ingest.gitlab import ASSUMED_DEFAULT_BRANCH, normalise, verify_token
from services.demo.gitlab_payloads import (
    ZERO_SHA,
    GitLabCommit,
    GitLabProjectInfo,
    gitlab_headers,
    project_event_payload,
    push_payload,
    repository_update_payload,
)
from services.model.events import (
    CommitSeen,
    GitEventReceived,
    PushReceived,
    Repository,
    RepositoryChanged,
    ResyncRequested,
)

PROJECT = GitLabProjectInfo(
    path_with_namespace="acme/platform/payments-api",
    web_url="https://gitlab.com/acme/platform/payments-api",
)
INSTANCE = "https://gitlab.com"
BEFORE = "1" * 40
AFTER = "2" * 40
COMMITS = [
    GitLabCommit(id="3" * 40, message="Add refunds", timestamp="2024-03-04T10:15:00+01:00"),
    GitLabCommit(id=AFTER, message="Describe refunds", timestamp="2024-03-04T10:20:00+01:00"),
]


def envelope(result: GitEventReceived | Ignored) -> GitEventReceived:
    assert isinstance(result, GitEventReceived), result
    return result


def ignored(result: GitEventReceived | Ignored) -> str:
    assert isinstance(result, Ignored), result
    return result.reason


# --- push ------------------------------------------------------------------------------


def test_push_hook_to_the_default_branch_becomes_push_received() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER, COMMITS)
    event = envelope(normalise("Push Hook", "key-1", payload))

    assert (event.source, event.delivery_id, event.event_type) == ("gitlab", "key-1", "Push Hook")
    assert event.raw == payload
    plus_one = timezone(timedelta(hours=1))
    assert event.change == PushReceived(
        ref="refs/heads/main",
        before=BEFORE,
        after=AFTER,
        commits=[
            CommitSeen(id="3" * 40, timestamp=datetime(2024, 3, 4, 10, 15, tzinfo=plus_one)),
            CommitSeen(id=AFTER, timestamp=datetime(2024, 3, 4, 10, 20, tzinfo=plus_one)),
        ],
    )


def test_nested_group_path_is_the_owner_of_the_repository_key() -> None:
    event = envelope(
        normalise("Push Hook", "k", push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER))
    )
    assert event.repository == Repository(
        provider="gitlab",
        host="gitlab.com",
        owner="acme/platform",
        name="payments-api",
        clone_url="https://gitlab.com/acme/platform/payments-api.git",
        html_url="https://gitlab.com/acme/platform/payments-api",
        default_branch="main",
    )
    assert event.repository.key == "gitlab.com/acme/platform/payments-api"


def test_self_managed_host_and_upper_case_paths_give_a_lower_case_key() -> None:
    project = GitLabProjectInfo("Acme/Payments", "https://GitLab.Acme.test/Acme/Payments")
    event = envelope(
        normalise("Push Hook", "k", push_payload(project, "refs/heads/main", BEFORE, AFTER))
    )
    assert event.repository.key == "gitlab.acme.test/acme/payments"


def test_push_follows_the_projects_default_branch() -> None:
    project = GitLabProjectInfo(
        PROJECT.path_with_namespace, PROJECT.web_url, default_branch="master"
    )
    event = envelope(
        normalise("Push Hook", "k", push_payload(project, "refs/heads/master", BEFORE, AFTER))
    )
    assert event.repository.default_branch == "master"
    assert (
        ignored(
            normalise("Push Hook", "k", push_payload(project, "refs/heads/main", BEFORE, AFTER))
        )
        == "push to refs/heads/main is not the default branch (master)"
    )


def test_push_to_another_branch_is_ignored_with_the_reason() -> None:
    payload = push_payload(PROJECT, "refs/heads/feature/refunds", BEFORE, AFTER, COMMITS)
    assert ignored(normalise("Push Hook", "k", payload)) == (
        "push to refs/heads/feature/refunds is not the default branch (main)"
    )


def test_push_that_creates_the_default_branch_has_no_before_commit() -> None:
    event = envelope(
        normalise("Push Hook", "k", push_payload(PROJECT, "refs/heads/main", ZERO_SHA, AFTER))
    )
    assert isinstance(event.change, PushReceived)
    assert event.change.before is None and event.change.after == AFTER
    assert not event.change.deleted


def test_deleted_default_branch_is_a_push_with_deleted_and_no_after() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, ZERO_SHA)
    assert payload["checkout_sha"] is None
    event = envelope(normalise("Push Hook", "k", payload))
    assert event.change == PushReceived(ref="refs/heads/main", before=BEFORE, deleted=True)


def test_null_checkout_sha_alone_marks_a_deleted_branch() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER)
    payload["checkout_sha"] = None
    change = envelope(normalise("Push Hook", "k", payload)).change
    assert isinstance(change, PushReceived) and change.deleted and change.after is None


def test_after_is_the_checkout_sha() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER)
    payload["checkout_sha"] = "9" * 40
    change = envelope(normalise("Push Hook", "k", payload)).change
    assert isinstance(change, PushReceived) and change.after == "9" * 40


def test_tag_push_hook_is_ignored() -> None:
    payload = push_payload(PROJECT, "refs/tags/v1.0.0", ZERO_SHA, AFTER)
    payload["object_kind"] = payload["event_name"] = "tag_push"
    assert "tag" in ignored(normalise("Tag Push Hook", "k", payload))


@pytest.mark.parametrize("event", ["Merge Request Hook", "Issue Hook", "Note Hook"])
def test_events_cairn_does_not_use_are_ignored_by_name(event: str) -> None:
    assert ignored(normalise(event, "k", {"object_kind": "x"})) == (
        f"GitLab event {event!r} is not used by Cairn"
    )


# --- system hooks ----------------------------------------------------------------------


def test_push_delivered_as_a_system_hook_becomes_push_received() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER, COMMITS, system_hook=True)
    assert "object_kind" not in payload and "id" not in payload["project"]
    event = envelope(normalise("System Hook", "k", payload))
    assert event.event_type == "System Hook"
    assert event.repository.key == "gitlab.com/acme/platform/payments-api"
    assert isinstance(event.change, PushReceived) and event.change.after == AFTER


def test_system_hook_push_to_another_branch_is_ignored() -> None:
    payload = push_payload(PROJECT, "refs/heads/dev", BEFORE, AFTER, system_hook=True)
    assert "not the default branch" in ignored(normalise("System Hook", "k", payload))


def test_project_destroy_deletes_the_repository_at_its_instance_address() -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    event = envelope(normalise("System Hook", "k", payload, instance=INSTANCE))
    assert event.change == RepositoryChanged(action="deleted")
    assert event.repository.key == "gitlab.com/acme/platform/payments-api"
    assert event.repository.html_url == PROJECT.web_url
    assert event.repository.clone_url == PROJECT.git_http_url


def test_project_destroy_from_a_group_webhook_is_a_deletion_too() -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    event = envelope(normalise("Project Hook", "k", payload, instance=INSTANCE))
    assert event.change == RepositoryChanged(action="deleted")
    assert "project_create" in ignored(
        normalise(
            "Project Hook", "k", project_event_payload("project_create", PROJECT), instance=INSTANCE
        )
    )


def test_instance_under_a_relative_url_keeps_its_path_in_the_project_address() -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    event = envelope(
        normalise("System Hook", "k", payload, instance="https://code.acme.test/gitlab/")
    )
    assert event.repository.html_url == "https://code.acme.test/gitlab/acme/platform/payments-api"
    assert event.repository.key == "code.acme.test/acme/platform/payments-api"


def test_project_rename_names_the_previous_path() -> None:
    renamed = PROJECT.moved("acme/platform/payments")
    payload = project_event_payload("project_rename", renamed, previous=PROJECT)
    event = envelope(normalise("System Hook", "k", payload, instance=INSTANCE))
    assert event.repository.key == "gitlab.com/acme/platform/payments"
    assert isinstance(event.change, RepositoryChanged)
    assert event.change.action == "renamed"
    assert event.change.previous is not None
    assert event.change.previous.key == "gitlab.com/acme/platform/payments-api"
    assert event.change.previous.clone_url == PROJECT.git_http_url


def test_project_transfer_names_the_previous_namespace() -> None:
    moved = PROJECT.moved("acme/finance/payments-api")
    payload = project_event_payload("project_transfer", moved, previous=PROJECT)
    event = envelope(normalise("System Hook", "k", payload, instance=INSTANCE))
    assert isinstance(event.change, RepositoryChanged) and event.change.action == "transferred"
    assert event.repository.owner == "acme/finance"
    assert event.change.previous is not None and event.change.previous.owner == "acme/platform"


def test_moved_project_is_assumed_to_keep_the_default_branch_main() -> None:
    payload = project_event_payload("project_rename", PROJECT.moved("acme/x/y"), previous=PROJECT)
    event = envelope(normalise("System Hook", "k", payload, instance=INSTANCE))
    assert event.repository.default_branch == ASSUMED_DEFAULT_BRANCH == "main"


def test_project_lifecycle_without_the_instance_header_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="X-Gitlab-Instance"):
        normalise("System Hook", "k", project_event_payload("project_destroy", PROJECT))


def test_instance_header_that_is_not_a_url_is_malformed() -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    with pytest.raises(MalformedPayload, match="X-Gitlab-Instance"):
        normalise("System Hook", "k", payload, instance="ftp://gitlab.com")


def test_repository_update_of_the_default_branch_requests_a_resync() -> None:
    payload = repository_update_payload(
        PROJECT, [(BEFORE, AFTER, "refs/heads/main"), (ZERO_SHA, AFTER, "refs/tags/v1")]
    )
    event = envelope(normalise("System Hook", "k", payload))
    assert isinstance(event.change, ResyncRequested)
    assert "main" in event.change.reason


def test_repository_update_of_other_refs_only_is_ignored() -> None:
    payload = repository_update_payload(PROJECT, [(BEFORE, AFTER, "refs/heads/feature")])
    assert ignored(normalise("System Hook", "k", payload)) == (
        "repository_update does not touch the default branch (main)"
    )


@pytest.mark.parametrize(
    "event_name", ["project_create", "project_update", "user_create", "group_rename", "key_create"]
)
def test_other_system_hook_events_are_ignored_with_their_name(event_name: str) -> None:
    payload = project_event_payload(event_name, PROJECT)
    assert event_name in ignored(normalise("System Hook", "k", payload, instance=INSTANCE))


def test_system_hook_tag_push_is_ignored() -> None:
    payload = push_payload(PROJECT, "refs/tags/v1", ZERO_SHA, AFTER, system_hook=True)
    payload["event_name"] = "tag_push"
    assert "tag" in ignored(normalise("System Hook", "k", payload))


def test_schema_based_system_hook_event_is_ignored_by_its_object_kind() -> None:
    payload = {"object_kind": "gitlab_subscription_member_approval", "action": "enqueue"}
    assert "gitlab_subscription_member_approval" in ignored(normalise("System Hook", "k", payload))


# --- malformed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("project"), "project"),
        (lambda p: p["project"].pop("web_url"), "project.web_url"),
        (lambda p: p["project"].update(web_url="not a url"), "project.web_url"),
        (lambda p: p["project"].pop("default_branch"), "project.default_branch"),
        (lambda p: p.pop("ref"), "ref"),
        (lambda p: p.update(after=42), "after"),
        (lambda p: p.update(commits={}), "commits"),
        (lambda p: p["commits"][0].pop("id"), "commits[0].id"),
        (lambda p: p["commits"][0].update(timestamp="yesterday"), "commits[0].timestamp"),
    ],
)
def test_malformed_push_names_the_field(mutate: Any, field: str) -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER, COMMITS)
    mutate(payload)
    with pytest.raises(MalformedPayload) as raised:
        normalise("Push Hook", "k", payload)
    assert f"The GitLab payload field '{field}'" in str(raised.value)


def test_system_hook_without_an_event_name_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="'event_name' is missing"):
        normalise("System Hook", "k", {"project_id": 1})


def test_project_rename_without_the_old_path_is_malformed() -> None:
    payload = project_event_payload("project_rename", PROJECT, previous=PROJECT)
    del payload["old_path_with_namespace"]
    with pytest.raises(MalformedPayload, match="old_path_with_namespace"):
        normalise("System Hook", "k", payload, instance=INSTANCE)


def test_project_path_without_a_namespace_is_malformed() -> None:
    payload = project_event_payload("project_destroy", PROJECT)
    payload["path_with_namespace"] = "lonely"
    with pytest.raises(MalformedPayload, match="path_with_namespace"):
        normalise("System Hook", "k", payload, instance=INSTANCE)


def test_envelope_survives_the_log_as_json() -> None:
    event = envelope(
        normalise(
            "Push Hook", "k", push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER, COMMITS)
        )
    )
    again = GitEventReceived.model_validate_json(event.model_dump_json())
    assert again == event
    assert again.received_at.tzinfo is not None and again.received_at <= datetime.now(UTC)


# --- token -----------------------------------------------------------------------------


def test_token_equal_to_a_configured_one_is_valid() -> None:
    assert verify_token("s3cret", [b"s3cret"])


def test_any_configured_token_is_valid_while_rotating() -> None:
    assert verify_token("new", [b"old", b"new"])
    assert verify_token("old", [b"old", b"new"])


@pytest.mark.parametrize("header", [None, "", "s3cre", "s3cret ", "S3CRET", "s3cret\u2603"])
def test_missing_or_different_token_is_invalid(header: str | None) -> None:
    assert not verify_token(header, [b"s3cret"])


def test_no_configured_token_validates_nothing() -> None:
    assert not verify_token("anything", [])


# --- the demo deliveries have GitLab's documented shape --------------------------------


def test_demo_push_hook_has_the_documented_fields_and_headers() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER, COMMITS)
    assert {
        "object_kind",
        "event_name",
        "before",
        "after",
        "ref",
        "ref_protected",
        "checkout_sha",
        "user_id",
        "user_name",
        "user_username",
        "user_email",
        "user_avatar",
        "project_id",
        "project",
        "repository",
        "commits",
        "total_commits_count",
    } <= set(payload)
    assert {
        "id",
        "name",
        "description",
        "web_url",
        "avatar_url",
        "git_ssh_url",
        "git_http_url",
        "namespace",
        "visibility_level",
        "path_with_namespace",
        "default_branch",
        "homepage",
        "url",
        "ssh_url",
        "http_url",
    } <= set(payload["project"])
    assert set(payload["commits"][0]) == {
        "id",
        "message",
        "title",
        "timestamp",
        "url",
        "author",
        "added",
        "modified",
        "removed",
    }
    headers = gitlab_headers("Push Hook", "t")
    assert {
        "X-Gitlab-Event",
        "X-Gitlab-Token",
        "Idempotency-Key",
        "X-Gitlab-Event-UUID",
        "X-Gitlab-Webhook-UUID",
        "X-Gitlab-Instance",
        "User-Agent",
    } <= set(headers)


def test_demo_project_system_hooks_have_the_documented_fields() -> None:
    documented = {
        "created_at",
        "updated_at",
        "event_name",
        "name",
        "owner_email",
        "owner_name",
        "owners",
        "path",
        "path_with_namespace",
        "project_id",
        "project_namespace_id",
        "project_visibility",
    }
    assert set(project_event_payload("project_destroy", PROJECT)) == documented
    moved = project_event_payload("project_transfer", PROJECT.moved("a/b"), previous=PROJECT)
    assert set(moved) == documented | {"old_path_with_namespace"}
    update = repository_update_payload(PROJECT, [(BEFORE, AFTER, "refs/heads/main")])
    assert set(update) == {
        "event_name",
        "user_id",
        "user_name",
        "user_email",
        "user_avatar",
        "project_id",
        "project",
        "changes",
        "refs",
    }


def test_project_without_a_default_branch_yet_is_ignored() -> None:
    payload = push_payload(PROJECT, "refs/heads/main", BEFORE, AFTER)
    payload["project"]["default_branch"] = None
    assert "no default branch" in ignored(normalise("Push Hook", "k", payload))
