"""Level-triggered healing: a resync repairs what a lost webhook missed, and an entity
refused as a conflict is taken by its other location once the owner lets it go."""

from __future__ import annotations

import subprocess
import uuid

from tests.e2e.catalog_files import component
from tests.support.server import CAIRN, wait_until


def test_a_resync_picks_up_a_push_whose_webhook_was_lost(cairn, workspace) -> None:
    repo, info = workspace.repo()
    first, missed = f"seen-{uuid.uuid4().hex[:6]}", f"missed-{uuid.uuid4().hex[:6]}"
    cairn.push(info, *repo.commit_and_push({"catalog-info.yaml": component(first)}))
    wait_until(lambda: cairn.entity("component", first), what="the first entity")
    repo.commit_and_push({"catalog-info.yaml": component(missed)})  # no webhook delivered

    done = subprocess.run(
        [
            str(CAIRN),
            "resync",
            "--data-dir",
            str(cairn.data_dir),
            "--repository",
            f"github.com/acme/{info.name}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "resync requested for 1 repositories" in done.stdout
    wait_until(lambda: cairn.entity("component", missed), what="the missed entity")
    wait_until(lambda: cairn.entity("component", first) is None, what="the replaced entity gone")


def test_an_entity_claimed_twice_is_a_conflict_until_its_owner_lets_go(cairn, workspace) -> None:
    owner_repo, owner_info = workspace.repo()
    other_repo, other_info = workspace.repo()
    name = f"contested-{uuid.uuid4().hex[:6]}"
    cairn.push(
        owner_info,
        *owner_repo.commit_and_push(
            {"catalog-info.yaml": component(name, description="from the owner")}
        ),
    )
    wait_until(lambda: cairn.entity("component", name), what="the owner's entity")
    cairn.push(
        other_info,
        *other_repo.commit_and_push(
            {"catalog-info.yaml": component(name, description="from the other")}
        ),
    )
    other_target = f"{other_info.html_url}/blob/main/catalog-info.yaml"

    def conflict():
        for location in cairn.get("/api/catalog/locations").json():
            data = location["data"]
            if data["target"] == other_target and data["errors"]:
                return data["errors"]
        return None

    [error] = wait_until(conflict, what="the conflict recorded on the other location")
    assert error["entity_ref"] == f"component:default/{name}"
    assert cairn.entity("component", name)["metadata"]["description"] == "from the owner"

    cairn.push(owner_info, *owner_repo.commit_and_push({"catalog-info.yaml": None}))
    wait_until(
        lambda: (
            (cairn.entity("component", name) or {}).get("metadata", {}).get("description")
            == "from the other"
        ),
        what="the other location taking the entity over",
    )
    assert not conflict()
