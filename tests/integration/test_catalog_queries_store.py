"""The catalog API's store queries over Backstage's own examples, on every store adapter.

What is checked is Backstage's documented filter, order, pagination and facet behaviour
(software catalog API docs): filter sets OR, conditions AND, case-insensitive matching,
array items as keys, relations by type and target ref, keyset cursors that survive
changes, facets counting entities per value.
"""

from __future__ import annotations

import json

import pytest

from search_api.backstage_entities import document_json, render_entity
from services.model.events import EntityChanged
from services.store.catalog_query import (
    AllOf,
    AnyOf,
    EntityListRequest,
    EntityPageRequest,
    FieldMatch,
    FullTextFilter,
    Not,
    OrderField,
)
from services.store.port import VersionedChange
from tests.support.backstage_examples import example_changes

COMPONENTS = 23


def _load(store, changes: list[EntityChanged], start: int = 1) -> None:
    store.apply_entity_changes(
        [VersionedChange(c.ref, start + i, c) for i, c in enumerate(changes)]
    )


@pytest.fixture
def examples(catalog_store):
    _load(catalog_store, example_changes())
    return catalog_store


def _refs(entities) -> list[str]:
    return [e.ref for e in entities]


def _names(store, entity_filter, **kwargs) -> set[str]:
    found = store.list_entities(EntityListRequest(filter=entity_filter, **kwargs)).entities
    return {e.name for e in found}


def test_a_kind_filter_matches_whatever_the_case(examples) -> None:
    for written in ("component", "Component", "COMPONENT"):
        found = examples.list_entities(
            EntityListRequest(filter=FieldMatch("kind", (written.lower(),)))
        ).entities
        assert len(found) == COMPONENTS
        assert {e.kind for e in found} == {"Component"}


def test_array_items_match_as_keys_and_as_values(examples) -> None:
    java = {"artist-lookup", "playback-order", "podcast-api"}
    assert _names(examples, FieldMatch("metadata.tags.java")) == java
    assert _names(examples, FieldMatch("metadata.tags", ("java",))) == java
    both = AllOf((FieldMatch("metadata.tags.java"), FieldMatch("metadata.tags.data")))
    assert _names(examples, both) == {"artist-lookup"}


def test_filter_sets_are_ored_and_conditions_anded(examples) -> None:
    dev_users = AllOf(
        (FieldMatch("kind", ("user",)), FieldMatch("metadata.namespace", ("development",)))
    )
    domains = AllOf((FieldMatch("kind", ("domain",)),))
    found = examples.list_entities(EntityListRequest(filter=AnyOf((dev_users, domains)))).entities
    assert sorted(_refs(found)) == [
        "domain:default/artists",
        "domain:default/audio",
        "domain:default/playback",
        "user:development/guest",
    ]


def test_a_key_alone_asks_for_existence_and_not_for_absence(examples) -> None:
    groups = _names(examples, AllOf((FieldMatch("kind", ("group",)), FieldMatch("spec.parent"))))
    assert "team-a" in groups and "acme-corp" not in groups
    roots = _names(
        examples, AllOf((FieldMatch("kind", ("group",)), Not(FieldMatch("spec.parent"))))
    )
    assert "acme-corp" in roots and "team-a" not in roots


def test_relations_match_by_type_and_target_ref(examples) -> None:
    owned = examples.list_entities(
        EntityListRequest(
            filter=AllOf(
                (
                    FieldMatch("kind", ("component",)),
                    FieldMatch("relations.ownedby", ("group:default/team-a",)),
                )
            )
        )
    ).entities
    owner = ("ownedBy", "group:default/team-a")
    assert owned and all(owner in e.relations for e in owned)
    assert "different-namespace" in {e.name for e in owned}
    members = _names(
        examples,
        AllOf(
            (
                FieldMatch("kind", ("user",)),
                FieldMatch("relations.memberof", ("group:default/team-a",)),
            )
        ),
    )
    assert "breanna.davison" in members


def test_a_prefix_matches_the_start_of_values_only(examples) -> None:
    names = _names(examples, FieldMatch("metadata.name", prefix="wayback-"))
    assert names and all(n.startswith("wayback-") for n in names)
    assert _names(examples, FieldMatch("metadata.name", prefix="%")) == set()


def test_order_puts_missing_values_last_in_both_directions(examples) -> None:
    for direction in ("asc", "desc"):
        found = examples.list_entities(
            EntityListRequest(
                filter=FieldMatch("kind", ("component", "system")),
                order=(OrderField("spec.lifecycle", direction),),
            )
        ).entities
        lifecycles = [e.body["spec"].get("lifecycle") for e in found]
        present = [value for value in lifecycles if value is not None]
        assert lifecycles[: len(present)] == sorted(present, reverse=direction == "desc")
        assert all(value is None for value in lifecycles[len(present) :])
        assert any(value is None for value in lifecycles)


def test_offset_and_limit_page_through_the_ref_order(examples) -> None:
    every = examples.list_entities(EntityListRequest(by_ref=True)).entities
    assert _refs(every) == sorted(_refs(every), key=str.lower)
    first = examples.list_entities(EntityListRequest(by_ref=True, limit=10))
    second = examples.list_entities(EntityListRequest(by_ref=True, limit=10, offset=10))
    assert first.has_more and _refs(first.entities + second.entities) == _refs(every[:20])
    last = examples.list_entities(EntityListRequest(by_ref=True, limit=10, offset=60))
    assert not last.has_more and len(last.entities) == len(every) - 60


def _walk(store, request: EntityPageRequest) -> list[str]:
    seen: list[str] = []
    page = store.query_entities(request)
    seen += _refs(page.entities)
    while page.has_more:
        request = EntityPageRequest(
            filter=request.filter,
            order=request.order,
            limit=request.limit,
            after=page.positions[-1],
            count=False,
        )
        page = store.query_entities(request)
        seen += _refs(page.entities)
    return seen


def test_keyset_pages_cover_every_match_once_in_order(examples) -> None:
    order = OrderField("metadata.name", "desc")
    request = EntityPageRequest(filter=FieldMatch("kind", ("component",)), order=order, limit=4)
    first = examples.query_entities(request)
    assert first.total == COMPONENTS and len(first.entities) == 4
    walked = _walk(examples, request)
    names = [ref.split("/")[1] for ref in walked]
    assert len(walked) == COMPONENTS and names == sorted(names, reverse=True)


def test_pages_over_a_field_some_entities_lack_reach_them_too(examples) -> None:
    request = EntityPageRequest(order=OrderField("spec.lifecycle"), limit=7)
    walked = _walk(examples, request)
    assert sorted(walked) == sorted(_refs(examples.list_entities(EntityListRequest()).entities))


def test_a_cursor_stays_valid_while_the_catalog_changes(examples) -> None:
    request = EntityPageRequest(
        filter=FieldMatch("kind", ("component",)), order=OrderField("metadata.name"), limit=5
    )
    page = examples.query_entities(request)
    names = [e.name for e in page.entities]
    changes = {c.ref: c for c in example_changes()}
    # One entity already seen and one not yet seen are deleted; a new one sorts before all.
    gone_seen, gone_ahead = page.entities[0].ref, "component:default/wayback-search"
    new = changes["component:default/artist-lookup"].model_copy(
        update={
            "ref": "component:default/aaa-new",
            "entity": {
                **changes["component:default/artist-lookup"].entity,
                "metadata": {"name": "aaa-new", "namespace": "default", "uid": "u-new"},
            },
        }
    )
    examples.apply_entity_changes(
        [
            VersionedChange(gone_seen, 10_000, None),
            VersionedChange(gone_ahead, 10_001, None),
            VersionedChange(new.ref, 10_002, new),
        ]
    )
    rest = _walk(
        examples,
        EntityPageRequest(
            filter=request.filter, order=request.order, limit=5, after=page.positions[-1]
        ),
    )
    rest_names = [ref.split("/")[1] for ref in rest]
    assert not set(rest_names) & set(names)
    assert "wayback-search" not in rest_names and "aaa-new" not in rest_names
    assert len(names) + len(rest_names) == COMPONENTS - 1


def test_a_page_backwards_is_the_one_before_the_position(examples) -> None:
    request = EntityPageRequest(
        filter=FieldMatch("kind", ("user",)), order=OrderField("metadata.name"), limit=5
    )
    first = examples.query_entities(request)
    second = examples.query_entities(
        EntityPageRequest(
            filter=request.filter, order=request.order, limit=5, after=first.positions[-1]
        )
    )
    back = examples.query_entities(
        EntityPageRequest(
            filter=request.filter,
            order=request.order,
            limit=5,
            after=second.positions[0],
            backwards=True,
        )
    )
    assert _refs(back.entities) == _refs(first.entities) and back.has_more


def test_the_default_order_is_by_uid_and_offset_skips(examples) -> None:
    page = examples.query_entities(EntityPageRequest(limit=100))
    uids = [e.uid for e in page.entities]
    assert uids == sorted(uids) and page.total == len(uids) and not page.has_more
    skipped = examples.query_entities(EntityPageRequest(limit=100, offset=10))
    assert [e.uid for e in skipped.entities] == uids[10:]
    empty = examples.query_entities(EntityPageRequest(limit=0))
    assert empty.entities == [] and empty.total == len(uids)


def test_full_text_matches_a_substring_of_the_given_fields(examples) -> None:
    page = examples.query_entities(
        EntityPageRequest(
            order=OrderField("metadata.name"),
            full_text=FullTextFilter("wayback", ("metadata.name",)),
            limit=50,
        )
    )
    names = [e.name for e in page.entities]
    assert names and all("wayback" in n for n in names) and names == sorted(names)
    described = examples.query_entities(
        EntityPageRequest(
            full_text=FullTextFilter("playback", ("metadata.description", "metadata.name")),
            limit=50,
        )
    )
    assert "playback-order" in {e.name for e in described.entities}


# The fields Backstage's catalog table searches (read from `entity_text` on PostgreSQL).
CATALOG_TABLE_FIELDS = ("metadata.name", "metadata.title", "spec.profile.displayname")


def _catalog_table_text(body: dict) -> list[str]:
    profile = body.get("spec", {}).get("profile") or {}
    values = (body["metadata"]["name"], body["metadata"].get("title"), profile.get("displayName"))
    return [value.lower() for value in values if isinstance(value, str)]


def _assert_full_text_agrees_with_the_bodies(store, terms: tuple[str, ...]) -> None:
    everything = store.list_entities(EntityListRequest()).entities
    groups = FieldMatch("kind", ("group",))
    for term in terms:
        expected = sorted(
            e.name for e in everything if any(term in v for v in _catalog_table_text(e.body))
        )
        page = store.query_entities(
            EntityPageRequest(
                order=OrderField("metadata.name"),
                full_text=FullTextFilter(term, CATALOG_TABLE_FIELDS),
                limit=500,
            )
        )
        assert [e.name for e in page.entities] == expected, term
        assert page.total == len(expected), term
        named = sorted(e.name for e in everything if term in e.name.lower())
        on_sort = store.query_entities(
            EntityPageRequest(
                order=OrderField("metadata.name"),
                full_text=FullTextFilter(term, ("metadata.name",)),
                limit=500,
            )
        )
        assert ([e.name for e in on_sort.entities], on_sort.total) == (named, len(named)), term
        filtered = store.query_entities(
            EntityPageRequest(
                filter=groups, full_text=FullTextFilter(term, CATALOG_TABLE_FIELDS), limit=500
            )
        )
        in_groups = [e for e in everything if e.kind == "Group"]
        grouped = sorted(
            e.name for e in in_groups if any(term in v for v in _catalog_table_text(e.body))
        )
        assert sorted(e.name for e in filtered.entities) == grouped, term
        assert filtered.total == len(grouped), term


def test_full_text_on_the_catalog_tables_fields_follows_every_change(examples) -> None:
    """Names, titles and display names (read from their own narrow table on PostgreSQL)
    match as the entities' bodies say, after entities are written, changed and deleted."""
    terms = ("art", "team", "portal", "-", "zebra")
    _assert_full_text_agrees_with_the_bodies(examples, terms)

    changes = {c.ref: c for c in example_changes()}
    group = next(
        c for c in changes.values() if c.entity["spec"].get("profile", {}).get("displayName")
    )
    system = next(c for c in changes.values() if c.entity["metadata"].get("title"))
    renamed_group = json.loads(json.dumps(group.entity))
    renamed_group["spec"]["profile"]["displayName"] = "Zebra Crossing"
    retitled_system = json.loads(json.dumps(system.entity))
    retitled_system["metadata"]["title"] = "Zebra Portal"
    deleted = "component:default/artist-lookup"
    examples.apply_entity_changes(
        [
            VersionedChange(group.ref, 10_000, group.model_copy(update={"entity": renamed_group})),
            VersionedChange(
                system.ref, 10_000, system.model_copy(update={"entity": retitled_system})
            ),
            VersionedChange(deleted, 10_000, None),
        ]
    )
    assert examples.get_entity(deleted) is None
    _assert_full_text_agrees_with_the_bodies(examples, terms)
    zebras = examples.query_entities(
        EntityPageRequest(full_text=FullTextFilter("zebra", CATALOG_TABLE_FIELDS), limit=10)
    )
    assert sorted(e.ref for e in zebras.entities) == sorted([group.ref, system.ref])


