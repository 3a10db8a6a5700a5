"""Shared pieces of the benchmark commands (not tests: they print figures, never assert)."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from services.demo.github_payloads import GitHubRepoInfo
from tests.support.gitrepo import GitRepo

HOST_BASE = "https://github.com/"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    scaled = [v * scale for v in values]
    return (
        f"p50 {percentile(scaled, 50):.1f} {unit}, p90 {percentile(scaled, 90):.1f} {unit}, "
        f"p99 {percentile(scaled, 99):.1f} {unit}, mean {statistics.fmean(scaled):.1f} {unit} "
        f"(n={len(scaled)})"
    )


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Workspace:
    """Temp git repositories reachable as https://github.com/acme/NAME through insteadOf."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cairn-bench-"))
        self.git_config = self.root / "gitconfig"
        self.git_config.write_text(
            f'[url "file://{self.root}/remotes/"]\n\tinsteadOf = {HOST_BASE}\n'
        )

    def close(self) -> None:
        """Remove the repositories and every data dir made under the workspace."""
        shutil.rmtree(self.root, ignore_errors=True)

    def repo(self, name: str) -> tuple[GitRepo, GitHubRepoInfo]:
        repo = GitRepo.create(self.root, "acme", name)
        return repo, GitHubRepoInfo(
            owner="acme",
            name=name,
            clone_url=f"{HOST_BASE}acme/{name}.git",
            html_url=f"{HOST_BASE}acme/{name}",
            default_branch="main",
        )
