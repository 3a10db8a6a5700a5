"""A catalog file's web address is spelled the way its host spells it."""

from __future__ import annotations

import pytest

from services.model.events import Repository


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("github", "https://h/acme/x/blob/main/a/catalog-info.yaml"),
        ("gitlab", "https://h/acme/x/-/blob/main/a/catalog-info.yaml"),
        ("gitea", "https://h/acme/x/src/branch/main/a/catalog-info.yaml"),
        ("bitbucket", "https://h/acme/x/src/main/a/catalog-info.yaml"),
    ],
)
def test_file_urls_follow_the_host(provider: str, expected: str) -> None:
    repo = Repository(
        host="h",
        owner="acme",
        name="x",
        clone_url="https://h/acme/x.git",
        html_url="https://h/acme/x/",
        provider=provider,
    )  # type: ignore[arg-type]
    assert repo.file_url("a/catalog-info.yaml") == expected
