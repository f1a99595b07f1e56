"""The chat relay's domain: conversations, messages and their order.

Plain functions over a SQLAlchemy session and the outbox; no broker here.
Each public function is one transaction: the caller opens it, these functions
change state and record the events that state change implies.
"""

import datetime as dt
import re
import secrets

from sqlalchemy import bindparam, delete, exists, func, or_, select, update

from chatvakt import config
from chatvakt import events as ev
from chatvakt.clock import iso, utcnow
from chatvakt.db import Prepared
from chatvakt.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from chatvakt.gcra import gcra, retry_after
from chatvakt.messages import client_message
from chatvakt.vocabulary import (
    CHAT_STATUSES,
    END_STATUSES,
    OPEN_CHAT_STATUSES,
    PHASES,
    STAFF,
    SUPERVISORS,
    holds_transcript,
)

from .models import conversations, holds, messages

MAX_TEXT = 4000
OPEN = OPEN_CHAT_STATUSES

# System texts in the helpline's own words (Norwegian first: the child's page
# speaks bokmål first). `kind` lets a page show its own translation.
WELCOME = "Hei, velkommen til {helpline}. Hva ønsker du å snakke med oss om?"
CONNECTED = "Du snakker nå med {name}."
ENDED = "Chatten er avsluttet."


def new_chat_id():
    return secrets.token_hex(16)


def first_name(name):
    return (name or "").split()[0] if (name or "").strip() else "en veileder"


def clean_text(text):
    if not isinstance(text, str):
        raise Invalid("The message must be text.", {"text": ["Must be a string."]})
    text = text.strip()
    if not text:
        raise Invalid("The message is empty.", {"text": ["Must not be empty."]})
    if len(text) > MAX_TEXT:
        raise Invalid("The message is too long.", {"text": [f"At most {MAX_TEXT} characters."]})
    return text


def _load(session, chat_id):
    row = session.execute(select(conversations).where(conversations.c.id == chat_id)).first()
    if row is None:
        raise NotFound("No such chat.")
    return row


def can_see(chat, actor):
    """Who may read a chat: its child, its counsellor, any supervisor."""
    role = actor.get("role")
    if role == "child":
        return actor.get("chat_id") == chat.id
    if role in ("supervisor", "admin", "system"):
        return True
    if role == "counsellor":
        return chat.counsellor_id is not None and chat.counsellor_id == actor.get("id")
    return False


def _visible(session, chat_id, actor):
    chat = _load(session, chat_id)
    if not can_see(chat, actor):
        # 404, not 403: a chat the caller may not see does not exist for them.
        raise NotFound("No such chat.")
    return chat


def chat_view(chat):
    return {
        "chat_id": chat.id,
        "status": chat.status,
        "gender": chat.gender,
        "age": chat.age,
        "counsellor": {"id": chat.counsellor_id, "name": first_name(chat.counsellor_name)}
        if chat.counsellor_id
        else None,
        "started_at": iso(chat.started_at),
        "assigned_at": iso(chat.assigned_at),
        "ended_at": iso(chat.ended_at),
        "ended_by": chat.ended_by,
        "last_seq": chat.last_seq,
        "phase": chat.phase,
        "phases": dict(chat.phases or {}),
        "in_danger": getattr(chat, "in_danger", None),
        "lang": getattr(chat, "lang", None),
    }


# --- What a child's page may do per chat: a burst of N, then N a minute.
#
# Kept on the chat's row as one GCRA number per limit (msgs_tat, danger_tat,
# lang_tat), so the limit holds across every gateway and chat replica; it was
# per gateway process before, and two replicas let a child send twice as many.
# Only what is stored spends: a retry of a stored message, the same answer
# again and a failed transaction cost nothing.

CHILD_LIMITS = {
    # kind: (variable, default per minute, column, what the child is told)
    "message": ("CHATVAKT_CHILD_MSGS_PER_MIN", 30, conversations.c.msgs_tat, "Too many messages; wait a little."),
    "danger": ("CHATVAKT_DANGER_REPORTS_PER_MIN", 4, conversations.c.danger_tat, "Too many changes; wait a little."),
    "lang": ("CHATVAKT_LANG_SWITCHES_PER_MIN", 6, conversations.c.lang_tat, "Too many changes; wait a little."),
}
LIMIT_TRIES = 10  # compare-and-set rounds lost to racing replicas before "try again"


def per_minute(kind):
    variable, default, _column, _told = CHILD_LIMITS[kind]
    return config.env_int(variable, default)


def within_limit(session, chat_id, kind, tat, now, spend):
    """Spend one unit of the chat's `kind` limit, or raise RateLimited.

    `spend(old_tat, new_tat)` writes the new number on the condition that the
    stored one is still `old_tat`, and returns a result, or None when another
    replica spent meanwhile (then the number is read again)."""
    _variable, _default, column, told = CHILD_LIMITS[kind]
    limit = per_minute(kind)
    at = now.timestamp()
    for _ in range(LIMIT_TRIES):
        allowed, new_tat, wait = gcra(tat or 0.0, at, limit / 60.0, limit)
        if not allowed:
            raise RateLimited(told, retry_after=retry_after(wait))
        result = spend(tat, new_tat)
        if result is not None:
            return result
        tat = session.execute(select(column).where(conversations.c.id == chat_id)).scalar_one()
    raise Conflict("Too much at once in this chat; try again.")


def _spend_on_row(session, chat_id, kind):
    """`spend` for a limit that has no statement of its own to ride on."""
    column = CHILD_LIMITS[kind][2]

    def spend(old, new):
        changed = session.execute(
            update(conversations)
            .where(conversations.c.id == chat_id, column.is_not_distinct_from(old))
            .values({column.key: new})
        ).rowcount
        return changed or None

    return spend


# The relay's hot path runs these for every message: compiled once and run on
# the driver's cursor (chatvakt.db.Prepared), because SQLAlchemy's work around
# a statement cost more CPU than SQLite spends running it (issue 16).
_NEXT_SEQ_STATEMENT = (
    update(conversations)
    .where(conversations.c.id == bindparam("chat_id"))
    .values(last_seq=conversations.c.last_seq + 1)
    .returning(conversations.c.last_seq)
)
_NEXT_SEQ = Prepared(_NEXT_SEQ_STATEMENT)
# A child's message also restarts the silence clock (check_silence).
# It spends from the chat's message limit in the same statement, on the
# condition that nobody spent since it was read (None when the chat is gone or
# a racing replica spent first).
_NEXT_SEQ_CHILD = Prepared(
    _NEXT_SEQ_STATEMENT.where(conversations.c.msgs_tat.is_not_distinct_from(bindparam("old_tat"))).values(
        last_child_at=bindparam("now"), prompted_at=None, msgs_tat=bindparam("tat")
    )
)
_MESSAGE_FIELDS = ("chat_id", "seq", "sender", "kind", "visibility", "author_id", "text", "sent_at", "client_msg_id")
_INSERT_MESSAGE = Prepared(messages.insert(), column_keys=_MESSAGE_FIELDS)
_EARLIER = messages.alias("earlier")
# The chat and an earlier copy of a message (same client_msg_id) in one statement.
_CHAT_AND_EARLIER = Prepared(
    select(conversations, _EARLIER.c.seq.label("earlier_seq"), _EARLIER.c.sent_at.label("earlier_sent_at"))
    .select_from(
        conversations.outerjoin(
            _EARLIER,
            (_EARLIER.c.chat_id == conversations.c.id) & (_EARLIER.c.client_msg_id == bindparam("client_msg_id")),
        )
    )
    .where(conversations.c.id == bindparam("chat_id"))
)


def _append(
    session,
    outbox,
    chat,
    sender,
    text,
    *,
    kind="message",
    visibility="all",
    author_id=None,
    client_msg_id=None,
    now=None,
):
    """Store one message with the next sequence number of its chat.

    The increment and the insert are one transaction on the conversation row,
    so numbers are gap-free and strictly increasing across replicas.
    """
    now = now or utcnow()
    if sender == "child":

        def spend(old, new):
            return _NEXT_SEQ_CHILD.first(session, {"chat_id": chat.id, "now": now, "old_tat": old, "tat": new})

        seq = within_limit(session, chat.id, "message", chat.msgs_tat, now, spend)[0]
    else:
        seq = _NEXT_SEQ.scalar_one(session, {"chat_id": chat.id})
    _INSERT_MESSAGE.rows(
        session,
        {
            "chat_id": chat.id,
            "seq": seq,
            "sender": sender,
            "kind": kind,
            "visibility": visibility,
            "author_id": author_id,
            "text": text,
            "sent_at": now,
            "client_msg_id": client_msg_id,
        },
    )
    outbox.add(
        session,
        ev.MESSAGE_POSTED,
        {
            "chat_id": chat.id,
            "seq": seq,
            "sender": sender,
            "text": text,
            "sent_at": iso(now),
            "counsellor_id": chat.counsellor_id,
            "visibility": visibility,
            "kind": kind,
            "author_id": author_id,
            "suspect": bool(getattr(chat, "suspect", False)),
        },
    )
    return seq, now


