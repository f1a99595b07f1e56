"""The intake queue's own tables."""
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text

from chatvakt.outbox import outbox_table

metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("chat_id", String(40), primary_key=True),
    # waiting -> assigned -> ended, or waiting -> abandoned; "pending" holds a
    # risk that was detected before chat_started arrived
    Column("status", String(16), nullable=False, index=True),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("risk", Boolean, nullable=False, default=False),
    Column("reason", Text),
    Column("gender", String(16)),
    Column("age", Integer),
    Column("counsellor_id", String(64), index=True),
    Column("assigned_at", DateTime(timezone=True), index=True),
    Column("ended_at", DateTime(timezone=True)),
)

counsellors = Table(
    "counsellors",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("status", String(16), nullable=False, default="offline"),
    Column("capacity", Integer, nullable=False),
    Column("active_chats", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
