"""The chat relay's own tables."""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)

from chatvakt.outbox import outbox_table

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("gender", String(16)),
    Column("age", Integer),
    Column("nickname", String(40)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("assigned_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True), index=True),
    Column("ended_by", String(32)),
    Column("counsellor_id", String(64), index=True),
    Column("counsellor_name", String(120)),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("last_child_at", DateTime(timezone=True)),
    Column("phase", String(32)),
    # {phase: ISO time it began}: kept for coding and statistics.
    Column("phases", JSON, nullable=False, default=dict),
    # When the counsellor was prompted about the child's silence; cleared when
    # the child writes, so each silence prompts once.
    Column("prompted_at", DateTime(timezone=True)),
    # Last typing event let through per side: the throttle lives here so that
    # every replica sees it.
    Column("typing_child_at", DateTime(timezone=True)),
    Column("typing_counsellor_at", DateTime(timezone=True)),
    # When the retention timer deleted the transcript.
    Column("purged_at", DateTime(timezone=True)),
    # issue 12: a short salted hash of the source address (never the address)
    # and whether the chat is part of a flood from it; carried on its events so
    # the queue serves it last and the risk screen alerts no one for it.
    Column("source", String(16), index=True),
    Column("suspect", Boolean, nullable=False, default=False, server_default=false()),
    # issue 14: the child's own answer to "Er du i fare akkurat nå?" (None: not
    # asked or rather not say) and when it last changed.
    Column("in_danger", Boolean),
    Column("in_danger_at", DateTime(timezone=True)),
    # issue 13: the language the child's page is in ("nb" or "en"; None for a chat
    # from before it was asked), so the counsellor can answer in it.
    Column("lang", String(2)),
    # What the child's page may do per chat (domain.CHILD_LIMITS): each limit's
    # GCRA bucket as one number, seconds since the epoch when it is full again.
    # On the chat's row, so every gateway and chat replica spends from it.
    Column("msgs_tat", Float),
    Column("danger_tat", Float),
    Column("lang_tat", Float),
)

# Escalations that may hold a chat's transcript past retention, learnt from
# the escalation service's events (the chat service asks no one at purge time).
holds = Table(
    "holds",
    metadata,
    Column("escalation_id", String(64), primary_key=True),
    Column("chat_id", String(40), nullable=False, index=True),
    Column("kind", String(32)),
    Column("status", String(24), nullable=False),
    # the escalation's own `open` flag: the hold keeps the transcript while true
    Column("open", Boolean, nullable=False, server_default=true()),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sender", String(16), nullable=False),
    Column("kind", String(24), nullable=False, default="message"),
    Column("visibility", String(16), nullable=False, default="all"),
    Column("author_id", String(64)),
    Column("text", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("client_msg_id", String(64)),
    UniqueConstraint("chat_id", "seq", name="uq_messages_chat_seq"),
    UniqueConstraint("chat_id", "client_msg_id", name="uq_messages_chat_client_msg"),
)

outbox = outbox_table(metadata)