SOURCE = re.compile(r"[0-9a-f]{16}")


def clean_origin(source, suspect):
    """The gateway's view of where a chat came from: a 16-hex-digit salted hash
    of the address (never the address itself) and the flood flag."""
    if source is not None and (not isinstance(source, str) or not SOURCE.fullmatch(source)):
        raise Invalid("source is a 16-hex-digit hash.", {"source": ["16 lowercase hex digits."]})
    if not isinstance(suspect, bool):
        raise Invalid("suspect is true or false.", {"suspect": ["A boolean."]})
    return source, suspect


def clean_danger(in_danger):
    if in_danger is not None and not isinstance(in_danger, bool):
        raise Invalid("in_danger is true, false or null.", {"in_danger": ["true, false or null."]})
    return in_danger


LANGS = ("nb", "en")
# What the counsellor reads in the transcript when the child switches (never shown to the child).
LANG_SWITCHED = {
    "en": "Barnet byttet til engelsk (the child switched to English).",
    "nb": "Barnet byttet til norsk (the child switched to Norwegian).",
}


def clean_lang(lang):
    if lang is not None and lang not in LANGS:
        raise Invalid("lang is nb or en.", {"lang": ["One of nb, en."]})
    return lang


def _danger_event(outbox, session, chat, in_danger, now):
    outbox.add(
        session,
        ev.DANGER_REPORTED,
        {
            "chat_id": chat.id,
            "in_danger": in_danger,
            "reported_at": iso(now),
            "counsellor_id": chat.counsellor_id,
            "suspect": bool(chat.suspect),
        },
    )


def start_chat(
    session,
    outbox,
    *,
    helpline,
    gender=None,
    age=None,
    nickname=None,
    message=None,
    source=None,
    suspect=False,
    in_danger=None,
    lang=None,
    now=None,
):
    now = now or utcnow()
    source, suspect = clean_origin(source, suspect)
    in_danger = clean_danger(in_danger)
    lang = clean_lang(lang)
    text = clean_text(message) if message is not None else None
    chat_id = new_chat_id()
    session.execute(
        conversations.insert().values(
            id=chat_id,
            status="waiting",
            gender=gender,
            age=age,
            nickname=nickname,
            started_at=now,
            last_seq=0,
            phase="opening",
            phases={"opening": iso(now)},
            source=source,
            suspect=suspect,
            in_danger=in_danger,
            in_danger_at=now if in_danger is not None else None,
            lang=lang,
        )
    )
    if suspect and source:
        # The chats this source still has open belong to the same flood: their
        # later messages are screened without alerting anyone either.
        session.execute(
            update(conversations)
            .where(
                conversations.c.source == source, conversations.c.status.in_(OPEN), conversations.c.suspect.is_(False)
            )
            .values(suspect=True)
        )
    chat = _load(session, chat_id)
    outbox.add(
        session,
        ev.CHAT_STARTED,
        {
            "chat_id": chat_id,
            "started_at": iso(now),
            "gender": gender,
            "age": age,
            "source": source,
            "suspect": suspect,
        },
    )
    welcome = WELCOME.format(helpline=helpline)
    _append(session, outbox, chat, "system", welcome, kind="welcome", now=now)
    if text:
        _append(session, outbox, chat, "child", text, now=now)
    if in_danger is not None:
        _danger_event(outbox, session, chat, in_danger, now)
    return {
        "chat_id": chat_id,
        "status": "waiting",
        "started_at": iso(now),
        "welcome": welcome,
        "source": source,
        "suspect": suspect,
        "in_danger": in_danger,
    }


