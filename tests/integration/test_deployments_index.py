"""The search index keeps each entity's environments beside its document: search filters
by them, hits carry them, and they outlive changes of the entity. FTS5 (the embedded
index); the OpenSearch adapter does not keep deployments yet (see docs/architecture.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.index.document import DeployedEnvironment, build_search_document
from services.index.fts5 import Fts5SearchIndex
from services.index.port import DeploymentIndex, DeploymentsWrite, IndexWrite, SearchQuery

NOW = time.time()
HOUR = 3600.0


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Fts5SearchIndex]:
    fts5 = Fts5SearchIndex(tmp_path / "index.db")
    fts5.ensure_ready()
    yield fts5
    fts5.close()


def _entity(index: Fts5SearchIndex, name: str, version: int = 1, description: str = "") -> str:
    ref = f"component:default/{name}"
    body = {
        "kind": "Component",
        "metadata": {"name": name, "description": description or f"{name} service"},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
    }
    index.apply([IndexWrite(ref, version, build_search_document(ref, body, NOW))])
    return ref


def _env(
    environment: str,
    version: str | None,
    deployed_ago: float | None,
    last_status: str = "success",
    last_ago: float | None = None,
) -> DeployedEnvironment:
    return DeployedEnvironment(
        environment=environment,
        version=version,
        deployed_at=NOW - deployed_ago if deployed_ago is not None else None,
        last_status=last_status,
        last_version=version,
        last_at=NOW - (last_ago if last_ago is not None else deployed_ago or 0.0),
    )


def _refs(index: Fts5SearchIndex, **filters: str) -> list[str]:
    page = index.search(SearchQuery(filters={k: [v] for k, v in filters.items()}, sort="name"))
    return [hit.ref for hit in page.items]


@pytest.fixture
def deployed(index: Fts5SearchIndex) -> dict[str, str]:
    refs = {name: _entity(index, name) for name in ("fresh", "stale", "broken", "never")}
    index.apply_deployments(
        [
            DeploymentsWrite(refs["fresh"], 1, [_env("production", "v2", 2 * HOUR)]),
            DeploymentsWrite(
                refs["stale"],
                2,
                [_env("production", "v1", 72 * HOUR), _env("staging", "v3", 1 * HOUR)],
            ),
            DeploymentsWrite(
                refs["broken"],
                3,
                [_env("production", "v1", 80 * HOUR, last_status="failure", last_ago=HOUR)],
            ),
        ]
    )
    return refs


def test_the_embedded_index_keeps_deployments() -> None:
    assert issubclass(Fts5SearchIndex, DeploymentIndex)


def test_search_filters_by_environment_recency_and_outcome(
    index: Fts5SearchIndex, deployed: dict[str, str]
) -> None:
    assert _refs(index, deployed_to="production") == [
        deployed["broken"],
        deployed["fresh"],
        deployed["stale"],
    ]
    assert _refs(index, deployed_to="Production", deployed_since="24h") == [deployed["fresh"]]
    assert _refs(index, deployed_since="24h") == [deployed["fresh"], deployed["stale"]]
    assert _refs(index, last_deploy_status="failure") == [deployed["broken"]]
    assert _refs(index, last_deploy_status="failure", deployed_since="2h") == [deployed["broken"]]
    assert _refs(index, deployed_to="staging", last_deploy_status="failure") == []


def test_hits_carry_what_runs_where(index: Fts5SearchIndex, deployed: dict[str, str]) -> None:
    [hit] = index.search(SearchQuery(text="stale")).items
    assert [(d.environment, d.version) for d in hit.deployments] == [
        ("production", "v1"),
        ("staging", "v3"),
    ]
    [never] = index.search(SearchQuery(text="never")).items
    assert never.deployments == []


def test_environments_outlive_entity_changes_and_older_writes(
    index: Fts5SearchIndex, deployed: dict[str, str]
) -> None:
    _entity(index, "fresh", version=5, description="changed")
    [hit] = index.search(SearchQuery(text="fresh")).items
    assert hit.description == "changed" and hit.deployments[0].version == "v2"
    index.apply_deployments([DeploymentsWrite(deployed["fresh"], 0, [])])
    assert _refs(index, deployed_to="production", deployed_since="24h") == [deployed["fresh"]]
    index.apply_deployments([DeploymentsWrite(deployed["fresh"], 9, [])])
    assert _refs(index, deployed_since="24h") == [deployed["stale"]]


def test_a_bad_duration_is_an_invalid_query(index: Fts5SearchIndex) -> None:
    from services.index.port import InvalidQuery

    with pytest.raises(InvalidQuery) as raised:
        index.search(SearchQuery(filters={"deployed_since": ["soon"]}))
    assert raised.value.parameter == "deployed_since"
