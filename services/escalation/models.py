"""The escalation service's own tables."""

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, UniqueConstraint

from chatvakt.outbox import outbox_table

metadata = MetaData()

# What the screen found: category and reason only, never the message itself.
# Unique per message and category: a redelivered message_posted records nothing new.
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
    UniqueConstraint("chat_id", "seq", "category", name="uq_risk_flags_message"),
)

# An alert stays open until someone acknowledges it; a timer re-sends it and
# then raises it to every supervisor (state here, so any replica's timer works).
# One open alert per chat: later findings update it rather than pile up.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("chat_id", String(40), nullable=False, index=True),
    # "risk" (the screen) or "acute_danger" (a counsellor's escalation): the
    # same repeat-and-raise flow, one open alert per chat and kind
    Column("kind", String(24), nullable=False, default="risk", server_default="risk"),
    Column("escalation_id", String(40)),
    Column("seq", Integer),
    Column("category", String(32), nullable=False),
    # issue 13: every category found for the open alert (JSON list, most severe
    # first), so the child's own "I am in danger" does not hide the screen's
    # "suicide"; None on rows from before, read as [category]
    Column("categories", Text),
    Column("severity", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("counsellor_id", String(64)),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("last_sent_at", DateTime(timezone=True), nullable=False),
    Column("sent_count", Integer, nullable=False, default=1),
    Column("raised_at", DateTime(timezone=True)),
    Column("acked_at", DateTime(timezone=True), index=True),
    Column("acked_by", String(64)),
)

# kind/status/times in the clear; every detail the counsellor writes (names,
# addresses, what the child told) only as a Fernet token in `sealed`.
escalations = Table(
    "escalations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(24), nullable=False, index=True),
    Column("open", Boolean, nullable=False, default=True, index=True),
    Column("sealed", Text, nullable=False),
    # the chat's counsellor, kept current from chat_assigned/chat_transferred
    Column("counsellor_id", String(64), index=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("deadline_at", DateTime(timezone=True)),
)

# Every status an escalation passed through, with who and when.
status_history = Table(
    "status_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("escalation_id", String(40), nullable=False, index=True),
    Column("status", String(24), nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("actor_role", String(16)),
    Column("actor_name", String(200)),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Who did what when, for every read and change of an escalation (field names,
# never values).
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("escalation_id", String(40), index=True),
    Column("chat_id", String(40)),
    Column("actor_id", String(64), nullable=False),
    Column("actor_role", String(16)),
    Column("action", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", Text),
)

# The child's first messages of each chat, sealed (the vault's key), so the
# screen reads them together and a correction can keep them as a labelled
# example. Deleted after the chat's retention period (CHATVAKT_RETENTION_DAYS).
screen_context = Table(
    "screen_context",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("sealed", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    UniqueConstraint("chat_id", "seq", name="uq_screen_context_message"),
)

# A counsellor's or supervisor's hand mark: this chat is (not) at risk, and
# why. It is kept as a labelled example for `chatvakt risk retrain`: the
# child's first messages and the reason sealed, the label in the clear. It
# stays in this database; only an operator's deliberate export takes it out.
risk_corrections = Table(
    "risk_corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("at_risk", Boolean, nullable=False),
    Column("categories", Text),  # JSON list of risk categories, or null
    Column("sealed", Text, nullable=False),  # {"messages": [...], "reason": "..."}
    Column("has_messages", Boolean, nullable=False, default=False),
    Column("actor_id", String(64), nullable=False),
    Column("actor_role", String(16)),
    Column("marked_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
