"""Validation applies Backstage's field formats and kind schemas, one sentence per problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.model.validation import validate_entity

COMPONENT: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {
        "name": "artist-web",
        "namespace": "music",
        "labels": {"example.com/custom": "custom_label_value", "empty": ""},
        "annotations": {"example.com/service-discovery": "artistweb", "x": ""},
        "tags": ["java", "c++", "c#", "lang:go"],
        "links": [{"url": "https://admin.example-org.com", "title": "Admin", "icon": "dashboard"}],
    },
    "spec": {
        "type": "website",
        "lifecycle": "production",
        "owner": "artist-relations-team",
        "system": "public-websites",
        "dependsOn": ["resource:artists-db"],
    },
}


def component(**changes: Any) -> dict[str, Any]:
    """COMPONENT with dotted-path changes; a value of None removes the key."""
    entity = copy.deepcopy(COMPONENT)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = entity
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return entity


def test_a_valid_component_has_no_errors() -> None:
    assert validate_entity(COMPONENT) == []


def test_v1beta1_is_accepted_like_v1alpha1() -> None:
    assert validate_entity(component(apiVersion="backstage.io/v1beta1")) == []


def test_unknown_api_version_for_a_builtin_kind_is_an_error() -> None:
    (error,) = validate_entity(component(apiVersion="backstage.io/v2"))
    assert "apiVersion" in error and "backstage.io/v1alpha1" in error


def test_unknown_kind_is_an_error_naming_the_kind() -> None:
    (error,) = validate_entity(component(kind="Template"))
    assert error.startswith('Unknown kind "Template"')


def test_kind_is_case_sensitive_like_backstage() -> None:
    (error,) = validate_entity(component(kind="component"))
    assert "Unknown kind" in error


def test_a_document_that_is_not_a_mapping_is_one_clear_error() -> None:
    (error,) = validate_entity(["a", "list"])
    assert "not a mapping" in error


def test_a_mapping_without_any_entity_field_is_not_an_entity() -> None:
    (error,) = validate_entity({"openapi": "3.1.0", "info": {}})
    assert "not a catalog entity" in error


def test_foreign_top_level_fields_are_rejected() -> None:
    (error,) = validate_entity(component(owner="me"))
    assert 'Unknown top-level field "owner"' in error


@pytest.mark.parametrize(
    "name", ["invalid component", "-leading", "trailing.", "a" * 64, "", "ü-umlaut", 12]
)
def test_invalid_names_are_rejected(name: object) -> None:
    (error,) = validate_entity(component(metadata__name=name))
    assert error.startswith("metadata.name")


@pytest.mark.parametrize("name", ["a", "A1", "a.b_c-d", "x" * 63, "LoremService"])
def test_valid_names_are_accepted(name: str) -> None:
    assert validate_entity(component(metadata__name=name)) == []


def test_missing_name_is_an_error() -> None:
    (error,) = validate_entity(component(metadata__name=None))
    assert "metadata.name is missing" in error


@pytest.mark.parametrize("namespace", ["Default", "under_score", "a..b", "-a", ""])
def test_invalid_namespaces_are_rejected(namespace: str) -> None:
    (error,) = validate_entity(component(metadata__namespace=namespace))
    assert error.startswith("metadata.namespace")


def test_label_keys_and_values_follow_kubernetes_rules() -> None:
    errors = validate_entity(
        component(metadata__labels={"Bad_Prefix/ok": "v", "ok": "has space", "a/b/c": "v"})
    )
    assert len(errors) == 3
    assert all(error.startswith("metadata.labels") for error in errors)


def test_annotation_values_must_be_strings() -> None:
    (error,) = validate_entity(component(metadata__annotations={"example.com/count": 3}))
    assert "metadata.annotations.example.com/count" in error


@pytest.mark.parametrize("tag", ["go 1.15.3", "Java", "-x", "a" * 64, ""])
def test_invalid_tags_are_rejected_with_their_index(tag: str) -> None:
    (error,) = validate_entity(component(metadata__tags=["ok", tag]))
    assert error.startswith("metadata.tags[1]")


def test_links_need_an_absolute_url_and_valid_title_and_icon() -> None:
    errors = validate_entity(
        component(
            metadata__links=[
                {"url": "not a url"},
                {"title": "no url"},
                {"url": "https://example.com", "title": " ", "icon": "bad icon"},
            ]
        )
    )
    assert [error.split(" ")[0] for error in errors] == [
        "metadata.links[0].url",
        "metadata.links[1].url",
        "metadata.links[2].title",
        "metadata.links[2].icon",
    ]


@pytest.mark.parametrize(
    ("kind", "spec", "missing"),
    [
        ("Component", {}, ["type", "lifecycle", "owner"]),
        ("API", {}, ["type", "lifecycle", "owner", "definition"]),
        ("Resource", {}, ["type", "owner"]),
        ("System", {}, ["owner"]),
        ("Domain", {}, ["owner"]),
        ("Group", {}, ["type", "children"]),
        ("User", {}, ["memberOf"]),
        ("Location", {}, []),
    ],
)
def test_each_kind_requires_the_spec_fields_of_its_backstage_schema(
    kind: str, spec: dict[str, Any], missing: list[str]
) -> None:
    errors = validate_entity(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "x"},
            "spec": spec,
        }
    )
    assert [error.split(" ")[0] for error in errors] == [f"spec.{field}" for field in missing]


def test_builtin_kinds_need_a_spec() -> None:
    (error,) = validate_entity(
        {"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": "x"}}
    )
    assert error.startswith("spec is missing")


def test_spec_field_types_are_checked() -> None:
    errors = validate_entity(component(spec__owner="", spec__providesApis="petstore"))
    assert errors == [
        "spec.owner must be a non-empty string.",
        "spec.providesApis must be a list of non-empty strings.",
    ]


def test_group_children_must_be_a_list_even_when_empty() -> None:
    group = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": "team-a"},
        "spec": {"type": "team", "children": []},
    }
    assert validate_entity(group) == []
    group["spec"]["children"] = "team-b"
    assert validate_entity(group) == ["spec.children must be a list of non-empty strings."]


def test_depends_on_refs_must_name_their_kind() -> None:
    (error,) = validate_entity(component(spec__dependsOn=["artists-db"]))
    assert error.startswith('spec.dependsOn[0] "artists-db" has no kind')


def test_refs_in_the_spec_must_parse() -> None:
    (error,) = validate_entity(component(spec__owner="group:/team"))
    assert error.startswith("spec.owner is not a valid entity reference")


def test_refs_may_use_another_namespace_or_kind() -> None:
    assert validate_entity(component(spec__owner="default/team-a")) == []
    assert validate_entity(component(spec__owner="user:guest")) == []
