"""The descriptor processor's answer to a location removed through the catalog API."""

from __future__ import annotations

from pathlib import Path

from processors.descriptor import DescriptorProcessor
from services.git.reader import GitReader
from services.model.catalog import location_id
from services.model.events import GitEventReceived, LocationRemoved, Repository, ResyncRequested
from services.store.sql_store import SqlCatalogStore
from tests.e2e.catalog_files import component
from tests.support.gitrepo import GitRepo


def test_a_removed_location_tombstones_its_entities_and_keeps_the_others(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path, "acme", "two-files")
    repo.commit_and_push(
        {"catalog-info.yaml": component("kept-svc"), "sub/catalog-info.yaml": component("gone-svc")}
    )
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    published: list = []
    processor = DescriptorProcessor(
        GitReader(tmp_path / "mirrors"), store, published.extend, ["catalog-info.yaml"]
    )
    repository = Repository(
        host="github.com",
        owner="acme",
        name="two-files",
        clone_url=repo.remote.as_uri(),
        html_url="https://github.com/acme/two-files",
        default_branch="main",
    )

    def event(change: object) -> GitEventReceived:
        return GitEventReceived(
            source="test", delivery_id="d", event_type="t", repository=repository, change=change
        )

    processor.handle(event(ResyncRequested(reason="register")))
    removed_id = location_id("https://github.com/acme/two-files/blob/main/sub/catalog-info.yaml")
    assert store.get_location(removed_id) is not None
    published.clear()

    outcome = processor.handle(
        event(LocationRemoved(location_id=removed_id, path="sub/catalog-info.yaml"))
    )

    assert outcome.tombstones == 1
    assert [(r.key, r.value) for r in published] == [("component:default/gone-svc", None)]
    assert store.get_location(removed_id) is None
    [kept] = store.list_locations()
    assert kept.entity_refs == ["component:default/kept-svc"]
    store.close()
