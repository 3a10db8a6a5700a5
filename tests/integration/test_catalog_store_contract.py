"""The catalog-store port's contract, held against every adapter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.model.catalog import DesiredLocation, OwnershipPlan, location_id
from services.model.events import EntityChanged, Repository
from services.store.port import VersionedChange
from tests.integration.conftest import unique


def _repo(name: str) -> Repository:
    return Repository(
        host="github.com",
        owner="acme",
        name=name,
        clone_url=f"https://github.com/acme/{name}.git",
        html_url=f"https://github.com/acme/{name}",
    )


def _change(ref: str, description: str, owner: str = "team-a") -> EntityChanged:
    kind, _, rest = ref.partition(":")
    namespace, _, name = rest.partition("/")
    return EntityChanged(
        ref=ref,
        location_id="loc",
        location_target="https://github.com/acme/x/blob/main/catalog-info.yaml",
        entity={
            "apiVersion": "backstage.io/v1alpha1",
            "kind": kind.capitalize(),
            "metadata": {
                "name": name,
                "namespace": namespace,
                "description": description,
                "uid": f"uid-{name}",
                "etag": description,
            },
            "spec": {"type": "service", "lifecycle": "production", "owner": owner},
        },
        relations=[
            {"source_ref": ref, "type": "ownedBy", "target_ref": f"group:default/{owner}"},
            {"source_ref": f"group:default/{owner}", "type": "ownerOf", "target_ref": ref},
        ],
    )


def test_a_newer_version_replaces_and_an_older_one_is_ignored(catalog_store) -> None:
    ref = f"component:default/{unique('svc')}"
    catalog_store.apply_entity_changes([VersionedChange(ref, 5, _change(ref, "v5"))])
    applied = catalog_store.apply_entity_changes([VersionedChange(ref, 3, _change(ref, "v3"))])
    assert applied == 0
    assert catalog_store.get_entity(ref).body["metadata"]["description"] == "v5"
    catalog_store.apply_entity_changes([VersionedChange(ref, 9, _change(ref, "v9"))])
    assert catalog_store.get_entity(ref).body["metadata"]["description"] == "v9"


def test_a_tombstone_deletes_and_guards_against_a_late_older_write(catalog_store) -> None:
    ref = f"component:default/{unique('svc')}"
    catalog_store.apply_entity_changes([VersionedChange(ref, 5, _change(ref, "v5"))])
    catalog_store.apply_entity_changes([VersionedChange(ref, 6, None)])
    assert catalog_store.get_entity(ref) is None
    catalog_store.apply_entity_changes([VersionedChange(ref, 4, _change(ref, "late"))])
    assert catalog_store.get_entity(ref) is None


def test_replaying_the_same_changes_changes_nothing(catalog_store) -> None:
    ref = f"component:default/{unique('svc')}"
    changes = [
        VersionedChange(ref, 1, _change(ref, "one")),
        VersionedChange(ref, 2, _change(ref, "two")),
    ]
    catalog_store.apply_entity_changes(changes)
    before = catalog_store.get_entity(ref)
    assert catalog_store.apply_entity_changes(changes) == 0
    assert catalog_store.get_entity(ref) == before


def test_relations_are_read_from_every_entity_that_produced_them(catalog_store) -> None:
    owner = unique("team")
    ref = f"component:default/{unique('svc')}"
    catalog_store.apply_entity_changes([VersionedChange(ref, 1, _change(ref, "x", owner))])
    group_ref = f"group:default/{owner}"
    group = _change(group_ref, "group")
    catalog_store.apply_entity_changes(
        [VersionedChange(group_ref, 2, group.model_copy(update={"relations": []}))]
    )
    stored = catalog_store.get_entity(group_ref)
    assert [(r.type, r.target_ref) for r in stored.relations] == [("ownerOf", ref)]
    catalog_store.apply_entity_changes([VersionedChange(ref, 3, None)])
    assert catalog_store.get_entity(group_ref).relations == []


def test_entities_are_found_by_uid_and_listed(catalog_store) -> None:
    name = unique("svc")
    ref = f"component:default/{name}"
    catalog_store.apply_entity_changes([VersionedChange(ref, 1, _change(ref, "x"))])
    assert catalog_store.get_entity_by_uid(f"uid-{name}").ref == ref
    assert ref in {e.ref for e in catalog_store.iter_entities(batch_size=2)}
    assert catalog_store.get_entity(ref.upper().replace("COMPONENT", "Component")) is not None


def test_reconcile_claims_releases_and_reports_conflicts(catalog_store) -> None:
    first, second = _repo(unique("one")), _repo(unique("two"))
    shared = f"component:default/{unique('shared')}"
    loc_a = DesiredLocation(
        location_id(first.html_url), "catalog-info.yaml", first.html_url, {shared: "e1"}, []
    )
    emitted: list[OwnershipPlan] = []
    plan = catalog_store.reconcile_repository(first, "active", "c1", [loc_a], set(), emitted.append)
    assert list(plan.upserts) == [shared] and emitted == [plan]
    loc_b = DesiredLocation(
        location_id(second.html_url), "catalog-info.yaml", second.html_url, {shared: "e2"}, []
    )
    plan_b = catalog_store.reconcile_repository(
        second, "active", "c2", [loc_b], set(), emitted.append
    )
    assert plan_b.upserts == {} and shared in str(plan_b.conflicts)
    [location] = [x for x in catalog_store.list_locations() if x.id == loc_b.id]
    assert location.errors and location.errors[0].entity_ref == shared
    released = catalog_store.reconcile_repository(first, "deleted", None, [], set(), emitted.append)
    assert released.tombstones == [shared]
    assert catalog_store.get_repository(first.key) is None


def test_a_failed_emit_saves_no_state(catalog_store) -> None:
    repo = _repo(unique("r"))
    ref = f"component:default/{unique('svc')}"
    loc = DesiredLocation(
        location_id(repo.html_url), "catalog-info.yaml", repo.html_url, {ref: "e"}, []
    )

    def fail(_plan: OwnershipPlan) -> None:
        raise RuntimeError("log down")

    with pytest.raises(RuntimeError):
        catalog_store.reconcile_repository(repo, "active", "c", [loc], set(), fail)
    assert catalog_store.get_repository(repo.key) is None
    plan = catalog_store.reconcile_repository(repo, "active", "c", [loc], set(), lambda p: None)
    assert list(plan.upserts) == [ref]


def test_times_are_read_back_as_the_same_instant_in_utc(catalog_store) -> None:
    ref = f"component:default/{unique('svc')}"
    changed_at = datetime(2024, 3, 4, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    change = _change(ref, "x").model_copy(update={"changed_at": changed_at})
    catalog_store.apply_entity_changes([VersionedChange(ref, 1, change)])
    updated_at = catalog_store.get_entity(ref).updated_at
    assert updated_at == changed_at and updated_at.utcoffset() == timedelta(0)
    repo = _repo(unique("r"))
    loc = DesiredLocation(location_id(repo.html_url), "catalog-info.yaml", repo.html_url, {}, [])
    catalog_store.reconcile_repository(repo, "active", "c", [loc], set(), lambda p: None)
    [location] = [x for x in catalog_store.list_locations() if x.id == loc.id]
    assert location.processed_at.utcoffset() == timedelta(0)
    assert catalog_store.get_repository(repo.key).processed_at == location.processed_at
