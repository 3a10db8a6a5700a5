"""How a repository's locations claim, keep, release and conflict over entity refs."""

from __future__ import annotations

from services.model.catalog import DesiredLocation, Owner, plan_ownership


def _loc(loc_id: str, **etags: str) -> DesiredLocation:
    return DesiredLocation(loc_id, f"{loc_id}.yaml", f"https://h/{loc_id}", dict(etags), [])


def test_a_new_entity_is_claimed_and_emitted() -> None:
    plan = plan_ownership({"L"}, [_loc("L", **{"component:default/a": "e1"})], {})
    assert plan.upserts == {"component:default/a": "L"}
    assert plan.owners["component:default/a"].etag == "e1"


def test_an_unchanged_entity_is_not_emitted_again() -> None:
    current = {"component:default/a": Owner("component:default/a", "L", "e1")}
    plan = plan_ownership({"L"}, [_loc("L", **{"component:default/a": "e1"})], current)
    assert plan.upserts == {} and plan.tombstones == []


def test_a_changed_entity_is_emitted() -> None:
    current = {"component:default/a": Owner("component:default/a", "L", "e1")}
    plan = plan_ownership({"L"}, [_loc("L", **{"component:default/a": "e2"})], current)
    assert plan.upserts == {"component:default/a": "L"}


def test_an_entity_no_longer_in_its_file_is_tombstoned() -> None:
    current = {"component:default/a": Owner("component:default/a", "L", "e1")}
    plan = plan_ownership({"L"}, [_loc("L")], current)
    assert plan.tombstones == ["component:default/a"]
    assert plan.released == ["component:default/a"]


def test_an_invalid_but_present_entity_is_kept() -> None:
    current = {"component:default/a": Owner("component:default/a", "L", "e1")}
    plan = plan_ownership({"L"}, [_loc("L")], current, keep={"component:default/a"})
    assert plan.tombstones == []


def test_an_entity_owned_by_another_repository_is_a_conflict_not_an_overwrite() -> None:
    current = {"component:default/a": Owner("component:default/a", "OTHER", "e1")}
    plan = plan_ownership({"L"}, [_loc("L", **{"component:default/a": "e2"})], current)
    assert plan.upserts == {} and "component:default/a" not in plan.owners
    [error] = plan.conflicts["L"]
    assert error.entity_ref == "component:default/a" and "OTHER" in error.message


def test_an_entity_moving_between_files_of_one_repository_moves_its_owner() -> None:
    current = {"component:default/a": Owner("component:default/a", "L1", "e1")}
    plan = plan_ownership(
        {"L1", "L2"}, [_loc("L1"), _loc("L2", **{"component:default/a": "e1"})], current
    )
    assert plan.upserts == {"component:default/a": "L2"}
    assert plan.tombstones == []


def test_two_files_of_one_repository_defining_one_entity_keep_the_first() -> None:
    plan = plan_ownership(
        {"L1", "L2"},
        [_loc("L1", **{"component:default/a": "e1"}), _loc("L2", **{"component:default/a": "e2"})],
        {},
    )
    assert plan.upserts == {"component:default/a": "L1"}
    assert plan.conflicts["L2"][0].entity_ref == "component:default/a"


def test_refs_compare_case_insensitively() -> None:
    current = {"component:default/payments": Owner("component:default/Payments", "L", "e1")}
    plan = plan_ownership({"L"}, [_loc("L", **{"component:default/Payments": "e1"})], current)
    assert plan.upserts == {} and plan.tombstones == []
