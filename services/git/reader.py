"""Reading catalog files out of repositories with the git CLI.

Each repository gets a local bare mirror under the data dir. A read fetches only the head
commit of one branch (`--depth=1`), lists its tree once and streams the files it needs
through one `git cat-file --batch` process. Because this is the git CLI, the user's git
configuration applies: `url.<base>.insteadOf` mirrors, credential helpers, proxies.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._-]+")


class GitError(RuntimeError):
    """A git command failed; the message says which and why."""


class BranchNotFound(GitError):
    """The branch does not exist in the remote (deleted, or an empty repository)."""


@dataclass(frozen=True)
class TreeEntry:
    path: str
    object_id: str
    size: int


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a server
    env.setdefault("GIT_ASKPASS", "true")
    return env


class GitReader:
    def __init__(self, mirrors_dir: Path, timeout_seconds: float = 120.0) -> None:
        self.mirrors_dir = mirrors_dir
        self.timeout_seconds = timeout_seconds

    def mirror_path(self, repository_key: str) -> Path:
        safe = "/".join(_SAFE_SEGMENT.sub("_", part) for part in repository_key.split("/"))
        digest = hashlib.sha1(repository_key.encode()).hexdigest()[:8]
        return self.mirrors_dir / f"{safe}-{digest}.git"

    def _run(self, args: list[str], cwd: Path | None = None) -> str:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=_git_env(),
                capture_output=True,
                timeout=self.timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} took longer than {self.timeout_seconds:.0f} s.") from exc
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            detail = message[-1] if message else f"exit status {done.returncode}"
            raise GitError(f"git {args[0]} failed: {detail}")
        return done.stdout.decode(errors="replace")

    def fetch_branch(self, repository_key: str, clone_url: str, branch: str) -> str:
        """Fetch the head of `branch` into the mirror and return its commit id."""
        mirror = self.mirror_path(repository_key)
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            self._run(["init", "--quiet", "--bare", str(mirror)])
        refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
        try:
            self._run(
                [
                    "-c",
                    "gc.auto=0",
                    "-c",
                    "maintenance.auto=false",
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--depth=1",
                    clone_url,
                    refspec,
                ],
                cwd=mirror,
            )
        except GitError as exc:
            if "couldn't find remote ref" in str(exc) or "could not find remote ref" in str(exc):
                raise BranchNotFound(f"Branch {branch!r} does not exist in {clone_url}.") from exc
            raise
        return self._branch_head(mirror, branch)

    def remote_default_branch(self, clone_url: str) -> str | None:
        """The branch the remote's HEAD points at, or None for an empty repository."""
        out = self._run(["ls-remote", "--symref", clone_url, "HEAD"])
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line[len("ref: refs/heads/") : -len("\tHEAD")]
        return None

    def _branch_head(self, mirror: Path, branch: str) -> str:
        # Reading the loose ref a fetch just wrote saves a process; packed refs fall back.
        loose = mirror / "refs" / "heads" / branch
        if loose.is_file():
            return loose.read_text().strip()
        return self._run(["rev-parse", f"refs/heads/{branch}"], cwd=mirror).strip()

    def list_tree(self, repository_key: str, commit: str) -> list[TreeEntry]:
        mirror = self.mirror_path(repository_key)
        out = self._run(["ls-tree", "-r", "-l", "-z", commit], cwd=mirror)
        entries = []
        for line in out.split("\0"):
            if not line:
                continue
            meta, path = line.split("\t", 1)
            _mode, kind, object_id, size = meta.split()
            if kind == "blob":
                entries.append(TreeEntry(path=path, object_id=object_id, size=int(size)))
        return entries

    def open_commit(self, repository_key: str, commit: str) -> CommitFiles:
        return CommitFiles(self.mirror_path(repository_key), self.list_tree(repository_key, commit))

    def remove_mirror(self, repository_key: str) -> None:
        mirror = self.mirror_path(repository_key)
        if mirror.exists():
            subprocess.run(["rm", "-rf", str(mirror)], check=False)


def find_catalog_files(entries: list[TreeEntry], patterns: list[str]) -> list[str]:
    """Paths whose file name (or whole path) matches one of the configured patterns."""
    found = []
    for entry in entries:
        name = PurePosixPath(entry.path).name
        if any(
            fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(entry.path, p) for p in patterns
        ):
            found.append(entry.path)
    return sorted(found)


class CommitFiles:
    """The files of one commit, read on demand through a single `git cat-file --batch`."""

    def __init__(self, mirror: Path, entries: list[TreeEntry]) -> None:
        self._mirror = mirror
        self.entries = {entry.path: entry for entry in entries}
        self._process: subprocess.Popen[bytes] | None = None

    def read(self, path: str) -> bytes | None:
        entry = self.entries.get(path)
        if entry is None:
            return None
        process = self._batch()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(entry.object_id.encode() + b"\n")
        process.stdin.flush()
        header = process.stdout.readline().split()
        if len(header) != 3:
            raise GitError(f"git cat-file could not read {path}.")
        size = int(header[2])
        data = process.stdout.read(size)
        process.stdout.read(1)  # the newline after the object
        return data

    def list(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/" if directory not in ("", ".") else ""
        return sorted(
            p for p in self.entries if p.startswith(prefix) and "/" not in p[len(prefix) :]
        )

    def _batch(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            self._process = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self._mirror,
                env=_git_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._process

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def __enter__(self) -> CommitFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
