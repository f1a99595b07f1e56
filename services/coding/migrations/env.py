"""Alembic environment of the coding service's own database."""

from chatvakt.alembic_env import run

run("coding")
