"""Backstage's own catalog client, unchanged, against a running Cairn.

Backstage's example descriptors are pushed as a git repository and registered through the
client's `addLocation`; every client method that maps to Cairn's catalog API is then driven
through the real `@backstage/catalog-client` from the npm registry (a Node script), and
its answers are checked against Backstage's documented behaviour on those examples.
"""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.catalog_client import call, run_client, values
from tests.support.backstage_examples import CATALOG_FILES, EXAMPLES, example_changes
from tests.support.server import wait_until

EXAMPLE_ENTITIES = 69


def _names(entities: list[dict[str, Any]]) -> list[str]:
    return [e["metadata"]["name"] for e in entities]


@pytest.fixture(scope="module")
def catalog(start_cairn, workspace):
    """Cairn with the examples registered through the client; (base URL, repository info)."""
    cairn = start_cairn(extra_env={"CAIRN_CATALOG_FILES": CATALOG_FILES})
    repo, info = workspace.repo(f"examples-{uuid.uuid4().hex[:6]}")
    shutil.copytree(EXAMPLES, repo.work, dirs_exist_ok=True)
    repo.commit_and_push({}, "Backstage's example descriptors")
    [added] = values(
        cairn.base_url, [call("addLocation", {"type": "url", "target": info.html_url})]
    )
    return cairn, info, repo, added


def test_adding_a_repository_registers_every_catalog_file_and_answers_with_its_entities(
    catalog,
) -> None:
    cairn, info, _repo, added = catalog
    assert added["location"]["target"].startswith(f"{info.html_url}/blob/main/")
    assert added["location"]["type"] == "url" and added["location"]["id"]
    expected = {c.ref for c in example_changes(info.html_url)}
    assert len(expected) == EXAMPLE_ENTITIES
    [locations, everything] = values(
        cairn.base_url,
        [call("getLocations"), call("getEntities", {"fields": ["kind", "metadata"]})],
    )
    assert {
        f"{e['kind']}:{e['metadata']['namespace']}/{e['metadata']['name']}".lower()
        for e in everything["items"]
    } == expected
    targets = {loc["target"] for loc in locations["items"]}
    assert f"{info.html_url}/blob/main/all.yaml" in targets
    assert f"{info.html_url}/blob/main/acme/org.yaml" in targets
    assert all(
        loc["entityRef"].startswith("location:default/generated-") for loc in locations["items"]
    )


def test_an_entity_reads_as_backstage_returns_it(catalog) -> None:
    cairn, info, _repo, _added = catalog
    [entity, missing, by_name, broken_location] = values(
        cairn.base_url,
        [
            call("getEntityByRef", "component:default/artist-lookup"),
            call("getEntityByRef", "component:default/no-such-thing"),
            call(
                "getEntityByName",
                {"kind": "Component", "namespace": "default", "name": "artist-lookup"},
            ),
            call("getEntityByRef", "location:default/example-all"),
        ],
    )
    assert missing is None
    assert entity == by_name
    metadata = entity["metadata"]
    assert metadata["uid"] and metadata["etag"] and metadata["tags"] == ["java", "data"]
    assert metadata["annotations"]["backstage.io/managed-by-location"] == (
        f"url:{info.html_url}/blob/main/components/artist-lookup-component.yaml"
    )
    relations = {(r["type"], r["targetRef"]) for r in entity["relations"]}
    assert ("ownedBy", "group:default/team-a") in relations
    assert ("partOf", "system:default/artist-engagement-portal") in relations
    assert ("dependsOn", "resource:default/artists-db") in relations
    by_uid = httpx.get(f"{cairn.base_url}/api/catalog/entities/by-uid/{metadata['uid']}").json()
    assert by_uid == entity
    # all.yaml's Location targets a file that is absent on purpose: an error in status.items.
    [item] = broken_location["status"]["items"]
    assert item["type"] == "backstage.io/catalog-processing" and item["level"] == "error"
    assert "all-ai-resources.yaml" in item["error"]["message"]


