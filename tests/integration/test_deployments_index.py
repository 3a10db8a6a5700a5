"""The search index keeps each entity's environments beside its document: search filters
by them, hits carry them, they outlive changes and deletions of the entity, and a rebuild
(`cairn reindex`) or an empty index's fill keeps them. Both adapters (FTS5, OpenSearch)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from processors.deployments import project_deployments_to_index
from services.bus.port import LogRecord
from services.index.document import DeployedEnvironment, build_search_document
from services.index.fts5 import Fts5SearchIndex
from services.index.opensearch_index import OpenSearchIndex
from services.index.opensearch_mappings import MAPPINGS, index_settings
from services.index.port import (
    STORE_VERSION,
    DeploymentIndex,
    DeploymentsWrite,
    IndexWrite,
    InvalidQuery,
    RebuildableIndex,
    SearchQuery,
)
from services.index.reindex import fill_if_empty, reindex
from services.model.ci_events import DeploymentRecorded, EnvironmentState
from services.model.events import EntityChanged
from services.model.topics import DEPLOYMENTS
from services.store.deployments_store import SqlDeploymentStore
from services.store.port import VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.support import opensearch

NOW = time.time()
HOUR = 3600.0


@pytest.fixture
def index(search_index: RebuildableIndex) -> RebuildableIndex:
    if isinstance(search_index, OpenSearchIndex):
        search_index.settle_seconds = 0.1
    return search_index


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlCatalogStore]:
    store = SqlCatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def deployment_store(tmp_path: Path) -> Iterator[SqlDeploymentStore]:
    store = SqlDeploymentStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    store.create_schema()
    yield store
    store.close()


def _body(name: str, description: str) -> dict[str, Any]:
    return {
        "kind": "Component",
        "metadata": {"name": name, "description": description},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
    }


def _entity(index: Any, name: str, version: int = 1, description: str = "") -> str:
    ref = f"component:default/{name}"
    body = _body(name, description or f"{name} service")
    index.apply([IndexWrite(ref, version, build_search_document(ref, body, NOW))])
    return ref


def _stored_entity(store: SqlCatalogStore, index: Any, name: str, version: int) -> str:
    """An entity in the store and in the index, as both projections leave it."""
    ref = _entity(index, name, version)
    change = EntityChanged(
        ref=ref, location_id="l", location_target="t", entity=_body(name, f"{name} service")
    )
    store.apply_entity_changes([VersionedChange(ref=ref, version=version, change=change)])
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


def _state(environment: str, version: str, deployed_ago: float) -> EnvironmentState:
    at = datetime.fromtimestamp(NOW - deployed_ago, UTC)
    return EnvironmentState(
        environment=environment,
        version=version,
        deployed_at=at,
        deployment_id=f"d-{version}",
        last_status="success",
        last_version=version,
        last_at=at,
        last_deployment_id=f"d-{version}",
    )


def _refs(index: Any, **filters: str) -> list[str]:
    if isinstance(index, OpenSearchIndex):
        index.client.indices.refresh(index=index.alias)
    page = index.search(SearchQuery(filters={k: [v] for k, v in filters.items()}, sort="name"))
    return [hit.ref for hit in page.items]


def _running(index: Any, text: str) -> list[tuple[str, str | None]]:
    [hit] = index.search(SearchQuery(text=text)).items
    return [(d.environment, d.version) for d in hit.deployments]


@pytest.fixture
def deployed(index: Any) -> dict[str, str]:
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


def test_both_indexes_keep_deployments() -> None:
    assert issubclass(Fts5SearchIndex, DeploymentIndex)
    assert issubclass(OpenSearchIndex, DeploymentIndex)


def test_search_filters_by_environment_recency_and_outcome(
    index: Any, deployed: dict[str, str]
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


def test_deployment_filters_combine_with_text_facets_and_totals(
    index: Any, deployed: dict[str, str]
) -> None:
    _refs(index)  # searchable
    page = index.search(
        SearchQuery(text="service", filters={"deployed_to": ["production"], "owner": ["team-a"]})
    )
    assert page.total == 3
    assert {f.value: f.count for f in page.facets["owner"]} == {"group:default/team-a": 3}
    assert sorted(hit.ref for hit in page.items) == sorted(
        [deployed["broken"], deployed["fresh"], deployed["stale"]]
    )


def test_hits_carry_what_runs_where(index: Any, deployed: dict[str, str]) -> None:
    assert _running(index, "stale") == [("production", "v1"), ("staging", "v3")]
    assert _running(index, "never") == []


def test_environments_outlive_entity_changes_and_older_writes(
    index: Any, deployed: dict[str, str]
) -> None:
    _entity(index, "fresh", version=5, description="changed")
    [hit] = index.search(SearchQuery(text="fresh")).items
    assert hit.description == "changed" and hit.deployments[0].version == "v2"
    index.apply_deployments([DeploymentsWrite(deployed["fresh"], 0, [])])
    index.apply_deployments([DeploymentsWrite(deployed["fresh"], 1, [])])  # a repeat
    assert _refs(index, deployed_to="production", deployed_since="24h") == [deployed["fresh"]]
    index.apply_deployments([DeploymentsWrite(deployed["fresh"], 9, [])])
    assert _refs(index, deployed_since="24h") == [deployed["stale"]]


def test_environments_outlive_a_deletion_and_the_entity_coming_back(
    index: Any, deployed: dict[str, str]
) -> None:
    index.apply([IndexWrite(deployed["stale"], 6, None)])
    assert _refs(index, deployed_to="staging") == []  # no document, nothing to find
    _entity(index, "stale", version=7, description="back again")
    assert _refs(index, deployed_to="staging") == [deployed["stale"]]
    assert _running(index, "back again") == [("production", "v1"), ("staging", "v3")]


def test_a_bad_duration_is_an_invalid_query(index: Any) -> None:
    with pytest.raises(InvalidQuery) as raised:
        index.search(SearchQuery(filters={"deployed_since": ["soon"]}))
    assert raised.value.parameter == "deployed_since"


def test_reindex_keeps_deployments_and_fills_missing_ones_from_the_store(
    index: Any, store: SqlCatalogStore, deployment_store: SqlDeploymentStore
) -> None:
    projected = _stored_entity(store, index, "projected", 1)
    unprojected = _stored_entity(store, index, "unprojected", 2)
    index.apply_deployments([DeploymentsWrite(projected, 5, [_env("production", "v9", HOUR)])])
    # The store is behind the projection for one entity, and holds the only copy of the
    # other's environments (an index that lost them, or never had them).
    deployment_store.save_environment_state(projected, _state("production", "v8", 2 * HOUR))
    deployment_store.save_environment_state(unprojected, _state("staging", "v1", HOUR))
    deployment_store.save_environment_state(unprojected, _state("production", "v2", HOUR))

    result = reindex(store, index, deployments=deployment_store)

    assert (result.documents, result.deployments) == (2, 2)
    assert _refs(index, deployed_to="production") == [projected, unprojected]
    assert _refs(index, deployed_to="staging") == [unprojected]
    assert _running(index, "projected") == [("production", "v9")]
    assert _running(index, "unprojected") == [("production", "v2"), ("staging", "v1")]
    # What the store filled in gives way to the projection's next write, not the reverse.
    index.apply_deployments([DeploymentsWrite(unprojected, 0, [])])
    index.apply_deployments([DeploymentsWrite(projected, STORE_VERSION, [])])
    assert _refs(index, deployed_to="production") == [projected]


def test_an_empty_index_is_filled_with_the_stores_deployments(
    index: Any, store: SqlCatalogStore, deployment_store: SqlDeploymentStore
) -> None:
    ref = "component:default/svc"
    change = EntityChanged(
        ref=ref, location_id="l", location_target="t", entity=_body("svc", "svc service")
    )
    store.apply_entity_changes([VersionedChange(ref=ref, version=3, change=change)])
    deployment_store.save_environment_state(ref, _state("production", "v4", HOUR))
    assert fill_if_empty(store, index, deployments=deployment_store) == 1
    assert _refs(index, deployed_to="production", deployed_since="2h") == [ref]
    assert _running(index, "svc") == [("production", "v4")]


def test_an_opensearch_index_of_the_first_mapping_takes_deployments_and_reindex_upgrades_it(
    store: SqlCatalogStore, deployment_store: SqlDeploymentStore
) -> None:
    """Cairn upgraded over an index made before deployments were kept: writes go on being
    accepted (the new fields are added in place) and `cairn reindex` makes every entity
    filterable by its deployments."""
    url, alias = opensearch.server_url(), opensearch.fresh_alias()
    properties = {
        k: v for k, v in MAPPINGS["properties"].items() if k not in ("relation", "environments")
    }
    old_mapping = {**MAPPINGS, "_meta": {"mapping_version": 1}, "properties": properties}
    index = OpenSearchIndex(url, alias, refresh="true", settle_seconds=0.1)
    try:
        index.client.indices.create(
            index=f"{alias}-v1-initial",
            body={
                "settings": index_settings("1s"),
                "mappings": old_mapping,
                "aliases": {alias: {}, f"{alias}-write": {}},
            },
        )
        # A document the first mapping's Cairn wrote (no join field).
        old = _body("old", "old service")
        source = {
            k: v for k, v in _source_of("component:default/old", old).items() if k != "relation"
        }
        index.client.index(
            index=alias,
            id="component:default/old",
            body=source,
            params={"version": 1, "version_type": "external", "refresh": "true"},
        )
        store.apply_entity_changes(
            [
                VersionedChange(
                    ref="component:default/old",
                    version=1,
                    change=EntityChanged(
                        ref="component:default/old",
                        location_id="l",
                        location_target="t",
                        entity=old,
                    ),
                )
            ]
        )
        new = _stored_entity(store, index, "new", 2)  # ensure_ready added the new fields
        index.apply_deployments([DeploymentsWrite(new, 4, [_env("production", "v1", HOUR)])])
        deployment_store.save_environment_state(
            "component:default/old", _state("production", "v0", HOUR)
        )
        assert _refs(index, deployed_to="production") == [new]

        reindex(store, index, deployments=deployment_store)

        assert index.aliased(alias)[0].startswith(f"{alias}-v2-")
        assert _refs(index, deployed_to="production") == [new, "component:default/old"]
        assert _running(index, "old") == [("production", "v0")]
    finally:
        index.close()
        opensearch.drop(url, alias)


def _source_of(ref: str, body: dict[str, Any]) -> dict[str, Any]:
    from services.index.opensearch_index import document_source

    return document_source(build_search_document(ref, body, NOW))


def test_the_projection_applies_the_stores_states_not_the_records_own(
    index: Any, deployment_store: SqlDeploymentStore
) -> None:
    """Two processors can publish one entity's updates in another order than they derived
    them: the later record (higher offset) may carry the older states. Applied, each record
    writes what the store holds now, so the index ends with the newest either way."""
    ref = _entity(index, "reordered")
    older = DeploymentRecorded(ref=ref, environments=[_state("production", "v1", 2 * HOUR)])
    deployment_store.save_environment_state(ref, _state("production", "v2", HOUR))
    records = [LogRecord(DEPLOYMENTS.name, 0, 7, ref, older.model_dump_json().encode(), NOW)]
    project_deployments_to_index(index, records, deployment_store.environment_states)
    assert _running(index, "reordered") == [("production", "v2")]
