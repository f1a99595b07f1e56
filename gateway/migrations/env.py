"""Alembic environment of the gateway service's own database."""

from chatvakt.alembic_env import run

run("gateway")
