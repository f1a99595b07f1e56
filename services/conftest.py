"""Every domain test that uses a `db` fixture runs on SQLite and on the real
PostgreSQL (skipped with a reason only where no PostgreSQL answers)."""

import functools
import importlib

import pytest

from chatvakt import testing


def pytest_generate_tests(metafunc):
    if "db" in metafunc.fixturenames:
        metafunc.parametrize("db_backend", ["sqlite", "postgres"], indirect=True)


@functools.cache
def _postgres_answers():
    return testing.postgres_available()


@pytest.fixture(autouse=True)
def db_backend(request):
    # autouse: set up before the test's own `db` fixture.
    backend = getattr(request, "param", "sqlite")
    if backend == "postgres" and not _postgres_answers():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    testing.BACKEND["name"] = backend
    yield backend
    testing.BACKEND["name"] = "sqlite"
    while testing.BACKEND["cleanups"]:
        testing.BACKEND["cleanups"].pop()()


@pytest.fixture(scope="session", autouse=True)
def kept_databases():
    yield
    testing.drop_kept()


@pytest.fixture
def db(request, tmp_path):
    """The migrated database of the service whose tests ask for it
    (services/<service>/tests/...), on the backend of `db_backend`."""
    service = request.module.__name__.split(".")[1]
    metadata = importlib.import_module(f"services.{service}.models").metadata
    engine, sessions = testing.sqlite_sessions(tmp_path, service, metadata)
    yield sessions
    engine.dispose()
