"""GitLab, Gitea, Forgejo and Bitbucket Cloud webhooks drive the catalog through `cairn up`
and real git repositories: one suite for what every host must do, then what only one
host has (GitLab's system hooks and transfers, Bitbucket's branch rule and renames)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.demo import bitbucket_payloads, gitlab_payloads
from tests.e2e.catalog_files import component, documents
from tests.e2e.conftest import Workspace
from tests.e2e.git_hosts import ZERO_SHA, Bitbucket, Gitea, GitHost, GitLab, HostedRepo, unique
from tests.support.server import CairnProcess, wait_until

GITLAB = GitLab()
GITEA = Gitea()
FORGEJO = Gitea(forgejo=True, secret=GITEA.secret)  # one setting serves both
BITBUCKET = Bitbucket()
HOSTS: list[GitHost] = [GITLAB, GITEA, FORGEJO, BITBUCKET]


@pytest.fixture(scope="module")
def cairn(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={k: v for host in HOSTS for k, v in host.env.items()})


@pytest.fixture(params=HOSTS, ids=lambda host: host.name)
def host(request: pytest.FixtureRequest) -> GitHost:
    return request.param  # type: ignore[no-any-return]


def _found(cairn: CairnProcess, name: str) -> list[dict[str, Any]]:
    return [i for i in cairn.search(q=name)["items"] if i["name"] == name]


def _location(cairn: CairnProcess, name: str) -> str:
    entity = cairn.entity("component", name)
    return entity["metadata"]["annotations"]["backstage.io/managed-by-location"] if entity else ""


def _push(
    cairn: CairnProcess, host: GitHost, repo: HostedRepo, files: dict[str, str | None]
) -> Any:
    response = host.push(cairn, repo, repo.git.commit_and_push(files))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted", response.text
    return response


# --- what every host does ------------------------------------------------------------------


def test_a_push_makes_a_searchable_entity_at_the_hosts_address(
    cairn: CairnProcess, workspace: Workspace, host: GitHost
) -> None:
    repo = host.repo(workspace)
    name = unique("payments")
    _push(cairn, host, repo, {"catalog-info.yaml": component(name, description="Card payments")})
    [hit] = wait_until(lambda: _found(cairn, name), what=f"{name} in search")
    assert hit["ref"] == f"component:default/{name}"
    assert hit["description"] == "Card payments"
    wait_until(
        lambda: _location(cairn, name).startswith(f"url:{repo.web_url}/"),
        what="the entity's location in the store",
    )


def test_a_change_and_a_removal_converge(
    cairn: CairnProcess, workspace: Workspace, host: GitHost
) -> None:
    repo = host.repo(workspace)
    keep, drop = unique("keep"), unique("drop")
    _push(cairn, host, repo, {"catalog-info.yaml": documents(component(keep), component(drop))})
    wait_until(lambda: _found(cairn, keep) and _found(cairn, drop), what="both entities")
    _push(cairn, host, repo, {"catalog-info.yaml": component(keep, description="changed")})
    wait_until(
        lambda: (
            not _found(cairn, drop)
            and [h for h in _found(cairn, keep) if h["description"] == "changed"]
        ),
        what="the change and the removal",
    )
    wait_until(lambda: cairn.entity("component", drop) is None, what="the removal in the store")


def test_deleting_the_default_branch_removes_its_entities(
    cairn: CairnProcess, workspace: Workspace, host: GitHost
) -> None:
    repo = host.repo(workspace)
    name = unique("branchy")
    shas = repo.git.commit_and_push({"catalog-info.yaml": component(name)})
    assert host.push(cairn, repo, shas).status_code == 202
    wait_until(lambda: _found(cairn, name), what="the entity")
    assert host.delete_branch(cairn, repo, shas[1]).json()["status"] == "accepted"
    wait_until(lambda: not _found(cairn, name), what="removal with the deleted branch")


def test_a_deleted_repository_removes_its_entities(
    cairn: CairnProcess, workspace: Workspace, host: GitHost
) -> None:
    repo = host.repo(workspace)
    name = unique("doomed")
    _push(cairn, host, repo, {"catalog-info.yaml": component(name)})
    wait_until(lambda: _found(cairn, name), what="the entity")
    assert host.delete_repository(cairn, repo).json()["status"] == "accepted"
    wait_until(
        lambda: not _found(cairn, name) and cairn.entity("component", name) is None,
        what="the deleted repository's entity removed",
    )


def test_a_wrong_or_missing_signature_is_refused_with_401(
    cairn: CairnProcess, workspace: Workspace, host: GitHost
) -> None:
    repo = host.repo(workspace)
    shas = (ZERO_SHA, "1" * 40)
    assert host.push(cairn, repo, shas, secret="not-the-secret").status_code == 401
    assert host.push(cairn, repo, shas, secret=None).status_code == 401


def test_a_repeated_delivery_is_acknowledged_once(
    cairn: CairnProcess, workspace: Workspace, host: GitHost
) -> None:
    repo = host.repo(workspace)
    name = unique("dup")
    shas = repo.git.commit_and_push({"catalog-info.yaml": component(name)})
    delivery = str(uuid.uuid4())
    first = host.push(cairn, repo, shas, delivery=delivery)
    again = host.push(cairn, repo, shas, delivery=delivery)
    assert first.json()["status"] == "accepted"
    assert again.json() == {"status": "duplicate", "delivery": delivery}
    wait_until(lambda: _found(cairn, name), what="the entity")


# --- GitLab: system hooks ------------------------------------------------------------------


def test_gitlab_a_push_delivered_as_a_system_hook_is_read_too(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    repo = GITLAB.repo(workspace)
    name = unique("sys")
    before, after = repo.git.commit_and_push({"catalog-info.yaml": component(name)})
    payload = gitlab_payloads.push_payload(
        repo.info, "refs/heads/main", before, after, system_hook=True
    )
    assert GITLAB.deliver(cairn, "System Hook", payload).json()["status"] == "accepted"
    wait_until(lambda: _found(cairn, name), what="the system hook push's entity")


def test_gitlab_project_transfer_moves_entities_to_the_new_namespace(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    repo = GITLAB.repo(workspace)
    name = unique("movable")
    _push(cairn, GITLAB, repo, {"catalog-info.yaml": component(name)})
    wait_until(lambda: _found(cairn, name), what="the entity")

    moved = repo.info.moved(f"acme/finance/{repo.info.path}")
    target = workspace.root / "remotes" / "acme" / "finance" / f"{repo.info.path}.git"
    target.parent.mkdir(parents=True, exist_ok=True)
    repo.git.remote.rename(target)
    payload = gitlab_payloads.project_event_payload("project_transfer", moved, previous=repo.info)
    assert GITLAB.deliver(cairn, "System Hook", payload).json()["status"] == "accepted"

    wait_until(
        lambda: _location(cairn, name).startswith(f"url:{moved.web_url}/"),
        what="the entity at its new namespace",
    )
    targets = [loc["data"]["target"] for loc in cairn.get("/api/catalog/locations").json()]
    assert not [t for t in targets if t.startswith(f"{repo.web_url}/")]


# --- Bitbucket: no default branch in the payload, renames ---------------------------------


def test_bitbucket_a_push_to_a_feature_branch_is_ignored(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    repo = BITBUCKET.repo(workspace)
    payload = bitbucket_payloads.branch_push_payload(repo.info, "feature/x", "1" * 40, "2" * 40)
    response = BITBUCKET.deliver(cairn, "repo:push", payload)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "main or master" in response.json()["reason"]


def test_bitbucket_a_renamed_repository_moves_its_entities(
    cairn: CairnProcess, workspace: Workspace
) -> None:
    repo = BITBUCKET.repo(workspace)
    name = unique("movable")
    _push(cairn, BITBUCKET, repo, {"catalog-info.yaml": component(name)})
    wait_until(lambda: _found(cairn, name), what="the entity")

    renamed = repo.info.moved("acme", f"{repo.info.slug}-renamed")
    repo.git.remote.rename(repo.git.remote.with_name(f"{renamed.slug}.git"))
    payload = bitbucket_payloads.repo_updated_payload(renamed, repo.info)
    assert BITBUCKET.deliver(cairn, "repo:updated", payload).json()["status"] == "accepted"
    wait_until(
        lambda: _location(cairn, name).startswith(f"url:{renamed.html_url}/"),
        what="the entity at its new address",
    )
