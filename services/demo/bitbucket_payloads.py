"""Builders of Bitbucket Cloud webhook deliveries shaped like the real ones.

The payloads carry the fields Bitbucket Cloud documents ("Event payloads": `repo:push`,
`repo:updated`, `repo:deleted`, and the common Repository and Account entities), and the
headers it sends (`X-Event-Key`, `X-Hook-UUID`, `X-Request-UUID`, `X-Attempt-Number`,
`X-Hub-Signature: sha256=...`). As in Bitbucket's deliveries, the repository carries no
`mainbranch` unless one is given. UUIDs are derived from names, so a payload is a pure
function of its arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

API_URL = "https://api.bitbucket.org/2.0"
ACTOR_NICKNAME = "acme-demo-bot"


def _uuid(*parts: str) -> str:
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts))) + "}"


@dataclass(frozen=True)
class BitbucketRepoInfo:
    """A repository: `html_url` is `https://<host>/<workspace>/<slug>`."""

    workspace: str
    slug: str
    html_url: str
    mainbranch: str | None = None  # included in the repository object only when set
    is_private: bool = True
    project_key: str = "PROJ"

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.slug}"

    @property
    def web_base(self) -> str:
        parts = urlsplit(self.html_url)
        return f"{parts.scheme}://{parts.netloc}"

    def moved(self, workspace: str, slug: str) -> BitbucketRepoInfo:
        return BitbucketRepoInfo(
            workspace=workspace,
            slug=slug,
            html_url=f"{self.web_base}/{workspace}/{slug}",
            mainbranch=self.mainbranch,
            is_private=self.is_private,
            project_key=self.project_key,
        )


@dataclass(frozen=True)
class BitbucketCommit:
    hash: str
    message: str
    date: str  # ISO 8601 with offset
    author: str = "Acme Demo <demo@acme.test>"


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def account_object() -> dict[str, Any]:
    account_uuid = _uuid("account", ACTOR_NICKNAME)
    return {
        "display_name": "Acme Demo",
        "links": {
            "self": _link(f"{API_URL}/users/{account_uuid}"),
            "avatar": _link("https://secure.gravatar.com/avatar/0d5c7f2b?d=identicon"),
            "html": _link(f"https://bitbucket.org/{account_uuid}/"),
        },
        "type": "user",
        "uuid": account_uuid,
        "account_id": "557058:" + _uuid("account-id", ACTOR_NICKNAME)[1:-1],
        "nickname": ACTOR_NICKNAME,
    }


def workspace_object(slug: str) -> dict[str, Any]:
    return {
        "type": "workspace",
        "uuid": _uuid("workspace", slug),
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "links": {
            "avatar": _link(f"https://bitbucket.org/workspaces/{slug}/avatar/?ts=1709542800"),
            "html": _link(f"https://bitbucket.org/{slug}/"),
            "self": _link(f"{API_URL}/workspaces/{slug}"),
        },
    }


def repository_object(repo: BitbucketRepoInfo) -> dict[str, Any]:
    api = f"{API_URL}/repositories/{repo.full_name}"
    data: dict[str, Any] = {
        "type": "repository",
        "full_name": repo.full_name,
        "links": {
            "self": _link(api),
            "html": _link(repo.html_url),
            "avatar": _link(
                f"https://bytebucket.org/ravatar/{_uuid('repository', repo.full_name)}?ts=default"
            ),
        },
        "name": repo.slug,
        "scm": "git",
        "website": None,
        "owner": {
            "display_name": repo.workspace.replace("-", " ").title(),
            "links": {
                "self": _link(f"{API_URL}/workspaces/{repo.workspace}"),
                "avatar": _link(f"https://bitbucket.org/account/{repo.workspace}/avatar/"),
                "html": _link(f"https://bitbucket.org/{repo.workspace}/"),
            },
            "type": "team",
            "uuid": _uuid("workspace", repo.workspace),
            "username": repo.workspace,
        },
        "workspace": workspace_object(repo.workspace),
        "is_private": repo.is_private,
        "project": {
            "type": "project",
            "key": repo.project_key,
            "uuid": _uuid("project", repo.workspace, repo.project_key),
            "name": repo.project_key.title(),
            "links": {
                "self": _link(f"{API_URL}/workspaces/{repo.workspace}/projects/{repo.project_key}"),
                "html": _link(
                    f"https://bitbucket.org/{repo.workspace}/workspace/projects/{repo.project_key}"
                ),
                "avatar": _link(
                    f"https://bitbucket.org/{repo.workspace}/workspace/projects/{repo.project_key}/avatar/32"
                ),
            },
        },
        "uuid": _uuid("repository", repo.full_name),
        "parent": None,
    }
    if repo.mainbranch is not None:
        data["mainbranch"] = {"type": "branch", "name": repo.mainbranch}
    return data


def _commit_object(
    repo: BitbucketRepoInfo, commit: BitbucketCommit, parents: Sequence[str]
) -> dict[str, Any]:
    api = f"{API_URL}/repositories/{repo.full_name}"
    return {
        "type": "commit",
        "hash": commit.hash,
        "date": commit.date,
        "author": {"type": "author", "raw": commit.author, "user": account_object()},
        "message": commit.message,
        "summary": {
            "type": "rendered",
            "raw": commit.message,
            "markup": "markdown",
            "html": f"<p>{commit.message.strip()}</p>",
        },
        "links": {
            "self": _link(f"{api}/commit/{commit.hash}"),
            "html": _link(f"{repo.html_url}/commits/{commit.hash}"),
            "diff": _link(f"{api}/diff/{commit.hash}"),
            "approve": _link(f"{api}/commit/{commit.hash}/approve"),
            "comments": _link(f"{api}/commit/{commit.hash}/comments"),
            "statuses": _link(f"{api}/commit/{commit.hash}/statuses"),
            "patch": _link(f"{api}/patch/{commit.hash}"),
        },
        "parents": [
            {
                "type": "commit",
                "hash": parent,
                "links": {
                    "self": _link(f"{api}/commit/{parent}"),
                    "html": _link(f"{repo.html_url}/commits/{parent}"),
                },
            }
            for parent in parents
        ],
        "rendered": {},
        "properties": {},
    }


def _ref_state(
    repo: BitbucketRepoInfo, kind: str, name: str, target: dict[str, Any]
) -> dict[str, Any]:
    api = f"{API_URL}/repositories/{repo.full_name}"
    state: dict[str, Any] = {
        "name": name,
        "type": kind,
        "target": target,
        "links": {
            "self": _link(f"{api}/refs/{'branches' if kind == 'branch' else 'tags'}/{name}"),
            "commits": _link(f"{api}/commits/{name}"),
            "html": _link(
                f"{repo.html_url}/{'branch' if kind == 'branch' else 'commits/tag'}/{name}"
            ),
        },
    }
    if kind == "branch":
        state["default_merge_strategy"] = "merge_commit"
        state["merge_strategies"] = ["merge_commit", "squash", "fast_forward"]
    return state


def push_change(
    repo: BitbucketRepoInfo,
    name: str,
    old_hash: str | None,
    new_hash: str | None,
    commits: Sequence[BitbucketCommit] = (),
    *,
    kind: str = "branch",
    forced: bool = False,
) -> dict[str, Any]:
    """One `push.changes[]` entry: `name` moved from `old_hash` to `new_hash`.

    `old_hash` None is a created ref; `new_hash` None a deleted (closed) one.
    """
    api = f"{API_URL}/repositories/{repo.full_name}"
    tip = commits[-1] if commits else None

    def target(hash_: str) -> dict[str, Any]:
        commit = (
            tip
            if tip is not None and tip.hash == hash_
            else BitbucketCommit(hash_, "", "2024-03-04T09:00:00+00:00")
        )
        return _commit_object(repo, commit, [old_hash] if old_hash else [])

    new = _ref_state(repo, kind, name, target(new_hash)) if new_hash else None
    old = _ref_state(repo, kind, name, target(old_hash)) if old_hash else None
    change: dict[str, Any] = {
        "forced": forced,
        "old": old,
        "new": new,
        "truncated": len(commits) > 5,
        "created": old_hash is None,
        "closed": new_hash is None,
        "commits": [
            _commit_object(repo, c, [old_hash] if old_hash else []) for c in reversed(commits[-5:])
        ],
    }
    if old_hash and new_hash:
        change["links"] = {
            "commits": _link(f"{api}/commits?include={new_hash}&exclude={old_hash}"),
            "html": _link(f"{repo.html_url}/branches/compare/{new_hash}..{old_hash}"),
            "diff": _link(f"{api}/diff/{new_hash}..{old_hash}"),
        }
    elif new_hash:
        change["links"] = {"commits": _link(f"{api}/commits?include={new_hash}")}
    else:
        change["links"] = {}
    return change


def push_payload(repo: BitbucketRepoInfo, changes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A `repo:push` delivery with the given `push_change(...)` entries."""
    return {
        "push": {"changes": list(changes)},
        "actor": account_object(),
        "repository": repository_object(repo),
    }


