"""The PostgreSQL store's schema comes from Alembic migrations, and they match tables.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.cli import main
from services.store import schema
from services.store.port import StoreUnavailable
from services.store.sql_store import SqlCatalogStore
from services.store.tables import Base
from tests.support import postgres

HOW_TO_FIX = (
    "services/store/tables.py and the migrations disagree. Add a migration under "
    "services/store/migrations/versions/ (the next revision after the current head, "
    "written like 0001_initial.py with op.create_table / op.add_column) that makes the "
    "database match tables.py. Differences:\n  "
)


@pytest.fixture
def empty_database(postgres_server: str) -> Iterator[str]:
    with postgres.fresh_database() as url:
        yield url


def test_migrating_an_empty_database_gives_exactly_the_tables_the_code_declares(
    empty_database: str,
) -> None:
    assert schema.current_revision(empty_database) is None
    assert schema.upgrade(empty_database) == schema.head_revision()
    differences = schema.differences(empty_database)
    assert not differences, HOW_TO_FIX + "\n  ".join(differences)


def test_the_migrations_also_build_the_declared_schema_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    assert schema.upgrade(url) == schema.head_revision()
    differences = schema.differences(url)
    assert not differences, HOW_TO_FIX + "\n  ".join(differences)


def test_a_table_declared_without_a_migration_is_reported(empty_database: str) -> None:
    schema.upgrade(empty_database)
    extra = sa.Table(
        "unmigrated_things", Base.metadata, sa.Column("id", sa.Integer, primary_key=True)
    )
    try:
        assert "add_table unmigrated_things" in schema.differences(empty_database)
    finally:
        Base.metadata.remove(extra)


def test_processes_starting_together_migrate_the_database_once(empty_database: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        revisions = list(pool.map(lambda _: schema.upgrade(empty_database), range(4)))
    assert revisions == [schema.head_revision()] * 4
    assert schema.differences(empty_database) == []


def test_the_store_migrates_its_postgres_database_when_it_starts(empty_database: str) -> None:
    store = SqlCatalogStore(empty_database)
    try:
        store.create_schema()
        assert store.count_entities() == 0
    finally:
        store.close()
    assert schema.current_revision(empty_database) == schema.head_revision()


def test_cairn_db_upgrade_migrates_and_cairn_db_current_reports_head(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAIRN_DATABASE_URL", empty_database)
    head = schema.head_revision()
    assert main(["db", "current"]) == 1
    assert f"none (head is {head}: run `cairn db upgrade`)" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"upgraded from an empty schema to {head} (head)" in out
    assert ":***@" in out and "cairn:cairn@" not in out  # the password is never printed
    assert main(["db", "upgrade"]) == 0
    assert f"already at {head} (head)" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == f"{head} (head)"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_one_clear_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql+psycopg://cairn:s3cret@127.0.0.1:{_closed_port()}/cairn"
    store = SqlCatalogStore(url)
    with pytest.raises(StoreUnavailable) as caught:
        store.count_entities()
    store.close()
    message = str(caught.value)
    assert "127.0.0.1" in message and "CAIRN_DATABASE_URL" in message
    assert "s3cret" not in message
    monkeypatch.setenv("CAIRN_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cairn: The catalog store's database at") and "s3cret" not in err


def test_a_database_migrated_by_a_newer_cairn_is_refused_with_the_reason(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    schema.upgrade(empty_database)
    engine = sa.create_engine(empty_database)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ValueError, match="schema revision 9999, which this version of Cairn"):
        schema.upgrade(empty_database)
    monkeypatch.setenv("CAIRN_DATABASE_URL", empty_database)
    assert main(["db", "upgrade"]) == 2
    assert "a newer Cairn migrated it" in capsys.readouterr().err
    assert main(["db", "current"]) == 1
    assert capsys.readouterr().out.startswith("9999 (unknown to this Cairn")
