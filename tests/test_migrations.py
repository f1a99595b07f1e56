"""Each service's Alembic migrations build exactly the tables its models
describe, on SQLite and on the real PostgreSQL."""

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatvakt.db import make_engine
from chatvakt.migrations import migrations_dir, upgrade
from chatvakt.testing import postgres_available, postgres_database

SERVICES = ("queue", "chat", "coding", "escalation", "gateway")


def _metadata(service):
    package = "gateway" if service == "gateway" else f"services.{service}"
    return importlib.import_module(f"{package}.models").metadata


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_migrations(service):
    assert (migrations_dir(service) / "env.py").exists()
    assert list((migrations_dir(service) / "versions").glob("*.py"))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models(service, backend, tmp_path):
    if backend == "postgres":
        if not postgres_available():
            pytest.skip("PostgreSQL does not answer")
        url, drop = postgres_database()
    else:
        url, drop = f"sqlite:///{tmp_path / 'db.sqlite3'}", (lambda: None)
    engine = make_engine(url)
    try:
        metadata = _metadata(service)
        upgrade(service, engine, metadata)
        upgrade(service, engine, metadata)  # a second start changes nothing
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == [], f"{service}: models and migrations differ; run `chatvakt migrations new {service} ...`"
    finally:
        engine.dispose()
        drop()
