"""Bring a service's database schema up to date at start.

Services with Alembic migrations (services/<name>/migrations/) are upgraded
to head; a service without them gets `create_all`, which only adds what is
missing. Both are safe to run from several replicas starting at once.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def migrations_dir(service):
    if service == "gateway":
        return ROOT / "gateway" / "migrations"
    return ROOT / "services" / service / "migrations"


def alembic_config(service):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    return cfg


def upgrade(service, engine, metadata):
    folder = migrations_dir(service)
    if not list((folder / "versions").glob("*.py")):
        metadata.create_all(engine)
        return
    from alembic import command

    cfg = alembic_config(service)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait for it.
            # (On SQLite, BEGIN IMMEDIATE already serialises them.)
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_lock_key(service)})")
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def _lock_key(service):
    return 7_300_000 + sum(ord(c) for c in service)
