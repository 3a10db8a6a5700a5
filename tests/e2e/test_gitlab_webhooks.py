"""GitLab pushes and system hooks drive the catalog, through `cairn up` and real git repos.

Projects live in a nested group (`acme/platform/<name>`) at https://gitlab.com/..., which the
workspace's `insteadOf` rule maps to bare repositories in a temp dir.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.demo.gitlab_payloads import (
    ZERO_SHA,
    GitLabProjectInfo,
    encode,
    gitlab_headers,
    project_event_payload,
    push_payload,
)
from tests.e2e.catalog_files import component, documents
from tests.support.gitrepo import GitRepo
from tests.support.server import CairnProcess, wait_until

TOKEN = secrets.token_hex(16)
INSTANCE = "https://gitlab.com"


@pytest.fixture(scope="module")
def gitlab(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={"CAIRN_GITLAB_WEBHOOK_TOKEN": TOKEN})


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _project(workspace: Any, group: str = "acme/platform") -> tuple[GitRepo, GitLabProjectInfo]:
    name = _name("svc")
    repo = GitRepo.create(workspace.root, group, name)
    return repo, GitLabProjectInfo(f"{group}/{name}", f"{INSTANCE}/{group}/{name}")


def _deliver(
    cairn: CairnProcess,
    event: str,
    payload: dict[str, Any],
    *,
    token: str | None = TOKEN,
    key: str | None = None,
) -> Any:
    headers = gitlab_headers(event, token, idempotency_key=key, instance=INSTANCE)
    return cairn.post_webhook("/webhooks/gitlab", encode(payload), headers)


def _push(cairn: CairnProcess, project: GitLabProjectInfo, shas: tuple[str, str], **kw: Any) -> Any:
    payload = push_payload(project, f"refs/heads/{project.default_branch}", *shas)
    response = _deliver(cairn, "Push Hook", payload, **kw)
    assert response.status_code == 202, response.text
    return response


def _found(cairn: CairnProcess, name: str) -> list[dict[str, Any]]:
    return [i for i in cairn.search(q=name)["items"] if i["name"] == name]


def _location(cairn: CairnProcess, name: str) -> str | None:
    entity = cairn.entity("component", name)
    return entity["metadata"]["annotations"]["backstage.io/managed-by-location"] if entity else None


def test_a_push_hook_makes_a_searchable_entity(gitlab: CairnProcess, workspace: Any) -> None:
    repo, project = _project(workspace)
    name = _name("payments")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name, description="Card payments")})
    response = _push(gitlab, project, shas)
    assert response.json()["status"] == "accepted"

    [hit] = wait_until(lambda: _found(gitlab, name), what=f"{name} in search")
    assert hit["ref"] == f"component:default/{name}"
    assert hit["description"] == "Card payments"
    location = _location(gitlab, name)
    assert location is not None and location.startswith(f"url:{project.web_url}/")


def test_a_change_and_a_removal_converge(gitlab: CairnProcess, workspace: Any) -> None:
    repo, project = _project(workspace)
    keep, drop = _name("keep"), _name("drop")
    _push(
        gitlab,
        project,
        repo.commit_and_push({"catalog-info.yaml": documents(component(keep), component(drop))}),
    )
    wait_until(lambda: _found(gitlab, keep) and _found(gitlab, drop), what="both entities")

    _push(
        gitlab,
        project,
        repo.commit_and_push({"catalog-info.yaml": component(keep, description="changed")}),
    )
    wait_until(
        lambda: (
            not _found(gitlab, drop)
            and [h for h in _found(gitlab, keep) if h["description"] == "changed"]
        ),
        what="the change and the removal",
    )
    assert gitlab.entity("component", drop) is None


def test_a_push_delivered_as_a_system_hook_is_read_too(
    gitlab: CairnProcess, workspace: Any
) -> None:
    repo, project = _project(workspace)
    name = _name("sys")
    before, after = repo.commit_and_push({"catalog-info.yaml": component(name)})
    payload = push_payload(project, "refs/heads/main", before, after, system_hook=True)
    assert _deliver(gitlab, "System Hook", payload).json()["status"] == "accepted"
    wait_until(lambda: _found(gitlab, name), what="the system hook push's entity")


def test_deleting_the_default_branch_removes_its_entities(
    gitlab: CairnProcess, workspace: Any
) -> None:
    repo, project = _project(workspace)
    name = _name("branchy")
    before, after = repo.commit_and_push({"catalog-info.yaml": component(name)})
    _push(gitlab, project, (before, after))
    wait_until(lambda: _found(gitlab, name), what="the entity")
    _push(gitlab, project, (after, ZERO_SHA))
    wait_until(lambda: not _found(gitlab, name), what="removal with the deleted branch")


def test_project_transfer_moves_entities_to_the_new_namespace(
    gitlab: CairnProcess, workspace: Any
) -> None:
    repo, project = _project(workspace)
    name = _name("movable")
    _push(gitlab, project, repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(gitlab, name), what="the entity")

    moved = project.moved(f"acme/finance/{project.path}")
    target = workspace.root / "remotes" / "acme" / "finance" / f"{project.path}.git"
    target.parent.mkdir(parents=True, exist_ok=True)
    repo.remote.rename(target)
    payload = project_event_payload("project_transfer", moved, previous=project)
    assert _deliver(gitlab, "System Hook", payload).json()["status"] == "accepted"

    wait_until(
        lambda: (_location(gitlab, name) or "").startswith(f"url:{moved.web_url}/"),
        what="the entity at its new namespace",
    )
    targets = [loc["data"]["target"] for loc in gitlab.get("/api/catalog/locations").json()]
    assert not [t for t in targets if t.startswith(f"{project.web_url}/")]


def test_project_destroy_removes_its_entities(gitlab: CairnProcess, workspace: Any) -> None:
    repo, project = _project(workspace)
    name = _name("doomed")
    _push(gitlab, project, repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(gitlab, name), what="the entity")
    payload = project_event_payload("project_destroy", project)
    assert _deliver(gitlab, "System Hook", payload).json()["status"] == "accepted"
    wait_until(
        lambda: not _found(gitlab, name) and gitlab.entity("component", name) is None,
        what="the destroyed project's entity removed",
    )


def test_a_missing_or_wrong_token_is_refused_with_401(gitlab: CairnProcess, workspace: Any) -> None:
    _repo, project = _project(workspace)
    payload = push_payload(project, "refs/heads/main", ZERO_SHA, "1" * 40)
    assert _deliver(gitlab, "Push Hook", payload, token="not-the-token").status_code == 401
    assert _deliver(gitlab, "Push Hook", payload, token=None).status_code == 401


def test_a_repeated_delivery_is_acknowledged_once(gitlab: CairnProcess, workspace: Any) -> None:
    repo, project = _project(workspace)
    name = _name("dup")
    shas = repo.commit_and_push({"catalog-info.yaml": component(name)})
    key = str(uuid.uuid4())
    first = _push(gitlab, project, shas, key=key)
    again = _push(gitlab, project, shas, key=key)
    assert first.json()["status"] == "accepted"
    assert again.json() == {"status": "duplicate", "delivery": key}
    wait_until(lambda: _found(gitlab, name), what="the entity")
