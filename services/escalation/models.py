"""The escalation service's own tables."""
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Text

from chatvakt.outbox import outbox_table

metadata = MetaData()

# What the screen found: category and reason only, never the message itself.
risk_flags = Table(
    "risk_flags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("seq", Integer),
    Column("category", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
)

escalations = Table(
    "escalations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(24), nullable=False, index=True),
    Column("details", JSON, nullable=False, default=dict),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Who did what when, for every escalation.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("escalation_id", String(40), index=True),
    Column("chat_id", String(40)),
    Column("actor_id", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", Text),
)

outbox = outbox_table(metadata)
