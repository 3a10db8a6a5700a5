"""Tokens and scopes of the catalog API, location targets, in Backstage's error shape."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from search_api.backstage_auth import TokenAuth, is_loopback
from search_api.backstage_errors import InputError
from search_api.backstage_locations import parse_target
from search_api.catalog_api import BackstageRoute
from services.settings import ApiSettings


def _app(auth: TokenAuth) -> TestClient:
    router = APIRouter(route_class=BackstageRoute)

    @router.get("/read", dependencies=[Depends(auth.dependency("read"))])
    def read() -> dict[str, str]:
        return {"ok": "read"}

    @router.post("/write", dependencies=[Depends(auth.dependency("admin"))])
    def write() -> dict[str, str]:
        return {"ok": "write"}

    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_tokens_are_token_colon_scope_pairs() -> None:
    settings = ApiSettings(api_tokens="r1:read, a1:admin")  # type: ignore[arg-type]
    assert settings.tokens() == {"r1": "read", "a1": "admin"}
    assert ApiSettings().tokens() == {}
    with pytest.raises(ValueError, match="entry 2 is not <token>:<scope>") as caught:
        ApiSettings(api_tokens="r1:read,hunter2x:write").tokens()  # type: ignore[arg-type]
    assert "hunter2x" not in str(caught.value)


def test_reads_need_a_token_and_writes_an_admin_token() -> None:
    client = _app(TokenAuth({"r": "read", "a": "admin"}))
    missing = client.get("/read")
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {
            "name": "AuthenticationError",
            "message": "Missing credentials: send an Authorization: Bearer <token> header.",
        },
        "request": {"method": "GET", "url": "/read"},
        "response": {"statusCode": 401},
    }
    assert client.get("/read", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/read", headers={"Authorization": "Bearer r"}).status_code == 200
    assert client.get("/read", headers={"Authorization": "bearer a"}).status_code == 200
    forbidden = client.post("/write", headers={"Authorization": "Bearer r"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["name"] == "NotAllowedError"
    assert client.post("/write", headers={"Authorization": "Bearer a"}).status_code == 200


def test_without_tokens_only_loopback_clients_are_answered() -> None:
    client = _app(TokenAuth({}))
    assert client.get("/read").status_code == 200  # the test client counts as local
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.0.0.8")
    assert not is_loopback(None)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "https://github.com/acme/app/blob/main/docs/catalog-info.yaml",
            (
                "github.com",
                "acme",
                "app",
                "https://github.com/acme/app.git",
                "main",
                "docs/catalog-info.yaml",
            ),
        ),
        (
            "https://github.com/acme/app",
            ("github.com", "acme", "app", "https://github.com/acme/app.git", None, None),
        ),
        (
            "https://github.com/acme/app.git",
            ("github.com", "acme", "app", "https://github.com/acme/app.git", None, None),
        ),
        (
            "https://gitlab.example.com/group/sub/app/-/blob/dev/catalog-info.yaml",
            (
                "gitlab.example.com",
                "group/sub",
                "app",
                "https://gitlab.example.com/group/sub/app.git",
                "dev",
                "catalog-info.yaml",
            ),
        ),
        (
            "https://github.com/acme/app/tree/main/services",
            ("github.com", "acme", "app", "https://github.com/acme/app.git", "main", None),
        ),
        (
            "file:///srv/git/acme/app.git",
            ("file", "acme", "app", "file:///srv/git/acme/app.git", None, None),
        ),
    ],
)
def test_location_targets_name_a_repository_and_maybe_a_file(target: str, expected: tuple) -> None:
    parsed = parse_target(target)
    assert (
        parsed.host,
        parsed.owner,
        parsed.name,
        parsed.clone_url,
        parsed.branch,
        parsed.path,
    ) == expected


@pytest.mark.parametrize("target", ["https://github.com/acme", "ftp://x/a/b", "not a url"])
def test_targets_that_name_no_repository_are_refused(target: str) -> None:
    with pytest.raises(InputError):
        parse_target(target)