def test_filters_follow_backstages_documented_semantics(catalog) -> None:
    cairn, *_ = catalog
    [java, services_or_domains, members, exists, ordered] = values(
        cairn.base_url,
        [
            call(
                "getEntities", {"filter": {"kind": "component", "metadata.tags.java": "__EXISTS__"}}
            ),
            call(
                "getEntities",
                {
                    "filter": [{"kind": "Component", "spec.type": "SERVICE"}, {"kind": "domain"}],
                    "fields": ["kind", "spec.type"],
                },
            ),
            call(
                "getEntities",
                {"filter": {"kind": "user", "relations.memberOf": "group:default/team-a"}},
            ),
            call("getEntities", {"filter": {"kind": "group", "spec.parent": "__EXISTS__"}}),
            call(
                "getEntities",
                {
                    "filter": {"kind": "component"},
                    "order": [
                        {"field": "spec.lifecycle", "order": "desc"},
                        {"field": "metadata.name", "order": "asc"},
                    ],
                    "fields": ["metadata.name", "spec.lifecycle"],
                },
            ),
        ],
    )
    assert sorted(_names(java["items"])) == ["artist-lookup", "playback-order", "podcast-api"]
    kinds = {(e["kind"], e.get("spec", {}).get("type")) for e in services_or_domains["items"]}
    assert kinds == {("Component", "service"), ("Domain", None)}
    assert "breanna.davison" in _names(members["items"])
    assert all(e["spec"]["parent"] for e in exists["items"]) and "acme-corp" not in _names(
        exists["items"]
    )
    rows = [(e["spec"]["lifecycle"], e["metadata"]["name"]) for e in ordered["items"]]
    by_name = sorted(rows, key=lambda r: r[1])
    assert rows == sorted(by_name, key=lambda r: r[0], reverse=True)


def test_entities_page_by_offset_and_limit_in_ref_order(catalog) -> None:
    cairn, *_ = catalog
    [first, second, everything] = values(
        cairn.base_url,
        [
            call(
                "getEntities",
                {"limit": 10, "fields": ["kind", "metadata.namespace", "metadata.name"]},
            ),
            call(
                "getEntities",
                {
                    "limit": 10,
                    "offset": 10,
                    "fields": ["kind", "metadata.namespace", "metadata.name"],
                },
            ),
            call("getEntities", {"fields": ["kind", "metadata.namespace", "metadata.name"]}),
        ],
    )

    def refs(items):
        return [
            f"{e['kind']}:{e['metadata']['namespace']}/{e['metadata']['name']}".lower()
            for e in items
        ]

    assert refs(first["items"] + second["items"]) == sorted(refs(everything["items"]))[:20]
    response = httpx.get(f"{cairn.base_url}/api/catalog/entities", params={"limit": 10})
    assert response.headers["link"].startswith("</entities?limit=10&after=")


def test_query_entities_pages_with_cursors_both_ways(catalog) -> None:
    cairn, *_ = catalog
    request = {
        "filter": {"kind": "component"},
        "limit": 5,
        "orderFields": {"field": "metadata.name", "order": "asc"},
        "fields": ["metadata.name"],
    }
    [first] = values(cairn.base_url, [call("queryEntities", request)])
    assert first["totalItems"] == 23 and "prevCursor" not in first["pageInfo"]
    pages = [first]
    while pages[-1]["pageInfo"].get("nextCursor"):
        [page] = values(
            cairn.base_url,
            [
                call(
                    "queryEntities",
                    {
                        "cursor": pages[-1]["pageInfo"]["nextCursor"],
                        "limit": 5,
                        "fields": ["metadata.name"],
                    },
                )
            ],
        )
        assert page["totalItems"] == 23
        pages.append(page)
    names = [n for p in pages for n in _names(p["items"])]
    assert len(names) == 23 and names == sorted(names)
    [back] = values(
        cairn.base_url,
        [
            call(
                "queryEntities",
                {"cursor": pages[1]["pageInfo"]["prevCursor"], "fields": ["metadata.name"]},
            )
        ],
    )
    assert _names(back["items"]) == _names(first["items"])


def test_query_entities_takes_backstages_predicates_through_post(catalog) -> None:
    cairn, *_ = catalog
    query = {
        "$all": [
            {"kind": "component"},
            {
                "$any": [
                    {"spec.type": {"$in": ["website", "library"]}},
                    {"metadata.name": {"$hasPrefix": "Wayback-"}},
                ]
            },
            {"$not": {"metadata.tags": "demo"}},
            {"spec.owner": {"$exists": True}},
        ]
    }
    results = run_client(
        cairn.base_url,
        [
            call(
                "queryEntities",
                {
                    "query": query,
                    "limit": 3,
                    "orderFields": {"field": "metadata.name", "order": "desc"},
                },
            ),
            call("queryEntities", {"query": {"metadata.tags": {"$contains": "x"}}}),
        ],
    )
    assert results[0]["ok"], results[0]
    first = results[0]["value"]
    assert not results[1]["ok"] and results[1]["error"]["status"] == 400
    assert results[1]["error"]["body"]["error"]["name"] == "InputError"
    names = _names(first["items"])
    cursor = first["pageInfo"]["nextCursor"]
    while cursor:
        # The client sends a predicate cursor back through POST by itself.
        [page] = values(cairn.base_url, [call("queryEntities", {"cursor": cursor})])
        names += _names(page["items"])
        cursor = page["pageInfo"].get("nextCursor")
    assert names == sorted(names, reverse=True) and len(names) == first["totalItems"]
    assert "dream11-svc" not in names  # tagged demo
    assert any(n.startswith("wayback-") for n in names)


