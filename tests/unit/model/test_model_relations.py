"""Relations of real example entities equal what Backstage's BuiltinKindsEntityProcessor emits.

The expected lists were written from Backstage's processor rules: for each reference field,
in the processor's order, the outgoing relation and then the incoming one; refs without a
kind take the field's default kind and refs without a namespace the entity's namespace.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.model.descriptor import FileSource, read_catalog
from services.model.entity import Entity, Relation
from services.model.relations import derive_relations, outgoing_relations


def location_url(path: str) -> str:
    return f"https://git.example.test/acme/catalog/blob/main/{path}"


def example(examples: FileSource, path: str, name: str) -> Entity:
    reading = read_catalog(path, examples, location_url)
    (entity,) = [e for e in reading.entities if e.metadata["name"] == name]
    return entity


def edges(entity: Entity) -> list[tuple[str, str, str]]:
    return [(e.source_ref, e.type, e.target_ref) for e in derive_relations(entity)]


def both(source: str, outgoing: str, incoming: str, target: str) -> list[tuple[str, str, str]]:
    return [(source, outgoing, target), (target, incoming, source)]


def test_component_with_owner_depends_on_and_system(examples: FileSource) -> None:
    entity = example(examples, "components/artist-lookup-component.yaml", "artist-lookup")
    me = "component:default/artist-lookup"
    assert edges(entity) == [
        *both(me, "ownedBy", "ownerOf", "group:default/team-a"),
        *both(me, "dependsOn", "dependencyOf", "resource:default/artists-db"),
        *both(me, "partOf", "hasPart", "system:default/artist-engagement-portal"),
    ]


def test_component_providing_and_consuming_apis(examples: FileSource) -> None:
    entity = example(examples, "components/petstore-component.yaml", "petstore")
    me = "component:default/petstore"
    assert edges(entity) == [
        *both(me, "ownedBy", "ownerOf", "group:default/sre"),
        *both(me, "providesApi", "apiProvidedBy", "api:default/petstore"),
        *both(me, "providesApi", "apiProvidedBy", "api:default/streetlights"),
        *both(me, "providesApi", "apiProvidedBy", "api:default/playback-order"),
        *both(me, "consumesApi", "apiConsumedBy", "api:default/searcher"),
    ]


def test_consumed_api_ref_with_explicit_kind_keeps_that_kind(examples: FileSource) -> None:
    entity = example(examples, "components/www-artist-component.yaml", "www-artist")
    assert ("component:default/www-artist", "consumesApi", "component:default/artist-lookup") in (
        edges(entity)
    )


def test_subcomponent_is_part_of_its_parent_component(examples: FileSource) -> None:
    entity = example(
        examples, "components/wayback-archive-ingestion-component.yaml", "wayback-archive-ingestion"
    )
    me = "component:default/wayback-archive-ingestion"
    assert edges(entity) == [
        *both(me, "ownedBy", "ownerOf", "group:default/team-d"),
        *both(me, "partOf", "hasPart", "component:default/wayback-archive"),
    ]


def test_entity_in_another_namespace_resolves_owner_in_the_given_namespace(
    examples: FileSource,
) -> None:
    entity = example(examples, "components/different-namespace.yaml", "different-namespace")
    assert edges(entity) == both(
        "component:alternative/different-namespace", "ownedBy", "ownerOf", "group:default/team-a"
    )


def test_user_membership_uses_its_own_namespace_unless_told_otherwise(
    examples: FileSource,
) -> None:
    reading = read_catalog("acme/team-a-group.yaml", examples, location_url)
    users = {str(e.ref): edges(e) for e in reading.entities if e.kind == "User"}
    assert users["user:default/guest"] == both(
        "user:default/guest", "memberOf", "hasMember", "group:default/team-a"
    )
    assert users["user:development/guest"] == both(
        "user:development/guest", "memberOf", "hasMember", "group:default/team-a"
    )


def test_group_parent_and_children(examples: FileSource) -> None:
    entity = example(examples, "acme/backstage-group.yaml", "backstage")
    me = "group:default/backstage"
    assert edges(entity) == [
        *both(me, "childOf", "parentOf", "group:default/infrastructure"),
        *both(me, "parentOf", "childOf", "group:default/team-a"),
        *both(me, "parentOf", "childOf", "group:default/team-b"),
    ]


def test_system_owned_by_a_user_and_part_of_a_domain(examples: FileSource) -> None:
    entity = example(examples, "systems/podcast-system.yaml", "podcast")
    me = "system:default/podcast"
    assert edges(entity) == [
        *both(me, "ownedBy", "ownerOf", "user:default/team-b"),
        *both(me, "partOf", "hasPart", "domain:default/playback"),
    ]


def test_domain_and_resource_and_api_relations(examples: FileSource) -> None:
    domain = example(examples, "domains/playback-domain.yaml", "playback")
    assert edges(domain) == both(
        "domain:default/playback", "ownedBy", "ownerOf", "user:default/frank.tiernan"
    )
    resource = example(examples, "resources/artists-db-resource.yaml", "artists-db")
    assert edges(resource) == [
        *both("resource:default/artists-db", "ownedBy", "ownerOf", "group:default/team-a"),
        *both(
            "resource:default/artists-db",
            "partOf",
            "hasPart",
            "system:default/artist-engagement-portal",
        ),
    ]
    api = example(examples, "apis/petstore-api.yaml", "petstore")
    assert edges(api) == both("api:default/petstore", "ownedBy", "ownerOf", "group:default/team-c")


def test_locations_have_no_relations(examples: FileSource) -> None:
    assert edges(example(examples, "all.yaml", "example-all")) == []


def entity(kind: str, spec: dict[str, Any], namespace: str | None = None) -> Entity:
    metadata: dict[str, Any] = {"name": "me"}
    if namespace:
        metadata["namespace"] = namespace
    return Entity.model_validate(
        {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}
    )


def test_dependency_of_points_the_other_way() -> None:
    assert edges(entity("Component", {"dependencyOf": ["component:web"]})) == both(
        "component:default/me", "dependencyOf", "dependsOn", "component:default/web"
    )


def test_group_members_default_to_users_and_subdomains_to_domains() -> None:
    assert edges(entity("Group", {"members": ["jdoe"]}, namespace="org")) == both(
        "group:org/me", "hasMember", "memberOf", "user:org/jdoe"
    )
    assert edges(entity("Domain", {"subdomainOf": "music"})) == both(
        "domain:default/me", "partOf", "hasPart", "domain:default/music"
    )


def test_unparseable_refs_are_skipped_and_duplicates_collapsed() -> None:
    found = edges(entity("Component", {"dependsOn": ["no-kind", "resource:db", "resource:db"]}))
    assert found == both("component:default/me", "dependsOn", "dependencyOf", "resource:default/db")


@pytest.mark.parametrize("value", ["team-a", ["team-a"]])
def test_a_single_ref_or_a_list_are_both_accepted(value: object) -> None:
    assert edges(entity("User", {"memberOf": value})) == both(
        "user:default/me", "memberOf", "hasMember", "group:default/team-a"
    )


def test_outgoing_relations_collects_an_entitys_own_relations() -> None:
    all_edges = derive_relations(entity("Component", {"owner": "team-a", "system": "s"}))
    team = Entity.model_validate(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "team-a"},
            "spec": {"type": "team", "children": ["team-b"]},
        }
    )
    all_edges += derive_relations(team)
    assert outgoing_relations("Group:default/Team-A", all_edges) == [
        Relation(type="ownerOf", target_ref="component:default/me"),
        Relation(type="parentOf", target_ref="group:default/team-b"),
    ]
    assert outgoing_relations(team.ref, all_edges) == outgoing_relations(
        "group:default/team-a", all_edges
    )
    assert outgoing_relations("component:default/me", all_edges + all_edges) == [
        Relation(type="ownedBy", target_ref="group:default/team-a"),
        Relation(type="partOf", target_ref="system:default/s"),
    ]
