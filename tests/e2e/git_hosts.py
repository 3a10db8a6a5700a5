"""GitLab, Gitea/Forgejo and Bitbucket Cloud as the e2e suite drives them: each makes
repositories at its own address (mapped by the workspace's `insteadOf` rule to bare
repositories in a temp dir) and delivers signed webhooks in its own shapes.

GitHub has its own suites (test_catalog_from_pushes, test_webhook_answers).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from services.demo import bitbucket_payloads as bitbucket
from services.demo import gitea_payloads as gitea
from services.demo import gitlab_payloads as gitlab
from tests.e2e.conftest import Workspace
from tests.support.gitrepo import GitRepo
from tests.support.server import CairnProcess

ZERO_SHA = "0" * 40
CONFIGURED = "<the configured secret>"  # sign with the secret Cairn was given


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class HostedRepo:
    git: GitRepo
    info: Any  # the host's repository description (payload builders take it)
    web_url: str


class GitHost(Protocol):
    name: str
    env: dict[str, str]  # the settings that give Cairn this host's secret

    def repo(self, workspace: Workspace) -> HostedRepo: ...

    def push(
        self,
        cairn: CairnProcess,
        repo: HostedRepo,
        shas: tuple[str, str],
        *,
        delivery: str | None = None,
        secret: str | None = CONFIGURED,
    ) -> httpx.Response:
        """A push to the default branch moving it from shas[0] to shas[1], signed with
        `secret` (None: no signature at all)."""

    def delete_branch(self, cairn: CairnProcess, repo: HostedRepo, head: str) -> httpx.Response:
        """The default branch (at `head`) deleted."""

    def delete_repository(self, cairn: CairnProcess, repo: HostedRepo) -> httpx.Response: ...


class _Host:
    """What every host's driver shares: a push is its push event, with its payload, signed
    (or not) by `deliver`, each host's own."""

    secret: str
    push_event: str

    def signing_secret(self, secret: str | None) -> str | None:
        return self.secret if secret == CONFIGURED else secret

    def push_payload(self, repo: HostedRepo, shas: tuple[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    def deliver(
        self,
        cairn: CairnProcess,
        event: str,
        payload: dict[str, Any],
        *,
        delivery: str | None = None,
        secret: str | None = CONFIGURED,
    ) -> httpx.Response:
        raise NotImplementedError

    def push(
        self,
        cairn: CairnProcess,
        repo: HostedRepo,
        shas: tuple[str, str],
        *,
        delivery: str | None = None,
        secret: str | None = CONFIGURED,
    ) -> httpx.Response:
        payload = self.push_payload(repo, shas)
        return self.deliver(cairn, self.push_event, payload, delivery=delivery, secret=secret)


class GitLab(_Host):
    name = "gitlab"
    instance = "https://gitlab.com"
    push_event = "Push Hook"

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)  # GitLab's secret token
        self.env = {"CAIRN_GITLAB_WEBHOOK_TOKEN": self.secret}

    def repo(self, workspace: Workspace, group: str = "acme/platform") -> HostedRepo:
        name = unique("svc")
        info = gitlab.GitLabProjectInfo(f"{group}/{name}", f"{self.instance}/{group}/{name}")
        return HostedRepo(GitRepo.create(workspace.root, group, name), info, info.web_url)

    def deliver(
        self,
        cairn: CairnProcess,
        event: str,
        payload: dict[str, Any],
        *,
        delivery: str | None = None,
        secret: str | None = CONFIGURED,
    ) -> httpx.Response:
        headers = gitlab.gitlab_headers(
            event, self.signing_secret(secret), idempotency_key=delivery, instance=self.instance
        )
        return cairn.post_webhook("/webhooks/gitlab", gitlab.encode(payload), headers)

    def push_payload(self, repo: HostedRepo, shas: tuple[str, str]) -> dict[str, Any]:
        return gitlab.push_payload(repo.info, f"refs/heads/{repo.info.default_branch}", *shas)

    def delete_branch(self, cairn: CairnProcess, repo: HostedRepo, head: str) -> httpx.Response:
        return self.push(cairn, repo, (head, ZERO_SHA))

    def delete_repository(self, cairn: CairnProcess, repo: HostedRepo) -> httpx.Response:
        payload = gitlab.project_event_payload("project_destroy", repo.info)
        return self.deliver(cairn, "System Hook", payload)


class Gitea(_Host):
    """Gitea at https://gitea.com, or Forgejo (its own route and signature header) at
    https://codeberg.org."""

    push_event = "push"

    def __init__(self, forgejo: bool = False, secret: str | None = None) -> None:
        self.forgejo = forgejo
        self.name = "forgejo" if forgejo else "gitea"
        self.base = "https://codeberg.org" if forgejo else "https://gitea.com"
        self.secret = secret or secrets.token_hex(16)
        self.env = {"CAIRN_GITEA_WEBHOOK_SECRET": self.secret}

    def repo(self, workspace: Workspace) -> HostedRepo:
        name = unique("svc")
        url = f"{self.base}/acme/{name}"
        info = gitea.GiteaRepoInfo("acme", name, url, f"{url}.git")
        return HostedRepo(GitRepo.create(workspace.root, "acme", name), info, url)

    def deliver(
        self,
        cairn: CairnProcess,
        event: str,
        payload: dict[str, Any],
        *,
        delivery: str | None = None,
        secret: str | None = CONFIGURED,
    ) -> httpx.Response:
        body = gitea.encode(payload)
        key = self.signing_secret(secret)
        headers = gitea.gitea_headers(
            event,
            delivery or str(uuid.uuid4()),
            body,
            key.encode() if key is not None else None,
            forgejo=self.forgejo,
        )
        route = "/webhooks/forgejo" if self.forgejo else "/webhooks/gitea"
        return cairn.post_webhook(route, body, headers)

    def push_payload(self, repo: HostedRepo, shas: tuple[str, str]) -> dict[str, Any]:
        return gitea.push_payload(repo.info, "refs/heads/main", *shas)

    def delete_branch(self, cairn: CairnProcess, repo: HostedRepo, head: str) -> httpx.Response:
        return self.deliver(cairn, "delete", gitea.delete_payload(repo.info, "main"))

    def delete_repository(self, cairn: CairnProcess, repo: HostedRepo) -> httpx.Response:
        return self.deliver(cairn, "repository", gitea.repository_payload("deleted", repo.info))


class Bitbucket(_Host):
    """Bitbucket Cloud: its push payload does not name the main branch, so Cairn reads
    pushes to `main` (or `master`)."""

    name = "bitbucket"
    base = "https://bitbucket.org"
    push_event = "repo:push"

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        self.env = {"CAIRN_BITBUCKET_WEBHOOK_SECRET": self.secret}

    def repo(self, workspace: Workspace) -> HostedRepo:
        slug = unique("svc")
        info = bitbucket.BitbucketRepoInfo("acme", slug, f"{self.base}/acme/{slug}")
        return HostedRepo(GitRepo.create(workspace.root, "acme", slug), info, info.html_url)

    def deliver(
        self,
        cairn: CairnProcess,
        event: str,
        payload: dict[str, Any],
        *,
        delivery: str | None = None,
        secret: str | None = CONFIGURED,
    ) -> httpx.Response:
        body = bitbucket.encode(payload)
        key = self.signing_secret(secret)
        headers = bitbucket.bitbucket_headers(
            event,
            delivery or str(uuid.uuid4()),
            body,
            key.encode() if key is not None else None,
        )
        return cairn.post_webhook("/webhooks/bitbucket", body, headers)

    def push_payload(self, repo: HostedRepo, shas: tuple[str, str]) -> dict[str, Any]:
        before, after = shas
        old = None if before == ZERO_SHA else before
        return bitbucket.branch_push_payload(repo.info, "main", old, after)

    def delete_branch(self, cairn: CairnProcess, repo: HostedRepo, head: str) -> httpx.Response:
        payload = bitbucket.branch_push_payload(repo.info, "main", head, None)
        return self.deliver(cairn, "repo:push", payload)

    def delete_repository(self, cairn: CairnProcess, repo: HostedRepo) -> httpx.Response:
        return self.deliver(cairn, "repo:deleted", bitbucket.repo_deleted_payload(repo.info))
