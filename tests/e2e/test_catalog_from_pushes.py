"""A Git host pushes; a developer finds the result. Embedded default, over HTTP."""

from __future__ import annotations

import uuid

from services.demo.github_payloads import push_payload, repository_payload
from tests.e2e.catalog_files import component, documents
from tests.support.server import wait_until


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _found(cairn, name: str, **filters):
    items = cairn.search(q=name, **filters)["items"]
    return [i for i in items if i["name"] == name]


def test_a_pushed_component_becomes_searchable_with_backstage_shape(cairn, workspace) -> None:
    repo, info = workspace.repo()
    name = _name("payments")
    before, after = repo.commit_and_push(
        {"catalog-info.yaml": component(name, description="Takes card payments", system="checkout")}
    )
    response = cairn.push(info, before, after)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"

    [hit] = wait_until(lambda: _found(cairn, name), what=f"{name} in search")
    assert hit["ref"] == f"component:default/{name}"
    assert hit["owner"] == "group:default/team-a" and hit["kind"] == "component"
    assert hit["description"] == "Takes card payments"

    entity = cairn.entity_when("component", name)
    assert entity["apiVersion"] == "backstage.io/v1alpha1"
    annotations = entity["metadata"]["annotations"]
    target = f"{info.html_url}/blob/main/catalog-info.yaml"
    assert annotations["backstage.io/managed-by-location"] == f"url:{target}"
    assert annotations["backstage.io/managed-by-origin-location"] == f"url:{target}"
    assert entity["metadata"]["uid"] and entity["metadata"]["etag"]
    relations = {(r["type"], r["targetRef"]) for r in entity["relations"]}
    assert ("ownedBy", "group:default/team-a") in relations
    assert ("partOf", "system:default/checkout") in relations

    locations = {
        loc["data"]["target"]: loc["data"] for loc in cairn.get("/api/catalog/locations").json()
    }
    assert locations[target]["commit"] == after
    assert locations[target]["entityRefs"] == [f"component:default/{name}"]


def test_a_changed_descriptor_changes_the_entity_and_its_etag(cairn, workspace) -> None:
    repo, info = workspace.repo()
    name = _name("ledger")
    cairn.push(
        info, *repo.commit_and_push({"catalog-info.yaml": component(name, description="first")})
    )
    wait_until(lambda: _found(cairn, name), what="first version")
    first = cairn.entity_when("component", name)
    cairn.push(
        info, *repo.commit_and_push({"catalog-info.yaml": component(name, description="second")})
    )
    wait_until(
        lambda: [h for h in _found(cairn, name) if h["description"] == "second"],
        what="second version",
    )
    second = cairn.entity_when(
        "component", name, lambda e: e["metadata"].get("description") == "second"
    )
    assert second["metadata"]["etag"] != first["metadata"]["etag"]
    assert second["metadata"]["uid"] == first["metadata"]["uid"]


def test_an_entity_removed_from_its_file_disappears(cairn, workspace) -> None:
    repo, info = workspace.repo()
    keep, drop = _name("keep"), _name("drop")
    cairn.push(
        info,
        *repo.commit_and_push({"catalog-info.yaml": documents(component(keep), component(drop))}),
    )
    wait_until(lambda: _found(cairn, drop), what="both entities")
    cairn.push(info, *repo.commit_and_push({"catalog-info.yaml": component(keep)}))
    wait_until(
        lambda: not _found(cairn, drop) and cairn.entity("component", drop) is None, what="removal"
    )
    assert _found(cairn, keep)


def test_a_deleted_catalog_file_removes_its_entities(cairn, workspace) -> None:
    repo, info = workspace.repo()
    root, sub = _name("root"), _name("sub")
    cairn.push(
        info,
        *repo.commit_and_push(
            {
                "catalog-info.yaml": component(root),
                "services/sub/catalog-info.yaml": component(sub),
            }
        ),
    )
    wait_until(lambda: _found(cairn, sub), what="entity of the sub-folder file")
    cairn.push(info, *repo.commit_and_push({"services/sub/catalog-info.yaml": None}))
    wait_until(lambda: not _found(cairn, sub), what="removal of the deleted file's entity")
    assert _found(cairn, root)
    targets = [loc["data"]["target"] for loc in cairn.get("/api/catalog/locations").json()]
    assert f"{info.html_url}/blob/main/services/sub/catalog-info.yaml" not in targets