def branch_push_payload(
    repo: BitbucketRepoInfo,
    branch: str,
    old_hash: str | None,
    new_hash: str | None,
    commits: Sequence[BitbucketCommit] = (),
) -> dict[str, Any]:
    """A `repo:push` that changed one branch."""
    return push_payload(repo, [push_change(repo, branch, old_hash, new_hash, commits)])


def repo_deleted_payload(repo: BitbucketRepoInfo) -> dict[str, Any]:
    return {"actor": account_object(), "repository": repository_object(repo)}


def repo_updated_payload(repo: BitbucketRepoInfo, previous: BitbucketRepoInfo) -> dict[str, Any]:
    """A `repo:updated` after `previous` became `repo` (a rename or a new workspace)."""
    changes: dict[str, Any] = {}
    if previous.slug != repo.slug:
        changes["name"] = {"new": repo.slug, "old": previous.slug}
    if previous.full_name != repo.full_name:
        changes["full_name"] = {"new": repo.full_name, "old": previous.full_name}
        changes["links"] = {
            "new": repository_object(repo)["links"],
            "old": repository_object(previous)["links"],
        }
    return {"actor": account_object(), "repository": repository_object(repo), "changes": changes}


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, secret: bytes) -> str:
    """The `X-Hub-Signature` value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def new_request_uuid() -> str:
    return str(uuid.uuid4())


def bitbucket_headers(
    event_key: str,
    request_uuid: str,
    body: bytes,
    secret: bytes | None,
    *,
    hook_uuid: str = "{8ad1c3a4-1b7d-4f22-9d0e-2c4d8f1e6a55}",
    attempt: int = 1,
) -> dict[str, str]:
    """The headers of a Bitbucket Cloud delivery; without a secret there is no signature."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": event_key,
        "X-Hook-UUID": hook_uuid,
        "X-Request-UUID": request_uuid,
        "X-Attempt-Number": str(attempt),
    }
    if secret is not None:
        headers["X-Hub-Signature"] = sign(body, secret)
    return headers
