"""Builders of GitHub webhook deliveries shaped like the real ones, for the demo and tests.

The payloads carry the fields GitHub documents for `push`, `repository` and `ping`
deliveries (webhook-events-and-payloads), so a receiver that handles these handles
GitHub's. Ids are derived from the repository's full name, so a payload is a pure function
of its arguments. The URLs are built from the repository's `html_url`; for the demo's local
repositories that is a `file:` URL and the API-style URLs are shaped, not reachable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
import zlib
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ZERO_SHA = "0" * 40
API_URL = "https://api.github.com"
HOOKSHOT_VERSION = "3f2c1d7"


@dataclass(frozen=True)
class GitHubRepoInfo:
    """The repository a delivery is about, as GitHub would describe it."""

    owner: str
    name: str
    clone_url: str
    html_url: str
    default_branch: str = "main"
    archived: bool = False
    private: bool = False
    description: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class CommitInfo:
    """One pushed commit as the `commits[]` entries of a push delivery describe it."""

    id: str
    tree_id: str
    message: str
    timestamp: str  # ISO 8601 with offset, as GitHub sends it
    author_name: str = "Acme Demo"
    author_email: str = "demo@acme.test"
    added: tuple[str, ...] = field(default_factory=tuple)
    removed: tuple[str, ...] = field(default_factory=tuple)
    modified: tuple[str, ...] = field(default_factory=tuple)


def _stable_id(*parts: str) -> int:
    """A positive id that is the same for the same inputs on every run."""
    return zlib.crc32("/".join(parts).encode()) % 900_000_000 + 100_000_000


def _node_id(prefix: str, number: int) -> str:
    return prefix + b64encode(number.to_bytes(8, "big")).decode().rstrip("=")


def _account(login: str, *, kind: str = "Organization") -> dict[str, Any]:
    number = _stable_id("account", login)
    api = f"{API_URL}/users/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": _node_id("O_kgDO" if kind == "Organization" else "U_kgDO", number),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def _organization(login: str) -> dict[str, Any]:
    number = _stable_id("account", login)
    api = f"{API_URL}/orgs/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": _node_id("O_kgDO", number),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "description": None,
    }


SENDER_LOGIN = "acme-demo-bot"


def _sender() -> dict[str, Any]:
    return _account(SENDER_LOGIN, kind="User")


def _ssh_host(repo: GitHubRepoInfo) -> str:
    return repo.html_url.split("://", 1)[-1].split("/", 1)[0] or "localhost"


def repository_object(repo: GitHubRepoInfo, *, for_push: bool = False) -> dict[str, Any]:
    """The `repository` object of a delivery.

    Push deliveries differ from the others the way GitHub's do: the owner also carries
    `name` and `email`, `created_at`/`pushed_at` are Unix times, and `stargazers`,
    `master_branch` and `organization` are present.
    """
    number = _stable_id("repository", repo.full_name)
    api = f"{API_URL}/repos/{repo.full_name}"
    owner = _account(repo.owner)
    created, updated, pushed = (
        "2024-03-04T09:00:00Z",
        "2024-03-04T09:30:00Z",
        "2024-03-04T09:30:00Z",
    )
    if for_push:
        owner = {"name": repo.owner, "email": None, **owner}
    data: dict[str, Any] = {
        "id": number,
        "node_id": _node_id("R_kgDO", number),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": owner,
        "html_url": repo.html_url,
        "description": repo.description,
        "fork": False,
        "url": api,
        "forks_url": f"{api}/forks",
        "keys_url": f"{api}/keys{{/key_id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "teams_url": f"{api}/teams",
        "hooks_url": f"{api}/hooks",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "events_url": f"{api}/events",
        "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "tags_url": f"{api}/tags",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "languages_url": f"{api}/languages",
        "stargazers_url": f"{api}/stargazers",
        "contributors_url": f"{api}/contributors",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "merges_url": f"{api}/merges",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{api}/downloads",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}",
        "releases_url": f"{api}/releases{{/id}}",
        "deployments_url": f"{api}/deployments",
        "created_at": 1709542800 if for_push else created,
        "updated_at": updated,
        "pushed_at": 1709544600 if for_push else pushed,
        "git_url": f"git://{_ssh_host(repo)}/{repo.full_name}.git",
        "ssh_url": f"git@{_ssh_host(repo)}:{repo.full_name}.git",
        "clone_url": repo.clone_url,
        "svn_url": repo.html_url,
        "homepage": None,
        "size": 42,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": None,
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 0,
        "mirror_url": None,
        "archived": repo.archived,
        "disabled": False,
        "open_issues_count": 0,
        "license": None,
        "allow_forking": True,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [],
        "visibility": "private" if repo.private else "public",
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": repo.default_branch,
    }
    if for_push:
        data["stargazers"] = 0
        data["master_branch"] = repo.default_branch
        data["organization"] = repo.owner
    return data


def _commit_object(repo: GitHubRepoInfo, commit: CommitInfo) -> dict[str, Any]:
    person = {"name": commit.author_name, "email": commit.author_email, "username": SENDER_LOGIN}
    return {
        "id": commit.id,
        "tree_id": commit.tree_id,
        "distinct": True,
        "message": commit.message,
        "timestamp": commit.timestamp,
        "url": f"{repo.html_url}/commit/{commit.id}",
        "author": dict(person),
        "committer": dict(person),
        "added": list(commit.added),
        "removed": list(commit.removed),
        "modified": list(commit.modified),
    }


def push_payload(
    repo: GitHubRepoInfo,
    ref: str,
    before: str,
    after: str,
    commits: Sequence[CommitInfo],
    deleted: bool = False,
    *,
    forced: bool = False,
) -> dict[str, Any]:
    """A `push` delivery: `ref` moved from `before` to `after` (zero SHA for none)."""
    created = before == ZERO_SHA and not deleted
    if deleted:
        after, commits = ZERO_SHA, ()
    entries = [_commit_object(repo, commit) for commit in commits]
    if created:
        compare = f"{repo.html_url}/compare/{ref.rsplit('/', 1)[-1]}"
    else:
        compare = f"{repo.html_url}/compare/{before[:12]}...{after[:12]}"
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "repository": repository_object(repo, for_push=True),
        "pusher": {"name": SENDER_LOGIN, "email": "demo@acme.test"},
        "organization": _organization(repo.owner),
        "sender": _sender(),
        "created": created,
        "deleted": deleted,
        "forced": forced,
        "base_ref": None,
        "compare": compare,
        "commits": entries,
        "head_commit": entries[-1] if entries else None,
    }


def repository_payload(
    action: str, repo: GitHubRepoInfo, previous: GitHubRepoInfo | None = None
) -> dict[str, Any]:
    """A `repository` delivery (`created`, `deleted`, `archived`, `renamed`, ...).

    For `renamed` and `transferred`, `previous` is the repository before the change and
    fills `changes` as GitHub does; for `edited` a different `previous.default_branch`
    fills `changes.default_branch`.
    """
    payload: dict[str, Any] = {
        "action": action,
        "repository": repository_object(repo),
        "organization": _organization(repo.owner),
        "sender": _sender(),
    }
    if action == "renamed":
        if previous is None:
            raise ValueError("A 'renamed' repository delivery needs the previous repository.")
        payload["changes"] = {"repository": {"name": {"from": previous.name}}}
    elif action == "transferred":
        if previous is None:
            raise ValueError("A 'transferred' repository delivery needs the previous repository.")
        payload["changes"] = {"owner": {"from": {"organization": _organization(previous.owner)}}}
    elif action == "edited" and previous is not None:
        if previous.default_branch != repo.default_branch:
            payload["changes"] = {"default_branch": {"from": previous.default_branch}}
        elif previous.description != repo.description:
            payload["changes"] = {"description": {"from": previous.description}}
    return payload


def ping_payload(repo: GitHubRepoInfo, hook_id: int = 470_000_001) -> dict[str, Any]:
    """The `ping` delivery GitHub sends when a webhook is created."""
    api = f"{API_URL}/repos/{repo.full_name}/hooks/{hook_id}"
    return {
        "zen": "Keep it logically awesome.",
        "hook_id": hook_id,
        "hook": {
            "type": "Repository",
            "id": hook_id,
            "name": "web",
            "active": True,
            "events": ["push", "repository"],
            "config": {
                "content_type": "json",
                "insecure_ssl": "0",
                "url": "http://127.0.0.1:8000/webhooks/github",
            },
            "updated_at": "2024-03-04T09:00:00Z",
            "created_at": "2024-03-04T09:00:00Z",
            "url": api,
            "test_url": f"{api}/test",
            "ping_url": f"{api}/pings",
            "deliveries_url": f"{api}/deliveries",
            "last_response": {"code": None, "status": "unused", "message": None},
        },
        "repository": repository_object(repo),
        "sender": _sender(),
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The body GitHub would send for `payload` (compact JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, secret: bytes) -> str:
    """The `X-Hub-Signature-256` value for `body`: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign_sha1(body: bytes, secret: bytes) -> str:
    """The legacy `X-Hub-Signature` value GitHub still sends beside the SHA-256 one."""
    return "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()


def _repository_id(body: bytes) -> int:
    try:
        payload = json.loads(body)
    except ValueError:
        return 0
    repository = payload.get("repository") if isinstance(payload, dict) else None
    number = repository.get("id") if isinstance(repository, dict) else None
    return number if isinstance(number, int) else 0


def new_delivery_id() -> str:
    """A delivery id shaped like GitHub's (a GUID)."""
    return str(uuid.uuid4())


def github_headers(
    event: str,
    delivery_id: str,
    body: bytes,
    secret: bytes | None,
    *,
    hook_id: int = 470_000_001,
    target_id: int | None = None,
) -> dict[str, str]:
    """The headers of a GitHub delivery; without a secret the signature headers are absent.

    The installation target is the repository (a repository webhook); its id is taken from
    the body's `repository.id` unless `target_id` is given.
    """
    if target_id is None:
        target_id = _repository_id(body)
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": f"GitHub-Hookshot/{HOOKSHOT_VERSION}",
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-ID": str(target_id),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    if secret is not None:
        headers["X-Hub-Signature"] = sign_sha1(body, secret)
        headers["X-Hub-Signature-256"] = sign(body, secret)
    return headers
