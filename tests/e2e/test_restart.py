"""Nothing accepted is lost: an event in the log when Cairn stops is processed on restart."""

from __future__ import annotations

import uuid

from tests.e2e.catalog_files import component
from tests.support.server import CairnProcess, wait_until


def test_an_accepted_but_unprocessed_event_is_processed_after_restart(
    start_cairn, workspace, tmp_path
) -> None:
    data_dir = tmp_path / "data"
    # Only the receivers run, so the accepted event waits in the log, unprocessed.
    ingest_only = start_cairn(data_dir=data_dir, command="ingest")
    repo, info = workspace.repo()
    name = f"waiting-{uuid.uuid4().hex[:8]}"
    response = ingest_only.push(info, *repo.commit_and_push({"catalog-info.yaml": component(name)}))
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    ingest_only.stop(kill=True)

    everything = start_cairn(data_dir=data_dir)
    wait_until(lambda: everything.entity("component", name), what="the entity after restart")


def test_a_restart_keeps_the_catalog(start_cairn, workspace, tmp_path) -> None:
    data_dir = tmp_path / "data"
    first: CairnProcess = start_cairn(data_dir=data_dir)
    repo, info = workspace.repo()
    name = f"kept-{uuid.uuid4().hex[:8]}"
    first.push(info, *repo.commit_and_push({"catalog-info.yaml": component(name)}))
    wait_until(lambda: first.entity("component", name), what="the entity")
    first.stop()
    second = start_cairn(data_dir=data_dir)
    assert second.entity("component", name) is not None
    assert second.search(q=name)["total"] >= 1
