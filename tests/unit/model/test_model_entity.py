"""Entities render in Backstage's shape and get identities that survive rebuilds."""

from __future__ import annotations

from typing import Any

from services.model.entity import (
    ANNOTATION_LOCATION,
    ANNOTATION_ORIGIN_LOCATION,
    Entity,
    ProcessingError,
    Relation,
    entity_etag,
    entity_uid,
    finalize_entity,
)
from services.model.refs import parse_ref

RAW: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "Petstore", "annotations": {"example.com/a": "b"}},
    "spec": {"type": "service", "lifecycle": "production", "owner": "team-c"},
}


def finalized(raw: dict[str, Any] = RAW, where: str = "catalog-info.yaml") -> Entity:
    return finalize_entity(
        Entity.model_validate(raw),
        location_url=f"https://git.example.test/r/blob/main/{where}",
        origin_location_url="https://git.example.test/r/blob/main/catalog-info.yaml",
    )


def test_entity_ref_defaults_the_namespace() -> None:
    entity = Entity.model_validate(RAW)
    assert str(entity.ref) == "component:default/petstore"
    assert entity.ref.name == "Petstore"


def test_unknown_top_level_keys_are_kept() -> None:
    entity = Entity.model_validate({**RAW, "status": {"custom": 1}})
    assert entity.to_backstage()["status"] == {"custom": 1}


def test_to_backstage_renders_relations_and_processing_errors_like_backstage() -> None:
    entity = Entity.model_validate(RAW)
    body = entity.to_backstage(
        relations=[Relation(type="ownedBy", target_ref="group:default/team-c")],
        errors=[ProcessingError(message="spec.owner is wrong.", location="https://x/y.yaml")],
    )
    assert body["apiVersion"] == "backstage.io/v1alpha1"
    assert body["relations"] == [{"type": "ownedBy", "targetRef": "group:default/team-c"}]
    assert body["status"] == {
        "items": [
            {
                "type": "backstage.io/catalog-processing",
                "level": "error",
                "message": "InputError: spec.owner is wrong.",
                "error": {"name": "InputError", "message": "spec.owner is wrong."},
            }
        ]
    }


def test_to_backstage_leaves_out_status_when_there_are_no_errors() -> None:
    body = Entity.model_validate(RAW).to_backstage(relations=[], errors=[])
    assert body["relations"] == []
    assert "status" not in body


def test_relation_serialises_with_backstage_field_names() -> None:
    relation = Relation(type="partOf", target_ref="system:default/podcast")
    assert relation.model_dump(by_alias=True) == {
        "type": "partOf",
        "targetRef": "system:default/podcast",
    }
    assert Relation.model_validate({"type": "partOf", "targetRef": "x:y/z"}).target_ref == "x:y/z"


def test_to_backstage_returns_a_copy() -> None:
    entity = Entity.model_validate(RAW)
    entity.to_backstage()["metadata"]["name"] = "changed"
    assert entity.metadata["name"] == "Petstore"


def test_uid_is_stable_and_case_insensitive() -> None:
    uid = entity_uid(parse_ref("component:default/petstore"))
    assert uid == entity_uid(parse_ref("Component:Default/Petstore"))
    assert uid != entity_uid(parse_ref("component:default/other"))


def test_etag_depends_on_content_not_key_order() -> None:
    assert entity_etag({"a": 1, "b": [1, 2]}) == entity_etag({"b": [1, 2], "a": 1})
    assert entity_etag({"a": 1}) != entity_etag({"a": 2})


def test_finalize_sets_namespace_annotations_uid_and_etag() -> None:
    entity = finalized(where="services/petstore.yaml")
    metadata = entity.metadata
    assert metadata["namespace"] == "default"
    assert metadata["annotations"] == {
        "example.com/a": "b",
        ANNOTATION_LOCATION: "url:https://git.example.test/r/blob/main/services/petstore.yaml",
        ANNOTATION_ORIGIN_LOCATION: "url:https://git.example.test/r/blob/main/catalog-info.yaml",
    }
    assert metadata["uid"] == entity_uid(entity.ref)
    assert len(metadata["etag"]) == 64
    assert RAW["metadata"]["annotations"] == {"example.com/a": "b"}  # the input is unchanged


def test_finalize_is_deterministic_across_rebuilds() -> None:
    assert finalized().to_backstage() == finalized().to_backstage()


def test_etag_changes_when_the_entity_or_its_location_changes() -> None:
    changed = {**RAW, "spec": {**RAW["spec"], "lifecycle": "deprecated"}}
    assert finalized().metadata["etag"] != finalized(changed).metadata["etag"]
    assert finalized().metadata["etag"] != finalized(where="other.yaml").metadata["etag"]


def test_finalize_overrides_author_supplied_identity_and_ownership() -> None:
    raw = {
        **RAW,
        "metadata": {
            "name": "petstore",
            "uid": "made-up",
            "etag": "made-up",
            "annotations": {ANNOTATION_LOCATION: "url:https://elsewhere"},
        },
    }
    metadata = finalized(raw).metadata
    assert metadata["uid"] == entity_uid(parse_ref("component:default/petstore"))
    assert metadata["etag"] != "made-up"
    assert metadata["annotations"][ANNOTATION_LOCATION].startswith("url:https://git.example.test/")
    assert (
        finalized(raw).metadata["etag"]
        == finalized({**raw, "metadata": {**raw["metadata"], "etag": "x"}}).metadata["etag"]
    )
