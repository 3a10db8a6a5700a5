"""/api/deployments and /api/pipelines refuse what they cannot answer with a 400 that names
the parameter, over a real (embedded) deployment store."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from search_api.deployments_api import create_deployments_api_router
from services.store.deployments_store import SqlDeploymentStore


@pytest.fixture
def client(tmp_path):
    store = SqlDeploymentStore(f"sqlite:///{tmp_path / 'deployments.db'}")
    store.create_schema()
    app = FastAPI()
    app.include_router(create_deployments_api_router(store))
    with TestClient(app) as client:
        yield client
    store.close()


@pytest.mark.parametrize("path", ["/api/deployments", "/api/pipelines"])
@pytest.mark.parametrize(
    ("params", "parameter", "says"),
    [
        ({"colour": "blue"}, "colour", "Unknown parameter 'colour'"),
        ({"entity": " "}, "entity", "needs a value"),
        ({"since": "yesterday-ish"}, "since", ""),
        ({"cursor": "not-a-cursor"}, "cursor", ""),
        ({"entity": "component:default/"}, "entity", ""),
    ],
)
def test_a_wrong_parameter_is_a_400_naming_it(client, path, params, parameter, says) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == parameter
    assert says in answer.json()["error"]


def test_pipelines_take_no_environment_and_both_list_nothing_yet(client) -> None:
    refused = client.get("/api/pipelines", params={"environment": "production"})
    assert refused.status_code == 400 and refused.json()["parameter"] == "environment"
    for path in ("/api/deployments", "/api/pipelines"):
        answer = client.get(path, params={"entity": "component:default/payments", "limit": 5})
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == []
