"""Writing a new migration: a developer's tool, so it lives with the command
(it imports a service's or the gateway's models, which the kernel may not)."""

import importlib
import tempfile

from alembic import command

from chatvakt.db import make_engine
from chatvakt.migrations import alembic_config, migrations_dir


def new_revision(service, message):
    """Autogenerate a migration from the difference between models and a
    database at head (a scratch SQLite file)."""
    package = "gateway" if service == "gateway" else f"services.{service}"
    importlib.import_module(f"{package}.models")
    folder = migrations_dir(service)
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.sqlite3")
        cfg = alembic_config(service)
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
            command.revision(cfg, message=message, autogenerate=True)
        engine.dispose()
