"""GitLab deployment and pipeline hooks through `cairn up`: attached to the project's
component (by `gitlab.com/project-slug` in a project holding two), states ordered by
their own times, and refused without the secret token."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.demo.ci_payloads import gitlab_deployment_payload, gitlab_pipeline_payload
from services.demo.gitlab_payloads import GitLabProjectInfo, encode, gitlab_headers, push_payload
from tests.e2e.catalog_files import component, documents
from tests.e2e.conftest import Workspace
from tests.support.server import CairnProcess, wait_until

TOKEN = secrets.token_hex(16)
INSTANCE = "https://gitlab.com"


@pytest.fixture(scope="module")
def gitlab(start_cairn: Callable[..., CairnProcess]) -> CairnProcess:
    return start_cairn(extra_env={"CAIRN_GITLAB_WEBHOOK_TOKEN": TOKEN})


def _deliver(cairn: CairnProcess, event: str, payload: dict[str, Any], token: str = TOKEN) -> Any:
    headers = gitlab_headers(event, token, instance=INSTANCE)
    return cairn.post_webhook("/webhooks/gitlab", encode(payload), headers)


def _project(cairn: CairnProcess, workspace: Workspace) -> tuple[GitLabProjectInfo, str, str]:
    """A project holding two components; only `<name>-api` carries the project slug."""
    group, name = "acme/platform", f"svc-{uuid.uuid4().hex[:8]}"
    repo, _info = workspace.repo(name, owner=group)
    project = GitLabProjectInfo(f"{group}/{name}", f"{INSTANCE}/{group}/{name}")
    slug = f"  annotations:\n    gitlab.com/project-slug: {group}/{name}\n"
    api = component(f"{name}-api").replace("metadata:\n", "metadata:\n" + slug, 1)
    before, after = repo.commit_and_push(
        {"catalog-info.yaml": documents(api, component(f"{name}-worker"))}
    )
    response = _deliver(cairn, "Push Hook", push_payload(project, "refs/heads/main", before, after))
    assert response.status_code == 202, response.text
    wait_until(lambda: cairn.entity("component", f"{name}-api"), what="the project's components")
    return project, name, after


def test_deployment_hooks_attach_to_the_component_with_the_project_slug(
    gitlab: CairnProcess, workspace: Workspace
) -> None:
    project, name, sha = _project(gitlab, workspace)
    at = datetime.now(UTC).replace(microsecond=0)
    for status, when in (("success", at + timedelta(seconds=40)), ("running", at)):
        payload = gitlab_deployment_payload(
            project, 4242, status, sha=sha, at=when, environment="production"
        )
        assert _deliver(gitlab, "Deployment Hook", payload).status_code == 202

    def settled() -> list[dict[str, Any]]:
        items = gitlab.get("/api/deployments", entity=f"{name}-api").json()["items"]
        return items if items and len(items[0]["transitions"]) == 2 else []

    [deployment] = wait_until(settled, what="both states of the deployment")
    assert deployment["status"] == "success"
    assert deployment["entities"] == [f"component:default/{name}-api"]
    assert deployment["id"] == f"gitlab:gitlab.com/{project.path_with_namespace}#4242"
    assert deployment["duration_seconds"] == 40.0
    assert gitlab.get("/api/deployments", entity=f"{name}-worker").json()["items"] == []
    entity = gitlab.entity("component", f"{name}-api")
    assert entity is not None and entity["status"]["deployments"][0]["version"] == sha


def test_pipeline_hooks_become_pipeline_runs(gitlab: CairnProcess, workspace: Workspace) -> None:
    project, name, sha = _project(gitlab, workspace)
    created = datetime.now(UTC).replace(microsecond=0)
    for status, finished in (("running", None), ("failed", created + timedelta(minutes=3))):
        payload = gitlab_pipeline_payload(
            project, 9090, status, sha=sha, created_at=created, finished_at=finished
        )
        assert _deliver(gitlab, "Pipeline Hook", payload).status_code == 202

    def failed() -> list[dict[str, Any]]:
        items = gitlab.get("/api/pipelines", entity=f"{name}-api", status="failure").json()["items"]
        return list(items)

    [run] = wait_until(failed, what="the failed pipeline")
    assert (run["branch"], run["commit"], run["duration_seconds"]) == ("main", sha, 180.0)


def test_hooks_without_the_token_are_refused(gitlab: CairnProcess) -> None:
    project = GitLabProjectInfo("acme/platform/ghost", f"{INSTANCE}/acme/platform/ghost")
    now = datetime.now(UTC)
    payload = gitlab_deployment_payload(project, 1, "success", sha="a" * 40, at=now)
    assert _deliver(gitlab, "Deployment Hook", payload, token="wrong").status_code == 401
    pipeline = gitlab_pipeline_payload(project, 1, "running", sha="a" * 40, created_at=now)
    assert _deliver(gitlab, "Pipeline Hook", pipeline, token="wrong").status_code == 401
