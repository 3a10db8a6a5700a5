"""Builders of Gitea and Forgejo webhook deliveries shaped like the real ones.

The payloads carry the fields of Gitea's webhook structs (`PushPayload`, `DeletePayload`,
`CreatePayload`, `RepositoryPayload` with its `Repository` and `User`), and the headers its
delivery sends: `X-Gitea-*` (and, from Forgejo, `X-Forgejo-*` as well), `X-Gogs-*`,
`X-GitHub-*` and `X-Hub-Signature(-256)`. The signature is over the JSON payload, also
when the webhook posts it form-encoded. Ids are derived from names, so a payload is a pure
function of its arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

ZERO_SHA = "0" * 40
BOT_LOGIN = "acme-demo-bot"
_CREATED = "2024-03-04T09:00:00Z"
_UPDATED = "2024-03-04T09:30:00Z"
_NEVER = "0001-01-01T00:00:00Z"


def _stable_id(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode()) % 900_000 + 100


@dataclass(frozen=True)
class GiteaRepoInfo:
    owner: str
    name: str
    html_url: str
    clone_url: str
    default_branch: str = "main"
    private: bool = False
    archived: bool = False
    description: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.html_url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class GiteaCommit:
    id: str
    message: str
    timestamp: str  # RFC 3339, as Go marshals a time
    author_name: str = "Acme Demo"
    author_email: str = "demo@acme.test"
    added: tuple[str, ...] = field(default_factory=tuple)
    removed: tuple[str, ...] = field(default_factory=tuple)
    modified: tuple[str, ...] = field(default_factory=tuple)


def user_object(login: str, base_url: str, *, organisation: bool = False) -> dict[str, Any]:
    number = _stable_id("user", login)
    return {
        "id": number,
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": login.replace("-", " ").title(),
        "email": f"{login}@noreply.acme.test",
        "avatar_url": f"{base_url}/avatars/{number:032x}",
        "html_url": f"{base_url}/{login}",
        "language": "" if organisation else "en-US",
        "is_admin": False,
        "last_login": _NEVER if organisation else _UPDATED,
        "created": _CREATED,
        "restricted": False,
        "active": not organisation,
        "prohibit_login": False,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": login,
    }


def repository_object(repo: GiteaRepoInfo) -> dict[str, Any]:
    base = repo.base_url
    host = urlsplit(repo.html_url).hostname or "localhost"
    return {
        "id": _stable_id("repository", repo.full_name),
        "owner": user_object(repo.owner, base, organisation=True),
        "name": repo.name,
        "full_name": repo.full_name,
        "description": repo.description,
        "empty": False,
        "private": repo.private,
        "fork": False,
        "template": False,
        "parent": None,
        "mirror": False,
        "size": 42,
        "language": "",
        "languages_url": f"{base}/api/v1/repos/{repo.full_name}/languages",
        "html_url": repo.html_url,
        "url": f"{base}/api/v1/repos/{repo.full_name}",
        "link": "",
        "ssh_url": f"git@{host}:{repo.full_name}.git",
        "clone_url": repo.clone_url,
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 1,
        "open_issues_count": 0,
        "open_pr_counter": 0,
        "release_counter": 0,
        "default_branch": repo.default_branch,
        "archived": repo.archived,
        "created_at": _CREATED,
        "updated_at": _UPDATED,
        "archived_at": "1970-01-01T00:00:00Z",
        "permissions": {"admin": True, "push": True, "pull": True},
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": True,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": True,
        "has_pull_requests": True,
        "has_projects": True,
        "projects_mode": "all",
        "has_releases": True,
        "has_packages": True,
        "has_actions": False,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_fast_forward_only_merge": True,
        "allow_rebase_update": True,
        "allow_manual_merge": False,
        "autodetect_manual_merge": False,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": False,
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": _NEVER,
        "topics": [],
        "licenses": [],
    }


def _commit_object(repo: GiteaRepoInfo, commit: GiteaCommit) -> dict[str, Any]:
    person = {"name": commit.author_name, "email": commit.author_email, "username": BOT_LOGIN}
    return {
        "id": commit.id,
        "message": commit.message,
        "url": f"{repo.html_url}/commit/{commit.id}",
        "author": dict(person),
        "committer": dict(person),
        "verification": None,
        "timestamp": commit.timestamp,
        "added": list(commit.added),
        "removed": list(commit.removed),
        "modified": list(commit.modified),
    }


def push_payload(
    repo: GiteaRepoInfo,
    ref: str,
    before: str,
    after: str,
    commits: Sequence[GiteaCommit] = (),
) -> dict[str, Any]:
    """A `push` delivery: `ref` moved from `before` to `after` (zero SHA for none)."""
    entries = [_commit_object(repo, c) for c in commits]
    sender = user_object(BOT_LOGIN, repo.base_url)
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "compare_url": f"{repo.html_url}/compare/{before}...{after}" if entries else "",
        "commits": entries,
        "total_commits": len(entries),
        "head_commit": entries[-1] if entries else None,
        "repository": repository_object(repo),
        "pusher": sender,
        "sender": sender,
    }


def delete_payload(repo: GiteaRepoInfo, ref: str, ref_type: str = "branch") -> dict[str, Any]:
    """The `delete` delivery Gitea sends for a deleted branch or tag (`ref` is its short name)."""
    return {
        "ref": ref,
        "ref_type": ref_type,
        "pusher_type": "user",
        "repository": repository_object(repo),
        "sender": user_object(BOT_LOGIN, repo.base_url),
    }


def create_payload(
    repo: GiteaRepoInfo, ref: str, sha: str, ref_type: str = "branch"
) -> dict[str, Any]:
    """The `create` delivery for a new branch or tag (`ref` is its short name)."""
    return {
        "sha": sha,
        "ref": ref,
        "ref_type": ref_type,
        "repository": repository_object(repo),
        "sender": user_object(BOT_LOGIN, repo.base_url),
    }


def repository_payload(action: str, repo: GiteaRepoInfo) -> dict[str, Any]:
    """A `repository` delivery; Gitea's actions are `created` and `deleted`."""
    return {
        "action": action,
        "repository": repository_object(repo),
        "organization": user_object(repo.owner, repo.base_url, organisation=True),
        "sender": user_object(BOT_LOGIN, repo.base_url),
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The JSON Gitea sends (indented with two spaces, as its `JSONPayload` marshals it)."""
    return json.dumps(payload, indent=2).encode()


def form_body(payload_json: bytes) -> bytes:
    """The body of a webhook set to `application/x-www-form-urlencoded`."""
    return urlencode({"payload": payload_json.decode()}).encode()


def sign(payload_json: bytes, secret: bytes) -> str:
    """The `X-Gitea-Signature` value: the bare hex HMAC-SHA256 of the JSON payload."""
    return hmac.new(secret, payload_json, hashlib.sha256).hexdigest()


def new_delivery_id() -> str:
    return str(uuid.uuid4())


def gitea_headers(
    event: str,
    delivery_id: str,
    payload_json: bytes,
    secret: bytes | None,
    *,
    forgejo: bool = False,
    form: bool = False,
) -> dict[str, str]:
    """The headers Gitea (or, with `forgejo`, Forgejo) sends for one delivery.

    `payload_json` is the JSON payload the signature covers, whatever the body's encoding.
    Without a secret the signature headers are empty, as Gitea sends them.
    """
    sha256 = sign(payload_json, secret) if secret is not None else ""
    sha1 = hmac.new(secret, payload_json, hashlib.sha1).hexdigest() if secret is not None else ""
    event_type = event  # Gitea's finer event type equals the event for push/delete/repository
    prefixes = ["Forgejo", "Gitea", "Gogs"] if forgejo else ["Gitea", "Gogs"]
    headers = {
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
        "User-Agent": "Go-http-client/1.1",
    }
    for prefix in prefixes:
        headers[f"X-{prefix}-Delivery"] = delivery_id
        headers[f"X-{prefix}-Event"] = event
        headers[f"X-{prefix}-Event-Type"] = event_type
        headers[f"X-{prefix}-Signature"] = sha256
    headers["X-Hub-Signature"] = f"sha1={sha1}"
    headers["X-Hub-Signature-256"] = f"sha256={sha256}"
    headers["X-GitHub-Delivery"] = delivery_id
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Event-Type"] = event_type
    return headers
