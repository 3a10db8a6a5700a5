"""Bitbucket Cloud webhooks drive the catalog, through `cairn up` and real git repos.

Repositories are addressed at https://bitbucket.org/acme/..., which the workspace's
`insteadOf` rule maps to bare repositories in a temp dir. As Bitbucket's own deliveries,
the pushes here do not name the main branch, so Cairn reads pushes to `main`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.demo.bitbucket_payloads import (
    BitbucketRepoInfo,
    bitbucket_headers,
    branch_push_payload,
    encode,
    repo_deleted_payload,
    repo_updated_payload,
)
from tests.e2e.catalog_files import component, documents
from tests.support.gitrepo import GitRepo
from tests.support.server import CairnProcess, wait_until

SECRET = secrets.token_hex(16)
BASE = "https://bitbucket.org"


@pytest.fixture(scope="module")
def bitbucket(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={"CAIRN_BITBUCKET_WEBHOOK_SECRET": SECRET})


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _repo(workspace: Any) -> tuple[GitRepo, BitbucketRepoInfo]:
    slug = _name("svc")
    repo = GitRepo.create(workspace.root, "acme", slug)
    return repo, BitbucketRepoInfo("acme", slug, f"{BASE}/acme/{slug}")


def _deliver(
    cairn: CairnProcess,
    event_key: str,
    payload: dict[str, Any],
    *,
    secret: str | None = SECRET,
    request_uuid: str | None = None,
) -> Any:
    body = encode(payload)
    headers = bitbucket_headers(
        event_key,
        request_uuid or str(uuid.uuid4()),
        body,
        secret.encode() if secret is not None else None,
    )
    return cairn.post_webhook("/webhooks/bitbucket", body, headers)


def _push(cairn: CairnProcess, info: BitbucketRepoInfo, shas: tuple[str, str], **kw: Any) -> Any:
    before, after = shas
    old = None if before == "0" * 40 else before
    response = _deliver(cairn, "repo:push", branch_push_payload(info, "main", old, after), **kw)
    assert response.status_code == 202, response.text
    return response


def _found(cairn: CairnProcess, name: str) -> list[dict[str, Any]]:
    return [i for i in cairn.search(q=name)["items"] if i["name"] == name]


def _location(cairn: CairnProcess, name: str) -> str | None:
    entity = cairn.entity("component", name)
    return entity["metadata"]["annotations"]["backstage.io/managed-by-location"] if entity else None


def test_a_push_to_main_makes_a_searchable_entity(bitbucket: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("billing")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name, description="Bills")})
    assert _push(bitbucket, info, shas).json()["status"] == "accepted"
    [hit] = wait_until(lambda: _found(bitbucket, name), what=f"{name} in search")
    assert hit["description"] == "Bills"
    assert (_location(bitbucket, name) or "").startswith(f"url:{info.html_url}/")


def test_a_push_to_a_feature_branch_is_ignored(bitbucket: CairnProcess, workspace: Any) -> None:
    _, info = _repo(workspace)
    payload = branch_push_payload(info, "feature/x", "1" * 40, "2" * 40)
    response = _deliver(bitbucket, "repo:push", payload)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "main or master" in response.json()["reason"]


def test_a_change_and_a_removal_converge(bitbucket: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    keep, drop = _name("keep"), _name("drop")
    _push(
        bitbucket,
        info,
        repo.commit_and_push({"catalog-info.yaml": documents(component(keep), component(drop))}),
    )
    wait_until(lambda: _found(bitbucket, keep) and _found(bitbucket, drop), what="both entities")
    _push(
        bitbucket,
        info,
        repo.commit_and_push({"catalog-info.yaml": component(keep, description="v2")}),
    )
    wait_until(
        lambda: (
            not _found(bitbucket, drop)
            and [h for h in _found(bitbucket, keep) if h["description"] == "v2"]
        ),
        what="the change and the removal",
    )


def test_a_renamed_repository_moves_its_entities(bitbucket: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("movable")
    _push(bitbucket, info, repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(bitbucket, name), what="the entity")

    renamed = info.moved("acme", f"{info.slug}-renamed")
    repo.remote.rename(repo.remote.with_name(f"{renamed.slug}.git"))
    response = _deliver(bitbucket, "repo:updated", repo_updated_payload(renamed, info))
    assert response.json()["status"] == "accepted"
    wait_until(
        lambda: (_location(bitbucket, name) or "").startswith(f"url:{renamed.html_url}/"),
        what="the entity at its new address",
    )


def test_a_deleted_repository_removes_its_entities(bitbucket: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("doomed")
    _push(bitbucket, info, repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(bitbucket, name), what="the entity")
    assert _deliver(bitbucket, "repo:deleted", repo_deleted_payload(info)).status_code == 202
    wait_until(
        lambda: not _found(bitbucket, name) and bitbucket.entity("component", name) is None,
        what="the deleted repository's entity removed",
    )


def test_a_bad_or_missing_signature_is_refused_with_401(
    bitbucket: CairnProcess, workspace: Any
) -> None:
    _, info = _repo(workspace)
    payload = branch_push_payload(info, "main", None, "1" * 40)
    assert _deliver(bitbucket, "repo:push", payload, secret="not-the-secret").status_code == 401
    assert _deliver(bitbucket, "repo:push", payload, secret=None).status_code == 401


def test_a_repeated_delivery_is_acknowledged_once(bitbucket: CairnProcess, workspace: Any) -> None:
    repo, info = _repo(workspace)
    name = _name("dup")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name)})
    request = str(uuid.uuid4())
    first = _push(bitbucket, info, shas, request_uuid=request)
    again = _push(bitbucket, info, shas, request_uuid=request)
    assert first.json()["status"] == "accepted"
    assert again.json() == {"status": "duplicate", "delivery": request}
    wait_until(lambda: _found(bitbucket, name), what="the entity")