def set_lang(session, outbox, chat_id, actor, lang, now=None):
    """The child switches the page's language during the chat (issue 13).

    Stored on the chat, and told to the counsellor as a line in the transcript
    that only staff see (visibility "counsellors", kind "lang"), so it arrives
    live like any message and stays after a reload. The same language again
    changes nothing."""
    lang = clean_lang(lang)
    if lang is None:
        raise Invalid("lang is nb or en.", {"lang": ["One of nb, en."]})
    chat = _visible(session, chat_id, actor)
    if actor.get("role") != "child":
        raise Forbidden("Only the child's page says which language it is in.")
    if chat.status not in OPEN:
        raise Conflict("The chat has ended.")
    changed = getattr(chat, "lang", None) != lang
    if changed:
        now = now or utcnow()
        within_limit(session, chat_id, "lang", chat.lang_tat, now, _spend_on_row(session, chat_id, "lang"))
        session.execute(update(conversations).where(conversations.c.id == chat_id).values(lang=lang))
        _append(session, outbox, chat, "system", LANG_SWITCHED[lang], kind="lang", visibility="counsellors", now=now)
    return {"chat_id": chat_id, "lang": lang, "changed": changed}


def report_danger(session, outbox, chat_id, actor, in_danger, now=None):
    """The child says (later) whether they are in danger now.

    Idempotent: the same answer again changes nothing and announces nothing,
    so a child tapping "Jeg trenger hjelp nå" twice raises one alert. Only the
    chat's own child says it; staff mark risk by hand elsewhere (issue 14)."""
    in_danger = clean_danger(in_danger)
    chat = _visible(session, chat_id, actor)
    if actor.get("role") != "child":
        raise Forbidden("Only the child says this; staff mark risk by hand.")
    if chat.status not in OPEN:
        raise Conflict("The chat has ended.")
    changed = chat.in_danger != in_danger  # None, False and True are three answers
    if changed:
        now = now or utcnow()
        within_limit(session, chat_id, "danger", chat.danger_tat, now, _spend_on_row(session, chat_id, "danger"))
        session.execute(
            update(conversations).where(conversations.c.id == chat_id).values(in_danger=in_danger, in_danger_at=now)
        )
        _danger_event(outbox, session, chat, in_danger, now)
    return {"chat_id": chat_id, "in_danger": in_danger, "changed": changed}


def post_message(session, outbox, chat_id, actor, text, client_msg_id=None, now=None):
    """Store a message from the child or the chat's counsellor; idempotent on client_msg_id."""
    text = clean_text(text)
    if client_msg_id is None:
        chat = _visible(session, chat_id, actor)
    else:
        chat = _CHAT_AND_EARLIER.first(session, {"chat_id": chat_id, "client_msg_id": client_msg_id})
        if chat is None or not can_see(chat, actor):
            raise NotFound("No such chat.")
        if chat.earlier_seq is not None:
            return {"seq": chat.earlier_seq, "sent_at": iso(chat.earlier_sent_at), "duplicate": True}
    if chat.status not in OPEN:
        raise Conflict("The chat has ended.")
    role = actor.get("role")
    if role == "child":
        sender = "child"
    else:
        if chat.status != "active" or chat.counsellor_id != actor.get("id"):
            # A supervisor watching is not the chat's voice (whispers come with issue 4).
            raise Conflict("Only the counsellor assigned to this chat can write in it.")
        sender = "counsellor"
    seq, sent_at = _append(
        session, outbox, chat, sender, text, author_id=actor.get("id"), client_msg_id=client_msg_id, now=now
    )
    return {"seq": seq, "sent_at": iso(sent_at), "duplicate": False}


def list_messages(session, chat_id, actor, after=0, limit=10_000):
    # API.md: everything after N. The cap only guards memory; at the child's
    # rate limit a chat would need hours of non-stop typing to reach it.
    _visible(session, chat_id, actor)
    query = (
        select(messages)
        .where(messages.c.chat_id == chat_id, messages.c.seq > int(after))
        .order_by(messages.c.seq)
        .limit(limit)
    )
    if actor.get("role") == "child":
        query = query.where(messages.c.visibility == "all")
    return [client_message({**m._mapping, "sent_at": iso(m.sent_at)}, staff=True) for m in session.execute(query)]


def get_chat(session, chat_id, actor):
    return chat_view(_visible(session, chat_id, actor))


