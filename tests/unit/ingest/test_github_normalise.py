"""GitHub deliveries -> `cairn.git.events` envelopes, or the reason they are ignored."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.github import Ignored, MalformedPayload, normalise
from services.demo.github_payloads import (
    ZERO_SHA,
    CommitInfo,
    GitHubRepoInfo,
    push_payload,
    repository_payload,
)
from services.model.events import (
    GitEventReceived,
    PushReceived,
    RepositoryChanged,
    ResyncRequested,
)

REPO = GitHubRepoInfo(
    owner="acme",
    name="payments-api",
    clone_url="https://github.com/acme/payments-api.git",
    html_url="https://github.com/acme/payments-api",
    default_branch="main",
)
BEFORE = "1" * 40
AFTER = "2" * 40
COMMITS = [
    CommitInfo(
        id="3" * 40,
        tree_id="4" * 40,
        message="Add the refunds endpoint",
        timestamp="2024-03-04T10:15:00+01:00",
        modified=("openapi.yaml",),
    ),
    CommitInfo(
        id=AFTER,
        tree_id="5" * 40,
        message="Describe refunds in the catalog",
        timestamp="2024-03-04T10:20:00+01:00",
        modified=("catalog-info.yaml",),
    ),
]


def push(ref: str = "refs/heads/main", **kwargs: Any) -> dict[str, Any]:
    return push_payload(REPO, ref, kwargs.pop("before", BEFORE), AFTER, COMMITS, **kwargs)


def envelope(result: GitEventReceived | Ignored) -> GitEventReceived:
    assert isinstance(result, GitEventReceived), result
    return result


# --- push ------------------------------------------------------------------------------


def test_push_to_the_default_branch_becomes_push_received() -> None:
    payload = push()
    event = envelope(normalise("push", "delivery-1", payload))

    assert event.source == "github"
    assert event.delivery_id == "delivery-1"
    assert event.event_type == "push"
    assert event.raw == payload
    assert event.change == PushReceived(
        ref="refs/heads/main",
        before=BEFORE,
        after=AFTER,
        deleted=False,
        commits=[
            {"id": "3" * 40, "timestamp": datetime(2024, 3, 4, 9, 15, tzinfo=UTC)},
            {"id": AFTER, "timestamp": datetime(2024, 3, 4, 9, 20, tzinfo=UTC)},
        ],
    )
    repository = event.repository
    assert (repository.host, repository.owner, repository.name) == (
        "github.com",
        "acme",
        "payments-api",
    )
    assert repository.clone_url == "https://github.com/acme/payments-api.git"
    assert repository.html_url == "https://github.com/acme/payments-api"
    assert repository.default_branch == "main"
    assert repository.archived is False
    assert repository.key == "github.com/acme/payments-api"


def test_push_that_creates_the_default_branch_has_no_before_commit() -> None:
    event = envelope(normalise("push", "d", push(before=ZERO_SHA)))
    assert isinstance(event.change, PushReceived)
    assert event.change.before is None
    assert event.change.after == AFTER


def test_push_that_deletes_the_default_branch_is_kept_with_no_after_commit() -> None:
    event = envelope(normalise("push", "d", push(deleted=True)))
    assert isinstance(event.change, PushReceived)
    assert event.change.deleted is True
    assert event.change.after is None
    assert event.change.commits == []


def test_push_to_another_branch_is_ignored_at_the_door() -> None:
    assert normalise("push", "d", push("refs/heads/feature")) == Ignored(
        "push to refs/heads/feature is not the default branch (main)"
    )


def test_deleting_another_branch_is_ignored_at_the_door() -> None:
    result = normalise("push", "d", push("refs/heads/old-feature", deleted=True))
    assert isinstance(result, Ignored)


def test_tag_push_is_ignored_at_the_door() -> None:
    assert normalise("push", "d", push("refs/tags/v2.4.0")) == Ignored(
        "push to refs/tags/v2.4.0 is not the default branch (main)"
    )


def test_push_to_a_branch_named_like_the_default_under_another_prefix_is_ignored() -> None:
    assert isinstance(normalise("push", "d", push("refs/heads/release/main")), Ignored)


def test_push_follows_a_default_branch_other_than_main() -> None:
    payload = push("refs/heads/trunk")
    payload["repository"]["default_branch"] = "trunk"
    event = envelope(normalise("push", "d", payload))
    assert event.repository.default_branch == "trunk"
    assert isinstance(normalise("push", "d", push("refs/heads/main")), GitEventReceived)


def test_old_push_payload_with_master_branch_and_owner_name_only_is_understood() -> None:
    # The shape of older deliveries: no default_branch, the owner named by "name" only.
    payload = {
        "ref": "refs/heads/master",
        "before": BEFORE,
        "after": AFTER,
        "commits": [],
        "repository": {
            "name": "legacy-billing",
            "owner": {"name": "acme", "email": "ops@acme.test"},
            "html_url": "https://github.com/acme/legacy-billing",
            "clone_url": "https://github.com/acme/legacy-billing.git",
            "master_branch": "master",
        },
    }
    event = envelope(normalise("push", "d", payload))
    assert event.repository.owner == "acme"
    assert event.repository.default_branch == "master"


def test_enterprise_host_is_the_html_url_hostname_and_keys_are_lower_case() -> None:
    payload = push()
    payload["repository"]["html_url"] = "https://GHE.Acme.test:8443/Acme/Payments-API"
    event = envelope(normalise("push", "d", payload))
    assert event.repository.host == "ghe.acme.test"
    assert event.repository.key == "ghe.acme.test/acme/payments-api"


def test_file_url_repository_has_host_localhost() -> None:
    payload = push()
    payload["repository"]["html_url"] = "file:///srv/git/acme/payments-api.git"
    assert envelope(normalise("push", "d", payload)).repository.host == "localhost"


def test_archived_repository_is_flagged_on_push() -> None:
    payload = push()
    payload["repository"]["archived"] = True
    assert envelope(normalise("push", "d", payload)).repository.archived is True


def test_commit_without_timestamp_is_kept_without_one() -> None:
    payload = push()
    del payload["commits"][0]["timestamp"]
    event = envelope(normalise("push", "d", payload))
    assert isinstance(event.change, PushReceived)
    assert event.change.commits[0].timestamp is None


def test_envelope_survives_the_log_as_json() -> None:
    event = envelope(normalise("push", "d", push()))
    assert GitEventReceived.model_validate_json(event.model_dump_json()) == event


# --- repository ------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["deleted", "archived", "unarchived"])
def test_repository_lifecycle_action_becomes_repository_changed(action: str) -> None:
    payload = repository_payload(action, REPO)
    event = envelope(normalise("repository", "d", payload))
    assert event.event_type == "repository"
    assert event.change == RepositoryChanged(action=action, previous=None)
    assert event.repository.key == "github.com/acme/payments-api"
    assert event.raw == payload


def test_archived_action_carries_the_archived_repository() -> None:
    payload = repository_payload("archived", GitHubRepoInfo(**{**REPO.__dict__, "archived": True}))
    assert envelope(normalise("repository", "d", payload)).repository.archived is True


def test_renamed_repository_names_the_previous_repository() -> None:
    old = GitHubRepoInfo(**{**REPO.__dict__, "name": "payments"})
    event = envelope(normalise("repository", "d", repository_payload("renamed", REPO, old)))

    assert isinstance(event.change, RepositoryChanged)
    assert event.change.action == "renamed"
    previous = event.change.previous
    assert previous is not None
    assert previous.key == "github.com/acme/payments"
    assert previous.html_url == "https://github.com/acme/payments"
    assert previous.clone_url == "https://github.com/acme/payments.git"
    assert event.repository.key == "github.com/acme/payments-api"


def test_transferred_repository_names_the_previous_organisation() -> None:
    old = GitHubRepoInfo(**{**REPO.__dict__, "owner": "acme-labs"})
    event = envelope(normalise("repository", "d", repository_payload("transferred", REPO, old)))

    assert isinstance(event.change, RepositoryChanged)
    assert event.change.action == "transferred"
    assert event.change.previous is not None
    assert event.change.previous.key == "github.com/acme-labs/payments-api"
    assert event.change.previous.html_url == "https://github.com/acme-labs/payments-api"


def test_transferred_repository_names_the_previous_user() -> None:
    payload = repository_payload("transferred", REPO, REPO)
    payload["changes"] = {"owner": {"from": {"user": {"login": "jane-doe", "id": 7}}}}
    event = envelope(normalise("repository", "d", payload))
    assert isinstance(event.change, RepositoryChanged)
    assert event.change.previous is not None
    assert event.change.previous.owner == "jane-doe"


def test_created_repository_requests_a_resync() -> None:
    event = envelope(normalise("repository", "d", repository_payload("created", REPO)))
    assert isinstance(event.change, ResyncRequested)
    assert "created" in event.change.reason


def test_default_branch_change_requests_a_resync() -> None:
    old = GitHubRepoInfo(**{**REPO.__dict__, "default_branch": "master"})
    event = envelope(normalise("repository", "d", repository_payload("edited", REPO, old)))
    assert event.change == ResyncRequested(
        reason="default branch of acme/payments-api changed from master to main"
    )


def test_other_repository_edits_are_ignored() -> None:
    old = GitHubRepoInfo(**{**REPO.__dict__, "description": "Old words"})
    result = normalise("repository", "d", repository_payload("edited", REPO, old))
    assert isinstance(result, Ignored)
    assert "default-branch" in result.reason


@pytest.mark.parametrize("action", ["publicized", "privatized"])
def test_visibility_changes_are_ignored(action: str) -> None:
    result = normalise("repository", "d", repository_payload(action, REPO))
    assert result == Ignored(f"repository {action}: visibility does not change the catalog")


def test_unknown_repository_action_is_ignored() -> None:
    result = normalise("repository", "d", repository_payload("moved-to-space", REPO))
    assert result == Ignored("repository action 'moved-to-space' is not used by Cairn")


# --- other events ----------------------------------------------------------------------


def test_ping_is_ignored_with_a_reason_saying_the_webhook_works() -> None:
    result = normalise("ping", "d", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert isinstance(result, Ignored)
    assert "ping" in result.reason


@pytest.mark.parametrize("event_type", ["star", "watch", "issues", "pull_request", "create"])
def test_events_cairn_does_not_use_are_ignored_by_name(event_type: str) -> None:
    # Such payloads need not even have a repository.
    assert normalise(event_type, "d", {"action": "created"}) == Ignored(
        f"GitHub event '{event_type}' is not used by Cairn"
    )


# --- malformed payloads ----------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(payload: dict[str, Any]) -> None:
        target: Any = payload
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        key: Any = int(last) if isinstance(target, list) else last
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return mutate


_DELETE = object()

MALFORMED_PUSHES = [
    ("repository", _DELETE, "'repository' is missing"),
    ("repository", "acme/payments-api", "'repository' is not an object"),
    ("repository.name", _DELETE, "'repository.name' is missing"),
    ("repository.name", 42, "'repository.name' is not a string"),
    ("repository.owner", _DELETE, "'repository.owner' is missing"),
    ("repository.owner", {"id": 1}, "'repository.owner.login' is missing"),
    ("repository.html_url", _DELETE, "'repository.html_url' is missing"),
    ("repository.html_url", "acme/payments-api", "'repository.html_url' is not an absolute URL"),
    ("repository.clone_url", None, "'repository.clone_url' is missing"),
    ("repository.archived", "no", "'repository.archived' is not a boolean"),
    ("ref", _DELETE, "'ref' is missing"),
    ("ref", ["refs/heads/main"], "'ref' is not a string"),
    ("after", 12, "'after' is not a string"),
    ("deleted", "false", "'deleted' is not a boolean"),
    ("commits", {"id": "x"}, "'commits' is not a list"),
    ("commits.0", "abc", "'commits[0]' is not an object"),
    ("commits.1.id", _DELETE, "'commits[1].id' is missing"),
    ("commits.0.timestamp", "yesterday", "'commits[0].timestamp' is not an ISO 8601 time"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), MALFORMED_PUSHES, ids=[m[2] for m in MALFORMED_PUSHES]
)
def test_malformed_push_names_the_field(path: str, value: Any, message: str) -> None:
    payload = copy.deepcopy(push())
    _set(path, value)(payload)
    with pytest.raises(MalformedPayload, match=re.escape(message)):
        normalise("push", "d", payload)


def test_push_without_any_default_branch_is_malformed() -> None:
    payload = push()
    del payload["repository"]["default_branch"]
    del payload["repository"]["master_branch"]
    with pytest.raises(MalformedPayload, match=re.escape("'repository.default_branch' is missing")):
        normalise("push", "d", payload)


@pytest.mark.parametrize("payload", [[], "push", 3, None])
def test_payload_that_is_not_an_object_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedPayload, match="not a JSON object"):
        normalise("push", "d", payload)


def test_repository_event_without_action_is_malformed() -> None:
    payload = repository_payload("deleted", REPO)
    del payload["action"]
    with pytest.raises(MalformedPayload, match="'action' is missing"):
        normalise("repository", "d", payload)


def test_renamed_without_the_old_name_is_malformed() -> None:
    payload = repository_payload("renamed", REPO, REPO)
    del payload["changes"]["repository"]["name"]
    with pytest.raises(MalformedPayload, match=re.escape("'changes.repository.name' is missing")):
        normalise("repository", "d", payload)


def test_transferred_without_the_old_owner_is_malformed() -> None:
    payload = repository_payload("transferred", REPO, REPO)
    payload["changes"]["owner"]["from"] = {}
    with pytest.raises(MalformedPayload, match=re.escape("'changes.owner.from' names neither")):
        normalise("repository", "d", payload)


def test_malformed_payload_is_a_value_error_with_one_sentence() -> None:
    with pytest.raises(ValueError) as caught:
        normalise("push", "d", {"ref": "refs/heads/main"})
    message = str(caught.value)
    assert message.endswith(".")
    assert message.count(". ") == 0
