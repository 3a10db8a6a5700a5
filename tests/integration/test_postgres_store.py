"""What the PostgreSQL store does that the contract suite cannot show on the stack's server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.model.catalog import DesiredLocation, location_id
from services.model.events import EntityChanged, Repository
from services.store.port import StoreUnavailable, VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.support import postgres

STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack"

# Byte order puts "-" < "." < "_" < letters; a natural-language collation ignores the
# punctuation first, so these would come out as a_b, a-c, a.z, aa, ab.
NAMES = ["a-c", "ab", "a_b", "aa", "a.z"]


@pytest.fixture
def english_store(postgres_server: str) -> Iterator[SqlCatalogStore]:
    with postgres.fresh_database(icu_locale="en-US") as url:
        store = SqlCatalogStore(url)
        store.create_schema()
        yield store
        store.close()


def _change(ref: str) -> EntityChanged:
    name = ref.rpartition("/")[2]
    return EntityChanged(
        ref=ref,
        location_id="loc",
        location_target="https://github.com/acme/x/blob/main/catalog-info.yaml",
        entity={"kind": "Component", "metadata": {"name": name, "namespace": "default"}},
    )


def test_refs_and_locations_sort_byte_by_byte_whatever_the_database_locale(
    english_store: SqlCatalogStore,
) -> None:
    refs = [f"component:default/{name}" for name in NAMES]
    english_store.apply_entity_changes([VersionedChange(ref, 1, _change(ref)) for ref in refs])
    assert [e.ref for e in english_store.iter_entities(batch_size=2)] == sorted(refs)

    for name in NAMES:
        repo = Repository(
            host="github.com",
            owner="acme",
            name=name,
            clone_url=f"https://github.com/acme/{name}.git",
            html_url=f"https://github.com/acme/{name}",
        )
        target = f"{repo.html_url}/blob/main/catalog-info.yaml"
        location = DesiredLocation(location_id(target), "catalog-info.yaml", target, {}, [])
        english_store.reconcile_repository(repo, "active", "c", [location], set(), lambda p: None)
    targets = [x.target for x in english_store.list_locations()]
    assert targets == sorted(targets) and len(targets) == len(NAMES)
    keys = [r.key for r in english_store.list_repositories()]
    assert keys == sorted(keys) and len(keys) == len(NAMES)


def _stack(*args: str) -> str:
    done = subprocess.run(
        [str(STACK), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"stack {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def test_a_database_that_goes_away_is_reported_and_used_again_once_back(
    postgres_server: str,
) -> None:
    # Only stop the server the tests were pointed at (CAIRN_STACK_DIR names its stack).
    server_line = f"CAIRN_DATABASE_URL={postgres_server}"
    assert server_line in _stack("env").splitlines(), (
        "CAIRN_TEST_DATABASE_URL is not the PostgreSQL of the stack in CAIRN_STACK_DIR; "
        "this test stops and starts that server, so they must agree."
    )
    with postgres.fresh_database(migrated=True) as url:
        store = SqlCatalogStore(url)
        try:
            ref = "component:default/survivor"
            store.apply_entity_changes([VersionedChange(ref, 1, _change(ref))])
            _stack("stop", "postgres")
            try:
                with pytest.raises(StoreUnavailable) as caught:
                    store.count_entities()
                assert "CAIRN_DATABASE_URL" in str(caught.value)
                assert ":***@" in str(caught.value) and "cairn:cairn@" not in str(caught.value)
            finally:
                _stack("start", "postgres")
            # The pool's connections died with the server; pre-ping replaces them.
            assert store.count_entities() == 1
            assert store.get_entity(ref) is not None
        finally:
            store.close()
