"""The coding service's own tables. No child text is stored here."""

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table

from chatvakt.outbox import outbox_table

metadata = MetaData()

# One row per chat that reached the helpline: the facts statistics need
# (times, who, status) and, once coded, the coding itself.
records = Table(
    "records",
    metadata,
    Column("chat_id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("counsellor_id", String(64), index=True),
    Column("counsellor_name", String(120)),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("assigned_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("gender", String(16)),
    Column("age", Integer),
    Column("phases", JSON, nullable=False, default=dict),
    Column("coded", Boolean, nullable=False, default=False, index=True),
    Column("coding", JSON),
    Column("taxonomy_version", String(40)),
    Column("coded_at", DateTime(timezone=True)),
    Column("coded_by", String(64)),
    # re-reminders sent while the chat stays uncoded (the first push is not counted)
    Column("reminders", Integer, nullable=False, default=0),
    Column("reminded_at", DateTime(timezone=True)),
)

# Chats the risk screen flagged (may arrive before the chat ends).
at_risk = Table(
    "at_risk",
    metadata,
    Column("chat_id", String(40), primary_key=True),
)

# Every saved version of a coding, with who and when.
history = Table(
    "coding_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("coding", JSON, nullable=False),
    Column("taxonomy_version", String(40), nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_by_name", String(120)),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# Every taxonomy a coding was made with, by version, as it was then: a
# helpline may replace its taxonomy file, and old codings keep their labels.
# A version, once stored, is never changed.
taxonomies = Table(
    "taxonomies",
    metadata,
    Column("version", String(40), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
