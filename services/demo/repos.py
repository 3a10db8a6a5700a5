"""Real local git repositories of the demo organisation, for `cairn up --demo` and tests.

Each repository has a working copy under `root/work/<owner>/<name>` that pushes to a bare
remote under `root/remotes/<owner>/<name>.git`; Cairn reads the remote through its
`file://` clone URL exactly as it would read a hosted one.

Both `clone_url` and `html_url` are the remote's `file://` URL: an `https://` URL on a
made-up host would look browsable and is not, and a `github.com` one would point at
someone else's repository. Ingest gives a `file:` URL the host `localhost`, so the demo's
repository keys read `localhost/acme/<name>`.

Git runs with a fixed author and committer, the system and global git configuration
switched off (no signing, hooks or templates of the user's), and fixed dates for the
initial commits, so the demo's commit ids are the same on every machine and run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from services.demo.content import ORGANISATION, REPOSITORIES, DemoRepositorySpec
from services.demo.github_payloads import (
    ZERO_SHA,
    CommitInfo,
    GitHubRepoInfo,
    push_payload,
    repository_payload,
)

AUTHOR_NAME = "Acme Demo"
AUTHOR_EMAIL = "demo@acme.test"
DEFAULT_BRANCH = "main"
CATALOG_FILE_NAMES = ("catalog-info.yaml", "catalog-info.yml")
_EPOCH = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
_GIT_TIMEOUT_SECONDS = 60.0


class DemoError(RuntimeError):
    """Creating or changing a demo repository failed; the message says which git step."""


def _git_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
    )
    return env


def _git(args: list[str], cwd: Path | None = None, when: datetime | None = None) -> str:
    env = _git_env()
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    command = [
        "git",
        "-c",
        f"user.name={AUTHOR_NAME}",
        "-c",
        f"user.email={AUTHOR_EMAIL}",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "core.autocrlf=false",
        *args,
    ]
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DemoError("The demo needs the git command; install git and try again.") from exc
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"git {args[0]} took longer than {_GIT_TIMEOUT_SECONDS:.0f} s.") from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise DemoError(f"git {args[0]} failed in {cwd or '.'}: {detail}")
    return done.stdout.decode(errors="replace")


def _safe_path(work_dir: Path, relative: str) -> Path:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(
            f"Demo file path {relative!r} must be relative and stay in the repository."
        )
    return work_dir.joinpath(*path.parts)


def _write(work_dir: Path, files: Mapping[str, str | None]) -> None:
    for relative, text in files.items():
        target = _safe_path(work_dir, relative)
        if text is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


@dataclass
class DemoRepository:
    """One demo repository: a working copy that pushes to a bare remote.

    `head` is the remote's default-branch head; `pushed_from` is what it was before the
    last push (`ZERO_SHA` when that push created the branch), so `push_payload()` describes
    the last push as GitHub would.
    """

    owner: str
    name: str
    work_dir: Path
    remote_dir: Path
    default_branch: str
    head: str
    description: str = ""
    pushed_from: str = ZERO_SHA
    catalog_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def clone_url(self) -> str:
        return self.remote_dir.resolve().as_uri()

    @property
    def html_url(self) -> str:
        return self.clone_url

    def repo_info(self) -> GitHubRepoInfo:
        return GitHubRepoInfo(
            owner=self.owner,
            name=self.name,
            clone_url=self.clone_url,
            html_url=self.html_url,
            default_branch=self.default_branch,
            description=self.description or None,
        )

    def commit(self, message: str, files: Mapping[str, str | None]) -> str:
        """Write (text) or delete (`None`) files, commit, push; returns the new head.

        This is how a demo or a test changes the catalog "live": commit, then deliver
        `push_payload()` to the webhook.
        """
        _write(self.work_dir, files)
        _git(["add", "--all"], cwd=self.work_dir)
        _git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=self.work_dir)
        self._push()
        return self.head

    def commits_of_last_push(self) -> list[CommitInfo]:
        """The commits the last push brought, oldest first, as GitHub lists them."""
        span = self.head if self.pushed_from == ZERO_SHA else f"{self.pushed_from}..{self.head}"
        out = _git(
            ["log", "--reverse", "--format=%H%x1f%T%x1f%cI%x1f%an%x1f%ae%x1f%B%x1e", span],
            cwd=self.work_dir,
        )
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, tree, stamp, author, email, message = record.split("\x1f", 5)
            added, removed, modified = self._changed_files(sha)
            commits.append(
                CommitInfo(
                    id=sha,
                    tree_id=tree,
                    message=message.strip(),
                    timestamp=stamp,
                    author_name=author,
                    author_email=email,
                    added=added,
                    removed=removed,
                    modified=modified,
                )
            )
        return commits

    def push_payload(self) -> dict[str, Any]:
        """The GitHub `push` delivery of the last push to the default branch."""
        return push_payload(
            self.repo_info(),
            ref=f"refs/heads/{self.default_branch}",
            before=self.pushed_from,
            after=self.head,
            commits=self.commits_of_last_push(),
        )

    def repository_payload(
        self, action: str, previous: GitHubRepoInfo | None = None
    ) -> dict[str, Any]:
        """A GitHub `repository` delivery about this repository (`deleted`, `archived`, ...)."""
        return repository_payload(action, self.repo_info(), previous)

    def _changed_files(self, sha: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        out = _git(
            ["diff-tree", "--no-commit-id", "--root", "-r", "--no-renames", "--name-status", sha],
            cwd=self.work_dir,
        )
        changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
        for line in out.splitlines():
            status, _, path = line.partition("\t")
            changes.setdefault(status[:1], []).append(path)
        return tuple(changes["A"]), tuple(changes["D"]), tuple(changes["M"])

    def _push(self) -> None:
        before = self._remote_head()
        _git(
            ["push", "--quiet", "origin", f"HEAD:refs/heads/{self.default_branch}"],
            cwd=self.work_dir,
        )
        self.pushed_from = before or ZERO_SHA
        self.head = _git(["rev-parse", "HEAD"], cwd=self.work_dir).strip()
        self.catalog_files = _catalog_files(self.work_dir, self.head)

    def _remote_head(self) -> str | None:
        out = _git(
            ["for-each-ref", "--format=%(objectname)", f"refs/heads/{self.default_branch}"],
            cwd=self.remote_dir,
        ).strip()
        return out or None


def _catalog_files(work_dir: Path, commit: str) -> tuple[str, ...]:
    out = _git(["ls-tree", "-r", "--name-only", "-z", commit], cwd=work_dir)
    paths = [path for path in out.split("\0") if path]
    return tuple(sorted(p for p in paths if PurePosixPath(p).name in CATALOG_FILE_NAMES))


def _create(spec: DemoRepositorySpec, work_dir: Path, remote_dir: Path, when: datetime) -> str:
    work_dir.mkdir(parents=True)
    remote_dir.parent.mkdir(parents=True, exist_ok=True)
    _git(["init", "--quiet", "--bare", f"--initial-branch={DEFAULT_BRANCH}", str(remote_dir)])
    _git(["init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(work_dir)])
    _write(work_dir, spec.scaffold)
    _git(["add", "--all"], cwd=work_dir)
    _git(["commit", "--quiet", "-m", "Initial commit"], cwd=work_dir, when=when)
    if spec.catalog:
        _write(work_dir, spec.catalog)
        _git(["add", "--all"], cwd=work_dir)
        _git(
            ["commit", "--quiet", "-m", f"Describe {spec.name} in the software catalog"],
            cwd=work_dir,
            when=when + timedelta(minutes=5),
        )
    _git(["remote", "add", "origin", str(remote_dir)], cwd=work_dir)
    _git(["push", "--quiet", "origin", f"HEAD:refs/heads/{DEFAULT_BRANCH}"], cwd=work_dir)
    return _git(["rev-parse", "HEAD"], cwd=work_dir).strip()


def _is_complete(work_dir: Path, remote_dir: Path) -> bool:
    if not (work_dir / ".git").is_dir() or not (remote_dir / "HEAD").is_file():
        return False
    try:
        _git(["rev-parse", "--verify", "--quiet", f"refs/heads/{DEFAULT_BRANCH}"], cwd=remote_dir)
    except DemoError:
        return False
    return True


def create_demo_repositories(root: Path) -> list[DemoRepository]:
    """Create (or reopen) the demo organisation's repositories under `root`.

    Running it again on the same root reopens the repositories already there, including
    any commits made since; a repository left half-made by an interrupted run is made again.
    """
    root = root.resolve()  # the working copies' `origin` must not depend on the cwd
    repositories = []
    for index, spec in enumerate(REPOSITORIES):
        work_dir = root / "work" / ORGANISATION / spec.name
        remote_dir = root / "remotes" / ORGANISATION / f"{spec.name}.git"
        if _is_complete(work_dir, remote_dir):
            head = _git(["rev-parse", f"refs/heads/{DEFAULT_BRANCH}"], cwd=remote_dir).strip()
        else:
            for leftover in (work_dir, remote_dir):
                if leftover.exists():
                    shutil.rmtree(leftover)
            head = _create(spec, work_dir, remote_dir, _EPOCH + timedelta(minutes=10 * index))
        repositories.append(
            DemoRepository(
                owner=ORGANISATION,
                name=spec.name,
                work_dir=work_dir,
                remote_dir=remote_dir,
                default_branch=DEFAULT_BRANCH,
                head=head,
                description=spec.description,
                pushed_from=ZERO_SHA,
                catalog_files=_catalog_files(remote_dir, head),
            )
        )
    return repositories
