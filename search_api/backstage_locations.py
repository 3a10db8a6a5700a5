"""Registering locations through the catalog API: a repository, or one catalog file in it.

A Backstage location target (`https://github.com/acme/app/blob/main/catalog-info.yaml`, a
repository URL, or a `file://` path to a repository) is turned into the repository Cairn
reads and the catalog file it names. A dry run reads it here, with the same git reader
and descriptor reading the descriptor processor uses, and reports what it would hold. A
real registration is only an event on the log (a resync of that repository); the
descriptor processor does the reading, as for a webhook.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from search_api.backstage_errors import InputError, NotFoundError
from services.git.reader import BranchNotFound, GitError, GitReader, find_catalog_files
from services.model.catalog import location_id
from services.model.descriptor import DescriptorLimits, LocationReading, read_catalog
from services.model.entity import Entity, ProcessingError
from services.model.events import Repository

_MARKERS = ("blob", "tree")


@dataclass(frozen=True)
class LocationTarget:
    repository: Repository
    path: str | None  # the catalog file named by the target; None for the whole repository

    @property
    def file_url(self) -> str | None:
        """The location's target as Cairn names it (what /locations lists)."""
        return location_url(self.repository, self.path) if self.path else None


@dataclass(frozen=True)
class ParsedTarget:
    """A target before its branch is known: `branch` None means the default branch."""

    host: str
    owner: str
    name: str
    clone_url: str
    html_url: str
    branch: str | None
    path: str | None


def location_url(repository: Repository, path: str) -> str:
    """The URL of a catalog file, written exactly as the descriptor processor writes it."""
    return f"{repository.html_url.rstrip('/')}/blob/{repository.default_branch}/{path}"


def parse_target(target: str) -> ParsedTarget:
    """Split a location target into its repository, branch and file."""
    parts = urlsplit(target.strip())
    if parts.scheme == "file":
        local = PurePosixPath(unquote(parts.path))
        if len(local.parts) < 3:
            raise InputError(
                f"Location target {target} is not a path to a repository; "
                "give file:///path/to/owner/name(.git)."
            )
        name = local.name[:-4] if local.name.endswith(".git") else local.name
        return ParsedTarget(
            host="file",
            owner=local.parent.name,
            name=name,
            clone_url=target.strip(),
            html_url=target.strip().rstrip("/"),
            branch=None,
            path=None,
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"Location target {target} is not a URL Cairn can read; give the URL of a "
            "repository or of a catalog file in one (https://host/owner/name/blob/main/"
            "catalog-info.yaml)."
        )
    segments = [unquote(s) for s in parts.path.split("/") if s]
    marker = next(
        (i for i, s in enumerate(segments) if s in _MARKERS and i >= 2 and i + 1 < len(segments)),
        None,
    )
    repo_segments = segments if marker is None else segments[:marker]
    if repo_segments and repo_segments[-1] == "-":  # GitLab's /-/blob/
        repo_segments = repo_segments[:-1]
    if len(repo_segments) < 2:
        raise InputError(f"Location target {target} does not name a repository (host/owner/name).")
    name = repo_segments[-1]
    name = name[:-4] if name.endswith(".git") else name
    owner = "/".join(repo_segments[:-1])
    host = parts.netloc.rpartition("@")[2].lower()
    html_url = f"{parts.scheme}://{host}/{owner}/{name}"
    branch: str | None = None
    path: str | None = None
    if marker is not None:
        branch = segments[marker + 1]
        if segments[marker] == "blob":
            path = "/".join(segments[marker + 2 :]) or None
    return ParsedTarget(
        host=host,
        owner=owner,
        name=name,
        clone_url=f"{html_url}.git",
        html_url=html_url,
        branch=branch,
        path=path,
    )


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_ASKPASS", "true")
    return env


def remote_heads(clone_url: str, timeout: float) -> tuple[str | None, set[str]]:
    """The remote's default branch and its branches, with `git ls-remote` (git config applies)."""
    try:
        done = subprocess.run(
            ["git", "ls-remote", "--symref", clone_url],
            env=_git_env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NotFoundError(f"Cairn could not reach {clone_url} within {timeout:.0f} s.") from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"git exit status {done.returncode}"
        raise NotFoundError(f"Cairn could not read the repository {clone_url}: {reason}")
    default = None
    heads: set[str] = set()
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            default = line[len("ref: refs/heads/") :].split("\t")[0]
        elif "\trefs/heads/" in line:
            heads.add(line.split("\trefs/heads/", 1)[1])
    return default, heads


def resolve_target(
    parsed: ParsedTarget, known: Repository | None, timeout: float
) -> LocationTarget:
    """The repository to read: as Cairn already knows it, or as the remote says."""
    if known is not None and (parsed.branch is None or parsed.branch == known.default_branch):
        return LocationTarget(repository=known, path=parsed.path)
    default, heads = remote_heads(parsed.clone_url, timeout)
    branch = parsed.branch or default
    if branch is None or (heads and branch not in heads):
        raise NotFoundError(
            f"The repository {parsed.html_url} has no branch "
            f"{branch or '(default)'}; push one, or name an existing branch in the target."
        )
    repository = Repository(
        host=parsed.host,
        owner=parsed.owner,
        name=parsed.name,
        clone_url=parsed.clone_url,
        html_url=parsed.html_url,
        default_branch=branch,
    )
    return LocationTarget(repository=repository, path=parsed.path)


@dataclass
class DryRun:
    entities: list[Entity]
    errors: list[ProcessingError]
    roots: list[str]


def read_target(
    target: LocationTarget,
    git: GitReader,
    catalog_files: list[str],
    limits: DescriptorLimits,
) -> DryRun:
    """Read what the target holds now, as the descriptor processor would (nothing is saved)."""
    repository = target.repository
    try:
        commit = git.fetch_branch(repository.key, repository.clone_url, repository.default_branch)
    except BranchNotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except GitError as exc:
        raise NotFoundError(f"Cairn could not read {repository.clone_url}: {exc}") from exc
    with git.open_commit(repository.key, commit) as files:
        if target.path is not None:
            if target.path not in files.entries:
                raise NotFoundError(
                    f"{target.path} does not exist in {repository.html_url} on branch "
                    f"{repository.default_branch}."
                )
            roots = [target.path]
        else:
            roots = find_catalog_files(list(files.entries.values()), catalog_files)
        readings: dict[str, LocationReading] = {}
        reached: set[str] = set()
        for root in roots:
            if root in reached:
                continue
            readings[root] = read_catalog(
                root, files, lambda path: location_url(repository, path), limits
            )
            reached.update(p for p in readings[root].files_read if p != root)
    kept = [root for root in readings if root not in reached]
    return DryRun(
        entities=[e for root in kept for e in readings[root].entities],
        errors=[e for root in kept for e in readings[root].errors],
        roots=kept,
    )


def target_location_id(target: LocationTarget) -> str | None:
    url = target.file_url
    return location_id(url) if url is not None else None