def test_a_broken_descriptor_is_reported_against_its_location_and_the_rest_still_loads(
    cairn, workspace
) -> None:
    repo, info = workspace.repo()
    good = _name("good")
    broken = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [unclosed\n"
    cairn.push(
        info,
        *repo.commit_and_push(
            {
                "catalog-info.yaml": component(good),
                "broken/catalog-info.yaml": broken,
            }
        ),
    )
    wait_until(lambda: _found(cairn, good), what="the valid entity")
    target = f"{info.html_url}/blob/main/broken/catalog-info.yaml"

    def broken_location():
        for loc in cairn.get("/api/catalog/locations").json():
            if loc["data"]["target"] == target and loc["data"]["errors"]:
                return loc["data"]
        return None

    data = wait_until(broken_location, what="the broken location's error")
    assert "yaml" in data["errors"][0]["message"].lower()
    assert cairn.get("/readyz").status_code == 200


def test_pushes_to_other_branches_are_ignored(cairn, workspace) -> None:
    _repo, info = workspace.repo()
    payload = push_payload(info, "refs/heads/feature/x", "0" * 40, "1" * 40, [])
    response = cairn.send("push", payload)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert "default branch" in response.json()["reason"]


def test_out_of_order_pushes_converge_to_the_branch_head(cairn, workspace) -> None:
    repo, info = workspace.repo()
    old, new = _name("old"), _name("new")
    first = repo.commit_and_push({"catalog-info.yaml": component(old)})
    second = repo.commit_and_push({"catalog-info.yaml": component(new)})
    cairn.push(info, *second)
    wait_until(lambda: _found(cairn, new), what="the newest state")
    cairn.push(info, *first)  # a late, older delivery
    marker = _name("marker")
    third = repo.commit_and_push(
        {"catalog-info.yaml": documents(component(new), component(marker))}
    )
    cairn.push(info, *third)
    wait_until(lambda: _found(cairn, marker), what="the marker after the late push")
    assert not _found(cairn, old)


def test_repository_deleted_archived_and_unarchived(cairn, workspace) -> None:
    repo, info = workspace.repo()
    name = _name("archivable")
    cairn.push(info, *repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(cairn, name), what="the entity")
    assert cairn.send("repository", repository_payload("archived", info)).status_code == 202
    wait_until(lambda: not _found(cairn, name), what="archived repository's entity removed")
    assert cairn.send("repository", repository_payload("unarchived", info)).status_code == 202
    wait_until(lambda: _found(cairn, name), what="unarchived repository's entity back")
    assert cairn.send("repository", repository_payload("deleted", info)).status_code == 202
    wait_until(lambda: not _found(cairn, name), what="deleted repository's entity removed")


def test_a_renamed_repository_moves_its_entities_to_the_new_location(cairn, workspace) -> None:
    repo, info = workspace.repo()
    name = _name("movable")
    cairn.push(info, *repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: _found(cairn, name), what="the entity")
    new_name = f"{info.name}-renamed"
    repo.remote.rename(repo.remote.with_name(f"{new_name}.git"))
    renamed = type(info)(
        owner=info.owner,
        name=new_name,
        clone_url=info.clone_url.replace(info.name, new_name),
        html_url=info.html_url.replace(info.name, new_name),
        default_branch="main",
    )
    assert (
        cairn.send("repository", repository_payload("renamed", renamed, previous=info)).status_code
        == 202
    )
    new_target = f"url:{renamed.html_url}/blob/main/catalog-info.yaml"

    def moved():
        entity = cairn.entity("component", name)
        return (
            entity
            and entity["metadata"]["annotations"]["backstage.io/managed-by-location"] == new_target
        )

    wait_until(moved, what="the entity at its new location")
    targets = [loc["data"]["target"] for loc in cairn.get("/api/catalog/locations").json()]
    assert f"{info.html_url}/blob/main/catalog-info.yaml" not in targets
