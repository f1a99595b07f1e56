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


def upgrade(service, engine, metadata):
    folder = migrations_dir(service)
    if (folder / "env.py").exists():
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(folder))
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
        return
    metadata.create_all(engine)
