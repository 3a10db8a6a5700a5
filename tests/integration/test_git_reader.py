"""Reading repositories with the real git CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.descriptor import DescriptorProcessor
from services.git.reader import BranchNotFound, GitReader
from services.model.events import GitEventReceived, Repository, RepositoryChanged
from services.store.sql_store import SqlCatalogStore
from tests.e2e.catalog_files import component
from tests.support.gitrepo import GitRepo, git


def _trunk_repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo.create(tmp_path, "acme", "trunky")
    repo.branch = "trunk"
    repo.commit_and_push({"catalog-info.yaml": component("trunk-svc")})
    git(repo.remote, "symbolic-ref", "HEAD", "refs/heads/trunk")
    return repo


def test_the_remote_names_its_default_branch(tmp_path: Path) -> None:
    repo = _trunk_repo(tmp_path)
    reader = GitReader(tmp_path / "mirrors")
    assert reader.remote_default_branch(repo.remote.as_uri()) == "trunk"
    with pytest.raises(BranchNotFound):
        reader.fetch_branch("localhost/acme/trunky", repo.remote.as_uri(), "main")
    commit = reader.fetch_branch("localhost/acme/trunky", repo.remote.as_uri(), "trunk")
    with reader.open_commit("localhost/acme/trunky", commit) as files:
        assert b"trunk-svc" in (files.read("catalog-info.yaml") or b"")


def test_an_event_that_guessed_the_branch_wrong_still_reads_the_default_branch(
    tmp_path: Path,
) -> None:
    repo = _trunk_repo(tmp_path)
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    published: list = []
    processor = DescriptorProcessor(
        GitReader(tmp_path / "mirrors"), store, published.extend, ["catalog-info.yaml"]
    )
    moved = Repository(
        host="gitlab.com",
        owner="acme",
        name="trunky",
        provider="gitlab",
        clone_url=repo.remote.as_uri(),
        html_url="https://gitlab.com/acme/trunky",
        default_branch="main",
    )
    outcome = processor.handle(
        GitEventReceived(
            source="gitlab",
            delivery_id="d",
            event_type="System Hook",
            repository=moved,
            change=RepositoryChanged(action="renamed"),
        )
    )
    assert outcome.upserts == 1
    [record] = published
    assert b"https://gitlab.com/acme/trunky/-/blob/trunk/catalog-info.yaml" in record.value
    store.close()
