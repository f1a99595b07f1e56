"""The one Alembic environment every service's migrations/env.py calls.

Migrations run at service start (chatvakt.migrations.upgrade) on the
connection it hands over, or from the command line (`chatvakt migrate`,
`chatvakt migrations new`).
"""

import importlib

from alembic import context
from sqlalchemy import create_engine

from chatvakt import config


def run(service):
    package = "gateway" if service == "gateway" else f"services.{service}"
    metadata = importlib.import_module(f"{package}.models").metadata
    connection = context.config.attributes.get("connection")
    render_batch = True  # SQLite alters tables by copying them
    if connection is not None:
        _migrate(connection, metadata, render_batch)
        return
    engine = create_engine(config.db_url(service))
    with engine.begin() as conn:
        _migrate(conn, metadata, render_batch)
    engine.dispose()


def _migrate(connection, metadata, render_batch):
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=render_batch, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