def test_full_text_filter_and_streaming(catalog) -> None:
    cairn, *_ = catalog
    [found, pages] = values(
        cairn.base_url,
        [
            call(
                "queryEntities",
                {
                    "fullTextFilter": {
                        "term": "WAYBACK",
                        "fields": ["metadata.name", "metadata.title"],
                    },
                    "orderFields": {"field": "metadata.name", "order": "asc"},
                },
            ),
            call("streamEntities", {"pageSize": 20, "fields": ["metadata.name"]}),
        ],
    )
    names = _names(found["items"])
    assert names and all("wayback" in n for n in names) and names == sorted(names)
    assert found["totalItems"] == len(names)
    assert [len(p) for p in pages][:3] == [20, 20, 20]
    assert sum(len(p) for p in pages) == EXAMPLE_ENTITIES


def test_entities_by_refs_come_back_in_request_order_with_nulls(catalog) -> None:
    cairn, *_ = catalog
    refs = ["group:default/team-a", "component:default/nope", "component:default/artist-lookup"]
    [found] = values(
        cairn.base_url,
        [call("getEntitiesByRefs", {"entityRefs": refs, "fields": ["kind", "metadata.name"]})],
    )
    assert found["items"] == [
        {"kind": "Group", "metadata": {"name": "team-a"}},
        None,
        {"kind": "Component", "metadata": {"name": "artist-lookup"}},
    ]


def test_facets_count_entities_per_value(catalog) -> None:
    cairn, *_ = catalog
    [facets, predicate_facets, components] = values(
        cairn.base_url,
        [
            call(
                "getEntityFacets",
                {"facets": ["spec.type", "metadata.tags", "kind"], "filter": {"kind": "component"}},
            ),
            call("getEntityFacets", {"facets": ["spec.type"], "query": {"kind": "component"}}),
            call("getEntities", {"filter": {"kind": "component"}, "fields": ["spec.type"]}),
        ],
    )
    types: dict[str, int] = {}
    for entity in components["items"]:
        types[entity["spec"]["type"]] = types.get(entity["spec"]["type"], 0) + 1
    assert {f["value"]: f["count"] for f in facets["facets"]["spec.type"]} == types
    assert facets["facets"]["kind"] == [{"value": "Component", "count": 23}]
    tags = {f["value"]: f["count"] for f in facets["facets"]["metadata.tags"]}
    assert tags["java"] == 3 and tags["go"] == 3
    assert predicate_facets == {"facets": {"spec.type": facets["facets"]["spec.type"]}}


def test_ancestry_follows_the_location_entities_that_led_to_the_file(catalog) -> None:
    cairn, *_ = catalog
    [ancestry] = values(
        cairn.base_url, [call("getEntityAncestors", {"entityRef": "component:default/jacs"})]
    )
    assert ancestry["rootEntityRef"] == "component:default/jacs"
    chain = [(i["entity"]["metadata"]["name"], i["parentEntityRefs"]) for i in ancestry["items"]]
    assert chain == [
        ("jacs", ["location:default/example-components"]),
        ("example-components", ["location:default/example-all"]),
        ("example-all", []),
    ]


def test_locations_are_found_by_id_by_entity_and_by_ref(catalog) -> None:
    cairn, info, *_ = catalog
    target = f"{info.html_url}/blob/main/components/artist-lookup-component.yaml"
    [locations] = values(cairn.base_url, [call("getLocations")])
    [location] = [loc for loc in locations["items"] if loc["target"] == target]
    [by_id, by_entity, by_ref, unknown] = values(
        cairn.base_url,
        [
            call("getLocationById", location["id"]),
            call("getLocationByEntity", "component:default/artist-lookup"),
            call("getLocationByRef", f"url:{target}"),
            call("getLocationById", "no-such-id"),
        ],
    )
    assert by_id == by_entity == by_ref == location and unknown is None


