"""Fresh PostgreSQL databases on the stack's server, one per test (or per Cairn process).

`CAIRN_TEST_DATABASE_URL` points at the server `deploy/local/stack up postgres` started
(`make test` exports it). Its role may create databases, so each test gets a database of its
own, copied from a template that already holds the migrated schema: a copy costs about as
much as an empty `CREATE DATABASE`, and the test never shares rows with another.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import make_url

ENV = "CAIRN_TEST_DATABASE_URL"

_template_lock = threading.Lock()
_templates: dict[str, str] = {}


def server_url() -> str:
    """The stack's PostgreSQL URL; fails the test (never skips) when it is not set."""
    url = os.environ.get(ENV)
    if not url:
        pytest.fail(
            f"{ENV} is not set: run the tests with `make test`, or start PostgreSQL with "
            f"`deploy/local/stack up postgres` and export its CAIRN_DATABASE_URL as {ENV}.",
            pytrace=False,
        )
    return url


def with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        autocommit=True,
    )


def _migrated_template(url: str) -> str:
    """A database at the head migration, made once per server and test session."""
    from services.store import schema

    with _template_lock:
        if url not in _templates:
            name = f"cairn_tpl_{uuid.uuid4().hex[:12]}"
            with _admin(url) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            schema.upgrade(with_database(url, name))
            if not _templates:  # whichever suite made it, it goes when the session ends
                atexit.register(drop_templates)
            _templates[url] = name
        return _templates[url]


@contextmanager
def fresh_database(migrated: bool = False, icu_locale: str | None = None) -> Iterator[str]:
    """Create an empty (or, with `migrated`, an already migrated) database; drop it after.

    `icu_locale` (e.g. "en-US") gives the database that default collation instead of the
    server's. Yields the database's SQLAlchemy URL.
    """
    url = server_url()
    name = f"cairn_test_{uuid.uuid4().hex[:12]}"
    template = _migrated_template(url) if migrated else "template0"
    collation = f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'" if icu_locale else ""
    with _admin(url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{collation}')
    try:
        yield with_database(url, name)
    finally:
        drop_database(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop a test database, even with sessions left in it.

    A plain DROP ends autovacuum workers itself; FORCE also ends our own leftover sessions
    but refuses (without superuser rights) while autovacuum works there, so try both.
    """
    deadline = time.monotonic() + 30
    with _admin(url) as admin:
        while True:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                pass
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


def drop_templates() -> None:
    """Drop the template databases this session made (called once, at the session's end)."""
    with _template_lock:
        for url, name in list(_templates.items()):
            drop_database(url, name)
            del _templates[url]
