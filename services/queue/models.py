"""The intake queue's own tables."""

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text, false

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
    # who set the priority last: "risk_screen" or "supervisor"
    Column("priority_source", String(16)),
    Column("gender", String(16)),
    Column("age", Integer),
    Column("counsellor_id", String(64), index=True),
    Column("assigned_at", DateTime(timezone=True), index=True),
    Column("ended_at", DateTime(timezone=True)),
    Column("waited_s", Float),
    # acute danger was found in this chat (screen, escalation or coding)
    Column("acute", Boolean, nullable=False, default=False),
    Column("cooldown_applied", Boolean, nullable=False, default=False),
    # auto-assign: the counsellor this waiting chat is offered to, until when
    Column("offered_to", String(64)),
    Column("offer_expires_at", DateTime(timezone=True)),
    Column("last_offered_to", String(64)),
    # issue 12: the last sign of life of the child's page (entering the queue
    # counts), reported by the gateways; absent past the grace, the chat leaves.
    Column("last_seen", DateTime(timezone=True)),
    # a short salted hash of the source address (never the address), and
    # whether the chat is part of a flood: flood chats are served after all others
    Column("source", String(16), index=True),
    Column("suspect", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_entries_order", "status", "suspect", "priority", "queued_at"),
    # the flood notice counts the flood's chats that left lately
    Index("ix_entries_suspect_ended", "suspect", "ended_at"),
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
    # wellbeing: no new chat until then, unless the counsellor opted in
    Column("cooldown_until", DateTime(timezone=True)),
    Column("cooldown_chat_id", String(40)),
    Column("cooldown_opt_in", Boolean, nullable=False, default=False),
)

# Open websockets per counsellor and gateway process, as each process last
# reported them: the counsellor is offline once every count has been zero
# (or its process silent) for longer than the grace time.
sockets = Table(
    "sockets",
    metadata,
    Column("counsellor_id", String(64), primary_key=True),
    Column("gateway", String(80), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("zero_since", DateTime(timezone=True)),
)

outbox = outbox_table(metadata)
