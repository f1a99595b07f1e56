"""Test helpers for domain code: a real database (SQLite file, or the
PostgreSQL named by CHATVAKT_TEST_PG) and an outbox that records what the
code would publish."""

import secrets
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypedDict

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

from chatvakt import config
from chatvakt.db import make_engine
from chatvakt.migrations import upgrade

PG_ADMIN_URL = config.test_pg_admin_url()


class RecordingOutbox:
    def __init__(self):
        self.events = []

    def add(self, session, name, payload):
        self.events.append((name, payload))

    def names(self):
        return [name for name, _ in self.events]


# Which database domain tests run on; services/conftest.py runs every test that
# uses a `db` fixture once on SQLite and once on the real PostgreSQL.
class Backend(TypedDict):
    name: str
    cleanups: list[Callable[[], None]]


BACKEND: Backend = {"name": "sqlite", "cleanups": []}


def sqlite_sessions(tmp_path, service, metadata):
    """A migrated database for one service's domain tests: SQLite, or a
    throw-away PostgreSQL database when the test runs on that backend."""
    if BACKEND["name"] == "postgres":
        url, empty = kept_postgres(service, metadata)
        engine = make_engine(url)

        def cleanup():
            engine.dispose()
            empty()

        BACKEND["cleanups"].append(cleanup)
    else:
        path = tmp_path / (service + ".sqlite3")
        if not path.exists():  # a second engine on it is a second replica
            shutil.copyfile(_migrated_sqlite(service, metadata), path)
        engine = make_engine(f"sqlite:///{path}")
    return engine, sessionmaker(bind=engine, expire_on_commit=False)


# Per service, one migrated SQLite file for the run that each test copies:
# migrating took a tenth of a second a test.
_templates: dict[str, Path] = {}


def _migrated_sqlite(service, metadata):
    if service not in _templates:
        path = Path(tempfile.mkdtemp(prefix="chatvakt-test-")) / f"{service}.sqlite3"
        engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
        upgrade(service, engine, metadata)
        engine.dispose()
        _templates[service] = path
    return _templates[service]


# Per service, one migrated PostgreSQL database for the whole run, emptied
# after each test: creating, migrating and dropping one per test took about
# three seconds each, most of `make unit`'s time.
_kept: dict[str, tuple] = {}


def kept_postgres(service, metadata):
    """(url, empty) of this run's database for `service`; empty() leaves it as
    a fresh one: no rows, every sequence from its start."""
    if service not in _kept:
        url, drop = postgres_database()
        engine = make_engine(url)
        upgrade(service, engine, metadata)
        engine.dispose()
        _kept[service] = (url, drop, create_engine(url, pool_size=1))
    url, _drop, keeper = _kept[service]
    quote = keeper.dialect.identifier_preparer.quote
    # One round trip: a statement each took 70 ms a test.
    emptying = text(
        "DO $$DECLARE s text; BEGIN PERFORM set_config('lock_timeout', '5s', true); "
        + " ".join(f"DELETE FROM {quote(table.name)};" for table in reversed(metadata.sorted_tables))
        + " FOR s IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        " LOOP EXECUTE format('ALTER SEQUENCE %I RESTART', s); END LOOP; END$$"
    )

    def empty():
        try:
            with keeper.begin() as conn:
                conn.execute(emptying)
        except Exception:  # noqa: BLE001 - a test left a transaction open: the next gets a new database
            _drop_one(_kept.pop(service))

    return url, empty


def _drop_one(kept):
    _url, drop, keeper = kept
    keeper.dispose()
    drop()


def drop_kept():
    """Drop this run's kept databases and templates (at the end of the session)."""
    # At once: PostgreSQL lets concurrent drops share one checkpoint (10x faster).
    with ThreadPoolExecutor(max(1, len(_kept))) as pool:
        list(pool.map(_drop_one, _kept.values()))
    _kept.clear()
    while _templates:
        shutil.rmtree(_templates.popitem()[1].parent, ignore_errors=True)


def _admin_engine():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def postgres_database():
    """Create a throw-away PostgreSQL database; returns (url, drop)."""
    name = f"chatvakt_test_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def drop():
        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return url, drop


def postgres_available():
    try:
        engine = make_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def run(sessions, fn, *args, **kwargs):
    """Run a domain function as a service's unit does; returns (result, recorded outbox)."""
    outbox = RecordingOutbox()
    with sessions() as session, session.begin():
        result = fn(session, outbox, *args, **kwargs)
    return result, outbox


def read(sessions, fn, *args, **kwargs):
    with sessions() as session:
        return fn(session, *args, **kwargs)
