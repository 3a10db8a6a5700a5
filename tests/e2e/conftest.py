"""The running product: `cairn up` in a subprocess, real git repositories, signed webhooks.

Repositories are addressed as a Git host would send them (https://github.com/acme/NAME)
and a git `url.<base>.insteadOf` rule in the product's git configuration maps them to
bare repositories in a temp dir, so every fetch also proves the user's git config applies.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.demo.github_payloads import GitHubRepoInfo
from tests.support.distributed import Installations
from tests.support.gitrepo import GitRepo
from tests.support.server import RUNNING, CairnProcess

HOST_BASE = "https://github.com/"
# The other Git hosts' addresses map to the same bare repositories (tests/e2e/test_*_webhooks).
OTHER_HOST_BASES = (
    "https://gitlab.com/",
    "https://gitea.com/",
    "https://codeberg.org/",
    "https://bitbucket.org/",
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """A failed test shows the end of every running Cairn process's log: the CI run is
    often the only place a timing failure happens."""
    report: pytest.TestReport = yield
    if report.failed:
        for process in RUNNING:
            report.sections.append(
                (f"cairn {process.command} on port {process.port}", process.log())
            )
    return report


@dataclass
class Workspace:
    root: Path
    git_config: Path

    def repo(self, name: str | None = None, owner: str = "acme") -> tuple[GitRepo, GitHubRepoInfo]:
        name = name or f"repo-{uuid.uuid4().hex[:8]}"
        repo = GitRepo.create(self.root, owner, name)
        info = GitHubRepoInfo(
            owner=owner,
            name=name,
            clone_url=f"{HOST_BASE}{owner}/{name}.git",
            html_url=f"{HOST_BASE}{owner}/{name}",
            default_branch="main",
        )
        return repo, info


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("git")
    config = root / "gitconfig"
    config.write_text(
        f'[url "file://{root}/remotes/"]\n\tinsteadOf = {HOST_BASE}\n'
        + "".join(f"\tinsteadOf = {base}\n" for base in OTHER_HOST_BASES)
        + '[protocol "file"]\n\tallow = always\n'
    )
    return Workspace(root=root, git_config=config)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def deployment(request: pytest.FixtureRequest) -> Iterator[Installations | None]:
    """Every scenario runs on the embedded default and on the distributed stack (Kafka,
    PostgreSQL): one installation (Kafka namespace + database) per data dir."""
    if request.param == "embedded":
        yield None
        return
    installations = Installations()
    yield installations
    installations.close()


@pytest.fixture(scope="module")
def start_cairn(
    workspace: Workspace,
    tmp_path_factory: pytest.TempPathFactory,
    deployment: Installations | None,
) -> Iterator[Callable[..., CairnProcess]]:
    started: list[CairnProcess] = []

    def start(data_dir: Path | None = None, **kwargs: object) -> CairnProcess:
        data_dir = data_dir or tmp_path_factory.mktemp("cairn") / "data"
        if deployment is not None:
            extra_env = dict(kwargs.pop("extra_env", None) or {})  # type: ignore[call-overload]
            kwargs["extra_env"] = {**deployment.get(data_dir).env, **extra_env}
        process = CairnProcess(
            data_dir=data_dir,
            secret=secrets.token_hex(16),
            git_config=workspace.git_config,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def cairn(
    start_cairn: Callable[..., CairnProcess], deployment: Installations | None
) -> Iterator[CairnProcess]:
    process = start_cairn()
    if deployment is None:
        yield process
        return
    # A command the test runs itself (`cairn resync ...`) reaches this Cairn's Kafka
    # namespace and database, as it would for an operator who exported its settings.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in deployment.get(process.data_dir).env.items():
            patch.setenv(name, value)
        yield process
