"""Real git repositories in a temp dir: a bare remote and a working copy that pushes to it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_IDENTITY = [
    "-c",
    "user.name=Cairn Tests",
    "-c",
    "user.email=tests@cairn.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass
class GitRepo:
    owner: str
    name: str
    work: Path
    remote: Path
    branch: str = "main"

    @classmethod
    def create(cls, root: Path, owner: str, name: str) -> GitRepo:
        remote = root / "remotes" / owner / f"{name}.git"
        work = root / "work" / owner / name
        remote.mkdir(parents=True)
        work.mkdir(parents=True)
        git(remote, "init", "--quiet", "--bare", "--initial-branch=main")
        git(work, "init", "--quiet", "--initial-branch=main")
        git(work, "remote", "add", "origin", str(remote))
        return cls(owner=owner, name=name, work=work, remote=remote)

    def write(self, files: dict[str, str | None]) -> None:
        for path, text in files.items():
            target = self.work / path
            if text is None:
                if target.exists():
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit_and_push(
        self, files: dict[str, str | None], message: str = "change"
    ) -> tuple[str, str]:
        """Write (or delete, with None) files, commit, push; return (before, after) shas."""
        before = self.head() or "0" * 40
        self.write(files)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}")
        return before, self.head() or ""

    def head(self) -> str | None:
        try:
            return git(self.work, "rev-parse", "HEAD")
        except subprocess.CalledProcessError:
            return None

    def commit_timestamp(self) -> str:
        return git(self.work, "log", "-1", "--format=%cI")
