"""Gitea and Forgejo webhooks drive the catalog, through `cairn up` and real git repos.

Gitea repositories are addressed at https://gitea.com/acme/..., Forgejo ones at
https://codeberg.org/acme/...; the workspace's `insteadOf` rule maps both to bare
repositories in a temp dir.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.demo.gitea_payloads import (
    ZERO_SHA,
    GiteaRepoInfo,
    delete_payload,
    encode,
    gitea_headers,
    push_payload,
    repository_payload,
)
from tests.e2e.catalog_files import component, documents
from tests.support.gitrepo import GitRepo
from tests.support.server import CairnProcess, wait_until

SECRET = secrets.token_hex(16)


@pytest.fixture(scope="module")
def gitea(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={"CAIRN_GITEA_WEBHOOK_SECRET": SECRET})


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _repo(workspace: Any, base: str = "https://gitea.com") -> tuple[GitRepo, GiteaRepoInfo]:
    name = _name("svc")
    repo = GitRepo.create(workspace.root, "acme", name)
    return repo, GiteaRepoInfo("acme", name, f"{base}/acme/{name}", f"{base}/acme/{name}.git")


def _deliver(
    cairn: CairnProcess,
    event: str,
    payload: dict[str, Any],
    *,
    secret: str = SECRET,
    delivery: str | None = None,
    forgejo: bool = False,
) -> Any:
    body = encode(payload)
    headers = gitea_headers(
        event, delivery or str(uuid.uuid4()), body, secret.encode(), forgejo=forgejo
    )
    route = "/webhooks/forgejo" if forgejo else "/webhooks/gitea"
    return cairn.post_webhook(route, body, headers)


def _push(cairn: CairnProcess, info: GiteaRepoInfo, shas: tuple[str, str], **kw: Any) -> Any:
    response = _deliver(cairn, "push", push_payload(info, "refs/heads/main", *shas), **kw)
    assert response.status_code == 202, response.text
    return response


def _found(cairn: CairnProcess, name: str) -> list[dict[str, Any]]:
    return [i for i in cairn.search(q=name)["items"] if i["name"] == name]


def test_a_gitea_push_makes_a_searchable_entity(gitea: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("ledger")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name, description="The ledger")})
    assert _push(gitea, info, shas).json()["status"] == "accepted"
    [hit] = wait_until(lambda: _found(gitea, name), what=f"{name} in search")
    assert hit["description"] == "The ledger"
    entity = gitea.entity("component", name)
    assert entity is not None
    location = entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
    assert location.startswith(f"url:{info.html_url}/")


def test_a_forgejo_push_makes_a_searchable_entity(gitea: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace, base="https://codeberg.org")
    name = _name("forged")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name)})
    assert _push(gitea, info, shas, forgejo=True).json()["status"] == "accepted"
    wait_until(lambda: _found(gitea, name), what="the Forgejo repository's entity")


def test_a_change_and_a_removal_converge(gitea: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    keep, drop = _name("keep"), _name("drop")
    _push(
        gitea,
        info,
        repo.commit_and_push({"catalog-info.yaml": documents(component(keep), component(drop))}),
    )
    wait_until(lambda: _found(gitea, keep) and _found(gitea, drop), what="both entities")
    _push(
        gitea, info, repo.commit_and_push({"catalog-info.yaml": component(keep, description="v2")})
    )
    wait_until(
        lambda: (
            not _found(gitea, drop) and [h for h in _found(gitea, keep) if h["description"] == "v2"]
        ),
        what="the change and the removal",
    )


def test_a_deleted_default_branch_removes_its_entities(gitea: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("branchy")
    _push(gitea, info, repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(gitea, name), what="the entity")
    assert _deliver(gitea, "delete", delete_payload(info, "main")).json()["status"] == "accepted"
    wait_until(lambda: not _found(gitea, name), what="removal with the deleted branch")


def test_a_deleted_repository_removes_its_entities(gitea: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("doomed")
    _push(gitea, info, repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(gitea, name), what="the entity")
    response = _deliver(gitea, "repository", repository_payload("deleted", info))
    assert response.json()["status"] == "accepted"
    wait_until(
        lambda: not _found(gitea, name) and gitea.entity("component", name) is None,
        what="the deleted repository's entity removed",
    )


def test_a_wrong_signature_is_refused_with_401(gitea: CairnProcess, workspace: Any) -> None:
    _, info = _repo(workspace)
    payload = push_payload(info, "refs/heads/main", ZERO_SHA, "1" * 40)
    assert _deliver(gitea, "push", payload, secret="not-the-secret").status_code == 401
    assert _deliver(gitea, "push", payload, secret="nope", forgejo=True).status_code == 401


def test_a_repeated_delivery_is_acknowledged_once(gitea: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("dup")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name)})
    delivery = str(uuid.uuid4())
    first = _push(gitea, info, shas, delivery=delivery)
    again = _push(gitea, info, shas, delivery=delivery)
    assert first.json()["status"] == "accepted"
    assert again.json() == {"status": "duplicate", "delivery": delivery}
    wait_until(lambda: _found(gitea, name), what="the entity")