def test_facets_count_entities_per_value(examples) -> None:
    facets = examples.entity_facets(
        ["spec.type", "metadata.tags", "relations.ownedby"], FieldMatch("kind", ("component",))
    )
    types = {f.value: f.count for f in facets["spec.type"]}
    components = examples.list_entities(
        EntityListRequest(filter=FieldMatch("kind", ("component",)))
    ).entities
    assert sum(types.values()) == COMPONENTS
    assert types["service"] == sum(1 for e in components if e.body["spec"]["type"] == "service")
    tags = {f.value: f.count for f in facets["metadata.tags"]}
    assert tags["java"] == 3 and tags["go"] == 3
    counts = [f.count for f in facets["spec.type"]]
    assert counts == sorted(counts, reverse=True)
    owners = {f.value: f.count for f in facets["relations.ownedby"]}
    assert owners["group:default/team-a"] == sum(
        1 for e in components if ("ownedBy", "group:default/team-a") in e.relations
    )


def test_refs_are_found_case_insensitively_and_unknown_ones_are_absent(examples) -> None:
    found = examples.get_entities(["Component:default/Artist-Lookup", "component:default/nope"])
    assert list(found) == ["component:default/artist-lookup"]
    filtered = examples.get_entities(
        ["component:default/artist-lookup", "group:default/team-a"], FieldMatch("kind", ("group",))
    )
    assert list(filtered) == ["group:default/team-a"]


def test_search_rows_follow_changes_and_tombstones(examples) -> None:
    change = next(c for c in example_changes() if c.ref == "component:default/artist-lookup")
    body = {**change.entity, "metadata": {**change.entity["metadata"], "tags": ["kotlin"]}}
    examples.apply_entity_changes(
        [VersionedChange(change.ref, 20_000, change.model_copy(update={"entity": body}))]
    )
    assert "artist-lookup" not in _names(examples, FieldMatch("metadata.tags.java"))
    assert _names(examples, FieldMatch("metadata.tags.kotlin")) == {"artist-lookup"}
    examples.apply_entity_changes([VersionedChange(change.ref, 20_001, None)])
    assert _names(examples, FieldMatch("metadata.tags.kotlin")) == set()
    assert examples.entity_facets(["metadata.tags"])["metadata.tags"]
    assert "kotlin" not in {
        f.value for f in examples.entity_facets(["metadata.tags"])["metadata.tags"]
    }


def test_streaming_returns_every_match_in_order(examples) -> None:
    streamed = list(
        examples.stream_entities(EntityListRequest(order=(OrderField("metadata.name"),)))
    )
    listed = examples.list_entities(
        EntityListRequest(order=(OrderField("metadata.name"),))
    ).entities
    assert _refs(streamed) == _refs(listed) and len(streamed) == 69


def test_a_broad_filter_pages_alike_whichever_plan_the_store_picks(examples, monkeypatch) -> None:
    import services.store.catalog_queries as queries

    request = EntityPageRequest(filter=FieldMatch("kind", ("user", "group")), limit=4)
    natural = _walk(examples, request)
    monkeypatch.setattr(queries, "BROAD_MATCHES", 1)
    assert _walk(examples, request) == natural and len(natural) == 25


def test_listed_documents_render_as_the_stored_entities_do(examples) -> None:
    """Pages carry bodies as stored JSON text and relations aggregated by the database; what
    the API writes from them is what it writes for the entity read whole."""
    documents = examples.list_entities(EntityListRequest()).entities
    assert len(documents) > 50
    with_relations = 0
    for document in documents:
        stored = examples.get_entity(document.ref)
        assert json.loads(document_json(document)) == render_entity(stored)
        assert document.relations == tuple((r.type, r.target_ref) for r in stored.relations)
        with_relations += bool(document.relations)
    assert with_relations > 30
