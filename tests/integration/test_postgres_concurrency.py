"""The store under concurrent writers on PostgreSQL: several processors share the work, and
during a rebalance two of them may handle the same repository or entity at once.

The interleavings are forced, not hoped for: a writer is held inside its transaction until
PostgreSQL shows the other one waiting on a lock (pg_stat_activity), then let go.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy import make_url

from services.model.catalog import DesiredLocation, OwnershipPlan, location_id, ref_key
from services.model.events import EntityChanged, Repository
from services.store.port import VersionedChange
from services.store.sql_store import SqlCatalogStore
from tests.integration.conftest import unique
from tests.support import postgres

WAIT_SECONDS = 20.0


@pytest.fixture
def database(postgres_server: str) -> Iterator[str]:
    with postgres.fresh_database(migrated=True) as url:
        yield url


@pytest.fixture
def store(database: str) -> Iterator[SqlCatalogStore]:
    store = SqlCatalogStore(database)
    store.create_schema()
    yield store
    store.close()


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
    )


def wait_for_lock_waiters(url: str, count: int) -> None:
    """Return once `count` sessions of this database are waiting on a lock."""
    database = make_url(url).database
    deadline = time.monotonic() + WAIT_SECONDS
    with _connect(url) as watcher:
        watcher.autocommit = True
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            ).fetchone()
            if row is not None and int(str(row[0])) >= count:
                return
            time.sleep(0.01)
    raise AssertionError(f"no {count} session(s) waited on a lock within {WAIT_SECONDS} s")


def _repo(name: str) -> Repository:
    return Repository(
        host="github.com",
        owner="acme",
        name=name,
        clone_url=f"https://github.com/acme/{name}.git",
        html_url=f"https://github.com/acme/{name}",
    )


def _location(repo: Repository, refs: dict[str, str]) -> DesiredLocation:
    target = f"{repo.html_url}/blob/main/catalog-info.yaml"
    return DesiredLocation(location_id(target), "catalog-info.yaml", target, refs, [])


def _conflicts(store: SqlCatalogStore, location: DesiredLocation) -> list[str]:
    [record] = [x for x in store.list_locations() if x.id == location.id]
    return [e.entity_ref or "" for e in record.errors if e.code == "conflict"]


def _owners(url: str, ref: str) -> list[str]:
    with _connect(url) as connection:
        rows = connection.execute(
            "SELECT location_id FROM owners WHERE ref_key = %s", (ref_key(ref),)
        ).fetchall()
    return [str(row[0]) for row in rows]


def test_two_repositories_claiming_one_entity_at_once_leave_one_owner_and_one_conflict(
    store: SqlCatalogStore, database: str
) -> None:
    first, second = _repo(unique("first")), _repo(unique("second"))
    shared = f"component:default/{unique('shared')}"
    loc_first, loc_second = _location(first, {shared: "e1"}), _location(second, {shared: "e2"})
    plans: dict[str, list[OwnershipPlan]] = {"first": [], "second": []}
    first_inside = threading.Event()

    def emit_first(plan: OwnershipPlan) -> None:
        plans["first"].append(plan)
        first_inside.set()
        # Hold this transaction open until the second reconcile is blocked behind it.
        wait_for_lock_waiters(database, 1)

    def reconcile_second() -> OwnershipPlan:
        assert first_inside.wait(WAIT_SECONDS)
        return store.reconcile_repository(
            second, "active", "c2", [loc_second], set(), plans["second"].append
        )

    with ThreadPoolExecutor(2) as pool:
        done_first = pool.submit(
            store.reconcile_repository, first, "active", "c1", [loc_first], set(), emit_first
        )
        done_second = pool.submit(reconcile_second)
        plan_first, plan_second = done_first.result(), done_second.result()

    assert list(plan_first.upserts) == [shared]
    assert plan_second.upserts == {} and shared in str(plan_second.conflicts)
    # The losing attempt published nothing: only its final, conflicting plan was emitted.
    assert plans["second"] == [plan_second]
    assert _owners(database, shared) == [loc_first.id]
    assert _conflicts(store, loc_second) == [shared]
    assert _conflicts(store, loc_first) == []


def _race_two_repositories_for_one_entity(store: SqlCatalogStore, database: str) -> None:
    repos = [_repo(unique("racer")) for _ in range(2)]
    shared = f"component:default/{unique('contested')}"
    locations = [_location(repo, {shared: repo.name}) for repo in repos]
    start = threading.Barrier(2)

    def claim(index: int) -> OwnershipPlan:
        start.wait(WAIT_SECONDS)
        return store.reconcile_repository(
            repos[index], "active", "c", [locations[index]], set(), lambda _plan: None
        )

    with ThreadPoolExecutor(2) as pool:
        outcome = list(pool.map(claim, range(2)))

    winners = [i for i, plan in enumerate(outcome) if plan.upserts]
    assert len(winners) == 1, outcome
    winner, loser = locations[winners[0]], locations[1 - winners[0]]
    assert _owners(database, shared) == [winner.id]
    assert _conflicts(store, loser) == [shared]
    assert _conflicts(store, winner) == []


def test_racing_claims_always_end_with_exactly_one_owner_and_one_conflict(
    store: SqlCatalogStore, database: str
) -> None:
    for _ in range(8):
        _race_two_repositories_for_one_entity(store, database)


def _change(ref: str, version: int) -> VersionedChange:
    name = ref.rpartition("/")[2]
    owner = f"team-v{version}"
    change = EntityChanged(
        ref=ref,
        location_id="loc",
        location_target="https://github.com/acme/x/blob/main/catalog-info.yaml",
        entity={
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": name, "namespace": "default", "description": f"v{version}"},
            "spec": {"type": "service", "lifecycle": "production", "owner": owner},
        },
        relations=[
            {"source_ref": ref, "type": "ownedBy", "target_ref": f"group:default/{owner}"},
        ],
    )
    return VersionedChange(ref, version, change)


def _assert_holds_version(store: SqlCatalogStore, database: str, ref: str, version: int) -> None:
    entity = store.get_entity(ref)
    assert entity is not None and entity.version == version
    assert entity.body["metadata"]["description"] == f"v{version}"
    assert [r.target_ref for r in entity.relations] == [f"group:default/team-v{version}"]
    with _connect(database) as connection:
        described = connection.execute(
            "SELECT value FROM entity_search WHERE ref_key = %s AND key = 'metadata.description'",
            (ref_key(ref),),
        ).fetchall()
    assert [row[0] for row in described] == [f"v{version}"]


def _in_thread(action: Callable[[], object]) -> threading.Thread:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # surfaced by the join below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def _write_in_turn_behind(
    holder: psycopg.Connection[tuple[object, ...]],
    store: SqlCatalogStore,
    database: str,
    ref: str,
    versions: Sequence[int],
) -> None:
    """Start a writer of each version in turn, each once the ones before wait on a lock
    the holder keeps; then release it and wait for every writer to finish without error."""
    threads = []
    for waiting, version in enumerate(versions, start=1):
        change = _change(ref, version)
        threads.append(_in_thread(lambda change=change: store.apply_entity_changes([change])))
        wait_for_lock_waiters(database, waiting)
    holder.rollback()
    for thread in threads:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive() and thread.errors == []  # type: ignore[attr-defined]


def test_an_older_change_committed_after_a_newer_one_changes_nothing(
    store: SqlCatalogStore, database: str
) -> None:
    ref = f"component:default/{unique('svc')}"
    store.apply_entity_changes([_change(ref, 5)])
    # Hold the entity's row so both writers read version 5 and then queue behind the lock:
    # the newer one first, the older one second.
    with _connect(database) as holder:
        holder.execute("SELECT 1 FROM entities WHERE ref_key = %s FOR UPDATE", (ref_key(ref),))
        _write_in_turn_behind(holder, store, database, ref, [9, 7])
    _assert_holds_version(store, database, ref, 9)


def test_a_new_entity_written_by_two_writers_at_once_keeps_only_the_newest_rows(
    store: SqlCatalogStore, database: str
) -> None:
    """Both writers see the ref absent, so only the upsert can tell the second one that the
    first has meanwhile written rows to replace."""
    ref = f"component:default/{unique('svc')}"
    key = ref_key(ref)
    older_owner = "group:default/team-v5"
    with _connect(database) as holder:
        # Hold the older writer after it inserted the entity row, before its relation row.
        holder.execute(
            "INSERT INTO relations (origin_key, source_key, type, target_key, source_ref, "
            "target_ref) VALUES (%s, %s, 'ownedBy', %s, %s, %s)",
            (key, key, ref_key(older_owner), ref, older_owner),
        )
        # The older writer waits on that row; the newer one reads no row for the ref and
        # queues behind the older one's insert.
        _write_in_turn_behind(holder, store, database, ref, [5, 9])
    _assert_holds_version(store, database, ref, 9)


def test_concurrent_batches_over_the_same_entities_keep_the_newest_of_each(
    store: SqlCatalogStore, database: str
) -> None:
    refs = [f"component:default/{unique('svc')}" for _ in range(40)]
    writers, rounds = 4, 3
    versions = {ref: random.sample(range(1, 1000), writers * rounds) for ref in refs}
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        start.wait(WAIT_SECONDS)
        for turn in range(rounds):
            batch = [_change(ref, versions[ref][writer * rounds + turn]) for ref in refs]
            random.shuffle(batch)  # every writer locks the rows in its own order
            store.apply_entity_changes(batch)

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))

    for ref in refs:
        _assert_holds_version(store, database, ref, max(versions[ref]))
