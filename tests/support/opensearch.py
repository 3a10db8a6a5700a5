"""Fresh OpenSearch indexes on the stack's cluster, one alias per test.

`CAIRN_TEST_OPENSEARCH_URL` points at the cluster `deploy/local/stack up opensearch` started
(`make test` exports it). Each test gets an alias (and physical indexes, and a template) of
its own, removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from services.index.opensearch_index import OpenSearchIndex, Refresh

ENV = "CAIRN_TEST_OPENSEARCH_URL"
STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack"


def server_url() -> str:
    """The stack's OpenSearch URL; fails the test (never skips) when it is not set."""
    url = os.environ.get(ENV)
    if not url:
        pytest.fail(
            f"{ENV} is not set: run the tests with `make test`, or start OpenSearch with "
            f"`deploy/local/stack up opensearch` and export its CAIRN_OPENSEARCH_URL as {ENV}.",
            pytrace=False,
        )
    return url


def fresh_alias() -> str:
    return f"cairn-test-{uuid.uuid4().hex[:10]}"


def drop(url: str, alias: str) -> None:
    client = OpenSearch(hosts=[url], timeout=30)
    try:
        client.indices.delete(index=f"{alias}-v*", params={"ignore_unavailable": "true"})
        client.indices.delete_index_template(name=f"{alias}-template", ignore=[404])
    finally:
        client.close()


@contextmanager
def fresh_index(refresh: Refresh = "true", **options: object) -> Iterator[OpenSearchIndex]:
    """An OpenSearch index of its own; writes are searchable when `apply` returns."""
    url = server_url()
    alias = fresh_alias()
    index = OpenSearchIndex(url, alias, refresh=refresh, **options)  # type: ignore[arg-type]
    try:
        index.ensure_ready()
        yield index
    finally:
        index.close()
        drop(url, alias)


def stack(*args: str) -> None:
    """Run `deploy/local/stack` (on the state dir of the stack that started the cluster)."""
    subprocess.run(
        [str(STACK), *args], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