def activate(session, outbox, chat_id, counsellor_id, counsellor_name, now=None):
    """The queue gave this chat to a counsellor. Idempotent: the gateway and the
    chat_assigned event may both ask."""
    now = now or utcnow()
    chat = _load(session, chat_id)
    if chat.status == "active" and chat.counsellor_id == counsellor_id:
        return chat_view(chat)
    changed = session.execute(
        update(conversations)
        .where(conversations.c.id == chat_id, conversations.c.status == "waiting")
        .values(status="active", assigned_at=now, counsellor_id=counsellor_id, counsellor_name=counsellor_name)
    ).rowcount
    if not changed:
        chat = _load(session, chat_id)
        if chat.status == "active" and chat.counsellor_id == counsellor_id:
            return chat_view(chat)
        raise Conflict("The chat is no longer waiting.")
    chat = _load(session, chat_id)
    _append(
        session, outbox, chat, "system", CONNECTED.format(name=first_name(counsellor_name)), kind="connected", now=now
    )
    return chat_view(_load(session, chat_id))


def end_chat(session, outbox, chat_id, actor, ended_by=None, now=None):
    """End a chat; a chat that never left the queue ends as abandoned."""
    chat = _visible(session, chat_id, actor)
    if chat.status not in OPEN:
        return chat_view(chat)  # ending twice is not an error: the child may tap twice
    if actor.get("role") == "counsellor" and chat.counsellor_id != actor.get("id"):
        raise NotFound("No such chat.")
    status = "abandoned" if chat.status == "waiting" else "ended"
    _finish(session, outbox, chat, status, ended_by or actor.get("role"), ENDED, now)
    return chat_view(_load(session, chat_id))


ABSENT = "absent"


def end_absent(session, outbox, chat_id, now=None):
    """The queue let this waiting chat go: its child's page had been gone
    longer than the grace. Ends it as abandoned, as if the child had left;
    a chat that was taken or ended meanwhile stays as it is."""
    chat = session.execute(select(conversations).where(conversations.c.id == chat_id)).first()
    if chat is None or chat.status != "waiting":
        return False
    return _finish(session, outbox, chat, "abandoned", ABSENT, ENDED, now)


def _finish(session, outbox, chat, status, ended_by, text, now=None):
    """Close a chat once: the status change is conditional, so a replica that
    loses a race (the child's tap against the inactivity timer) does nothing."""
    now = now or utcnow()
    changed = session.execute(
        update(conversations)
        .where(conversations.c.id == chat.id, conversations.c.status.in_(OPEN))
        .values(status=status, ended_at=now, ended_by=ended_by)
    ).rowcount
    if not changed:
        return False
    _append(session, outbox, chat, "system", text, kind="ended", now=now)
    chat = _load(session, chat.id)
    outbox.add(
        session,
        ev.CHAT_ENDED,
        {
            "chat_id": chat.id,
            "status": status,
            "ended_by": ended_by,
            "started_at": iso(chat.started_at),
            "assigned_at": iso(chat.assigned_at),
            "ended_at": iso(now),
            "counsellor_id": chat.counsellor_id,
            "counsellor_name": chat.counsellor_name,
            "gender": chat.gender,
            "age": chat.age,
            "phases": dict(chat.phases or {}),
        },
    )
    return True


TRANSFERRED = "Samtalen er overført til {name}."


def transfer(session, outbox, chat_id, actor, to_id, to_name, note=None, now=None):
    """Hand an active chat to another counsellor, with an internal note."""
    now = now or utcnow()
    chat = _visible(session, chat_id, actor)
    if chat.status != "active":
        raise Conflict("Only an active chat can be transferred.")
    if chat.counsellor_id == to_id:
        return chat_view(chat)
    session.execute(
        update(conversations).where(conversations.c.id == chat_id).values(counsellor_id=to_id, counsellor_name=to_name)
    )
    chat = _load(session, chat_id)
    if note:
        _append(
            session,
            outbox,
            chat,
            "counsellor",
            clean_text(note),
            kind="note",
            visibility="counsellors",
            author_id=actor.get("id"),
            now=now,
        )
    _append(session, outbox, chat, "system", TRANSFERRED.format(name=first_name(to_name)), kind="transferred", now=now)
    outbox.add(
        session,
        ev.CHAT_TRANSFERRED,
        {
            "chat_id": chat_id,
            "from_counsellor_id": actor.get("id"),
            "to_counsellor_id": to_id,
            "to_counsellor_name": to_name,
        },
    )
    return chat_view(_load(session, chat_id))


