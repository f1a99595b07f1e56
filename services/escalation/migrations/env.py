"""Alembic environment of the escalation service's own database."""

from chatvakt.alembic_env import run

run("escalation")
