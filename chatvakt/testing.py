"""Test helpers for domain code: a real database (SQLite file, or the
PostgreSQL named by CHATVAKT_TEST_PG) and an outbox that records what the
code would publish."""
import secrets
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
        url, drop = postgres_database()
        engine = make_engine(url)

        def cleanup():
            engine.dispose()
            drop()

        BACKEND["cleanups"].append(cleanup)
    else:
        engine = make_engine(f"sqlite:///{tmp_path / (service + '.sqlite3')}")
    upgrade(service, engine, metadata)
    return engine, sessionmaker(bind=engine, expire_on_commit=False)


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