# --- Staff tools: internal notes, supervisor whispers, the conversation model.


def _staff_chat(session, chat_id, actor):
    if actor.get("role") not in STAFF:
        raise Forbidden("Only staff may do this.")
    return _visible(session, chat_id, actor)  # a counsellor sees only their own chats


def _staff_only(session, outbox, chat, text, kind, actor, now):
    """A message only counsellors and supervisors see (a note, a whisper)."""
    seq, sent_at = _append(
        session,
        outbox,
        chat,
        "counsellor",
        text,
        kind=kind,
        visibility="counsellors",
        author_id=actor.get("id"),
        now=now,
    )
    return {"seq": seq, "sent_at": iso(sent_at), "kind": kind}


def add_note(session, outbox, chat_id, actor, text, now=None):
    """An internal note on a chat: counsellors and supervisors see it, the child never."""
    text = clean_text(text)
    chat = _staff_chat(session, chat_id, actor)
    if chat.purged_at is not None:
        raise Conflict("The chat's transcript has been deleted.")
    return _staff_only(session, outbox, chat, text, "note", actor, now)


def whisper(session, outbox, chat_id, actor, text, now=None):
    """A supervisor watching a chat speaks to its counsellor only."""
    text = clean_text(text)
    if actor.get("role") not in SUPERVISORS:
        raise Forbidden("Only a supervisor may whisper.")
    chat = _visible(session, chat_id, actor)
    if chat.status not in OPEN:
        raise Conflict("The chat has ended.")
    return _staff_only(session, outbox, chat, text, "whisper", actor, now)


def set_phase(session, outbox, chat_id, actor, phase, now=None):
    """Move the chat to a phase of the conversation model, keeping when each first began."""
    if phase not in PHASES:
        raise Invalid("Unknown phase.", {"phase": [f"One of {', '.join(PHASES)}."]})
    now = now or utcnow()
    chat = _staff_chat(session, chat_id, actor)
    # Lock the row (PostgreSQL) so two tabs moving the phase do not lose an entry.
    chat = session.execute(select(conversations).where(conversations.c.id == chat.id).with_for_update()).first()
    if chat.status != "active":
        raise Conflict("Only an active chat moves through the phases.")
    phases = dict(chat.phases or {})
    phases.setdefault(phase, iso(now))
    session.execute(update(conversations).where(conversations.c.id == chat.id).values(phase=phase, phases=phases))
    return chat_view(_load(session, chat.id))


LISTABLE = CHAT_STATUSES


def list_chats(session, actor, status="active", limit=500):
    """The console's list: a counsellor's own chats, or every chat for a supervisor."""
    if actor.get("role") not in STAFF:
        raise Forbidden("Only staff may list chats.")
    if status not in LISTABLE:
        raise Invalid("Unknown status.", {"status": [f"One of {', '.join(LISTABLE)}."]})
    query = (
        select(conversations).where(conversations.c.status == status).order_by(conversations.c.started_at).limit(limit)
    )
    if actor.get("role") not in SUPERVISORS:
        query = query.where(conversations.c.counsellor_id == actor.get("id"))
    out = []
    for chat in session.execute(query):
        view = chat_view(chat)
        view["last_child_at"] = iso(chat.last_child_at)
        out.append(view)
    return out


# --- Typing, throttled in the database so that every replica sees the last one.


def typing(session, _outbox, chat_id, actor, interval_s=2.0, now=None):
    """Let a typing event through at most once per `interval_s` per chat and side.

    Returns the event payload to publish, or None when throttled or the chat is closed.
    """
    now = now or utcnow()
    chat = _visible(session, chat_id, actor)
    sender = "child" if actor.get("role") == "child" else "counsellor"
    if sender == "counsellor" and chat.counsellor_id != actor.get("id"):
        return None  # a supervisor watching does not type into the chat
    column = conversations.c.typing_child_at if sender == "child" else conversations.c.typing_counsellor_at
    changed = session.execute(
        update(conversations)
        .where(
            conversations.c.id == chat_id,
            conversations.c.status.in_(OPEN),
            or_(column.is_(None), column <= now - dt.timedelta(seconds=interval_s)),
        )
        .values({column.key: now})
    ).rowcount
    if not changed:
        return None
    return {"chat_id": chat_id, "sender": sender, "counsellor_id": chat.counsellor_id}


