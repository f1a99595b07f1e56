"""Alembic environment of the queue service's own database."""

from chatvakt.alembic_env import run

run("queue")
