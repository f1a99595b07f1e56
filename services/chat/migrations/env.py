"""Alembic environment of the chat service's own database."""

from chatvakt.alembic_env import run

run("chat")