# --- Inactivity: prompt the counsellor, then end the chat as timed out.

INACTIVITY_PROMPT = "Barnet har ikke skrevet på en stund. Vurder å spørre om hen fortsatt er der."
TIMED_OUT = "Chatten ble avsluttet fordi det var stille lenge."


def silent_chats(session, prompt_s, now=None, limit=500):
    """Active chats whose child has been silent at least `prompt_s` (candidates only)."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=prompt_s)
    return (
        session.execute(
            select(conversations.c.id)
            .where(
                conversations.c.status == "active",
                conversations.c.assigned_at <= cutoff,
                or_(conversations.c.last_child_at.is_(None), conversations.c.last_child_at <= cutoff),
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )


def _silence_s(chat, now):
    # Silence counts from the child's last message, or from the assignment when
    # the child wrote only while waiting (waiting is our silence, not theirs).
    since = max(t for t in (chat.assigned_at, chat.last_child_at) if t is not None)
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    return (now - since).total_seconds()


def check_silence(session, outbox, chat_id, prompt_s, end_s, now=None):
    """Act on one chat's silence; safe to run from every replica at once.

    Returns "timed_out", "prompted" or None.
    """
    now = now or utcnow()
    chat = _load(session, chat_id)
    if chat.status != "active":
        return None
    silence = _silence_s(chat, now)
    if silence >= end_s:
        return "timed_out" if _finish(session, outbox, chat, "timed_out", "timeout", TIMED_OUT, now) else None
    if silence >= prompt_s and chat.prompted_at is None:
        changed = session.execute(
            update(conversations)
            .where(
                conversations.c.id == chat_id, conversations.c.status == "active", conversations.c.prompted_at.is_(None)
            )
            .values(prompted_at=now)
        ).rowcount
        if changed:
            _append(
                session,
                outbox,
                chat,
                "system",
                INACTIVITY_PROMPT,
                kind="inactivity_prompt",
                visibility="counsellors",
                now=now,
            )
            return "prompted"
    return None


# --- Retention: transcripts go after N days unless an escalation holds them.

# One rule (chatvakt/vocabulary.py: holds_transcript): a hold keeps the
# transcript while the escalation's own `open` flag says it is open.


def record_hold(session, _outbox, escalation_id, chat_id, kind, status, open_=None, raised=False, now=None):
    """Remember an escalation's status and whether it is open. Idempotent;
    `raised` never overwrites a later update that overtook it (events from
    different workers may cross)."""
    now = now or utcnow()
    values = dict(kind=kind, status=status, open=holds_transcript(open_, kind, status), updated_at=now)
    row = session.execute(select(holds).where(holds.c.escalation_id == escalation_id)).first()
    if row is None:
        session.execute(holds.insert().values(escalation_id=escalation_id, chat_id=chat_id, **values))
    elif not raised:
        session.execute(update(holds).where(holds.c.escalation_id == escalation_id).values(**values))


def held(session, chat_id):
    return (
        session.execute(select(holds.c.escalation_id).where(holds.c.chat_id == chat_id, holds.c.open.is_(True))).first()
        is not None
    )


def purge_expired(session, _outbox, retention_days, now=None, limit=200):
    """Delete the transcripts (messages and nickname) of chats ended more than
    `retention_days` ago, except those an open escalation holds. The chat row
    stays without text: its times, phases and counsellor serve coding."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=retention_days)
    hold = exists().where(holds.c.chat_id == conversations.c.id, holds.c.open.is_(True))
    ids = (
        session.execute(
            select(conversations.c.id)
            .where(
                conversations.c.status.in_(END_STATUSES),
                conversations.c.ended_at <= cutoff,
                conversations.c.purged_at.is_(None),
                ~hold,
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if ids:
        session.execute(delete(messages).where(messages.c.chat_id.in_(ids)))
        session.execute(update(conversations).where(conversations.c.id.in_(ids)).values(nickname=None, purged_at=now))
    return ids


def metrics_snapshot(session):
    """Chats with a counsellor now, for the service's gauge."""
    return {
        "active": session.execute(
            select(func.count()).select_from(conversations).where(conversations.c.status == "active")
        ).scalar_one()
    }