def test_a_dry_run_reports_without_registering_and_a_repeat_conflicts(catalog) -> None:
    cairn, info, *_ = catalog
    other = f"{info.html_url}/blob/main/components/artist-lookup-component.yaml"
    results = run_client(
        cairn.base_url,
        [
            call("addLocation", {"target": other, "dryRun": True}),
            call("addLocation", {"target": info.html_url}),
            call(
                "addLocation",
                {"target": f"{info.html_url}/blob/main/no/such-file.yaml", "dryRun": True},
            ),
        ],
    )
    dry = results[0]["value"]
    assert dry["exists"] is True and _names(dry["entities"]) == ["artist-lookup"]
    assert dry["location"]["target"] == other
    assert results[1]["error"]["status"] == 409
    assert results[1]["error"]["body"]["error"]["name"] == "ConflictError"
    assert results[2]["error"]["status"] == 404


def test_validate_entity_answers_valid_or_backstages_error_list(catalog) -> None:
    cairn, *_ = catalog
    good = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "fine"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
    }
    bad = {**good, "metadata": {"name": "not fine"}}
    [valid, invalid, bad_location] = values(
        cairn.base_url,
        [
            call("validateEntity", good, "url:https://example.com/catalog-info.yaml"),
            call("validateEntity", bad, "url:https://example.com/catalog-info.yaml"),
            call("validateEntity", good, "file:/tmp/x.yaml"),
        ],
    )
    assert valid == {"valid": True}
    assert invalid["valid"] is False and "not fine" in invalid["errors"][0]["message"]
    assert invalid["errors"][0]["name"] == "InputError"
    assert (
        bad_location["valid"] is False
        and "only 'url:<target>'" in bad_location["errors"][0]["message"]
    )


def test_refresh_rereads_the_entitys_repository_through_the_log(catalog) -> None:
    cairn, _info, repo, _added = catalog
    path = repo.work / "components" / "artist-lookup-component.yaml"
    path.write_text(
        path.read_text().replace("description: Artist Lookup", "description: Refreshed")
    )
    repo.commit_and_push({}, "edit without a webhook")
    [done] = values(cairn.base_url, [call("refreshEntity", "component:default/artist-lookup")])
    assert done is None
    wait_until(
        lambda: (
            httpx.get(
                f"{cairn.base_url}/api/catalog/entities/by-name/component/default/artist-lookup"
            )
            .json()["metadata"]
            .get("description")
            == "Refreshed"
        ),
        what="the refreshed description",
    )


def test_removing_a_location_removes_what_it_owned(start_cairn, workspace) -> None:
    cairn = start_cairn(extra_env={"CAIRN_CATALOG_FILES": "catalog-info.yaml"})
    repo, info = workspace.repo()
    keep, drop = f"keep-{uuid.uuid4().hex[:6]}", f"drop-{uuid.uuid4().hex[:6]}"
    descriptor = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {}\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
    repo.commit_and_push(
        {
            "catalog-info.yaml": descriptor.format(keep),
            "sub/catalog-info.yaml": descriptor.format(drop),
        }
    )
    target = f"{info.html_url}/blob/main/sub/catalog-info.yaml"
    [added] = values(cairn.base_url, [call("addLocation", {"target": target})])
    assert added["location"]["target"] == target
    # The answer waits (bounded) for the processor; a slow first read answers with none yet.
    assert _names(added["entities"]) in ([drop], [])
    wait_until(lambda: cairn.entity("component", drop), what="the registered entity")
    [removed] = values(cairn.base_url, [call("removeLocationById", added["location"]["id"])])
    assert removed is None
    # The answer waits (bounded) for the removal to reach the store; it usually has.
    wait_until(lambda: cairn.entity("component", drop) is None, what="the removal")
    [kept, missing] = values(
        cairn.base_url,
        [
            call("getEntityByRef", f"component:default/{keep}"),
            call("getLocationById", added["location"]["id"]),
        ],
    )
    assert kept["metadata"]["name"] == keep and missing is None


def test_tokens_guard_reads_and_writes(start_cairn) -> None:
    cairn = start_cairn(extra_env={"CAIRN_API_TOKENS": "reader-token:read,admin-token:admin"})
    results = run_client(
        cairn.base_url,
        [
            call("getLocations"),
            call("getLocations", token="wrong"),
            call("getLocations", token="reader-token"),
            call("refreshEntity", "component:default/x", token="reader-token"),
            call("refreshEntity", "component:default/x", token="admin-token"),
        ],
    )
    assert [r["ok"] or r["error"]["status"] for r in results] == [401, 401, True, 403, 404]
    assert results[0]["error"]["body"]["error"]["name"] == "AuthenticationError"
    assert results[0]["error"]["body"]["response"] == {"statusCode": 401}
    assert results[3]["error"]["body"]["error"]["name"] == "NotAllowedError"
