"""The intake queue's domain: who waits, in what order, and who gets whom.

Order is priority first, then arrival. Assignment is a conditional UPDATE in
the service's database (status must still be 'waiting', the counsellor must
still have room), so two replicas and many counsellors taking at once can
never put two counsellors on one chat.
"""
import datetime as dt

from sqlalchemy import func, select, update

from chatvakt import events as ev
from chatvakt.db import iso, parse_iso, utcnow
from chatvakt.errors import Conflict, Invalid, NotFound

from .models import counsellors, entries

PRESENCE = ("available", "away", "offline")
SEVERITY_PRIORITY = {"medium": 10, "high": 20}
RATE_WINDOW = dt.timedelta(minutes=30)
MIN_TAKES_FOR_ESTIMATE = 3


def enqueue(session, outbox, chat_id, queued_at, gender=None, age=None):
    """Idempotent: chat_started may arrive twice (at-least-once delivery)."""
    row = session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()
    if row is not None and row.status != "pending":
        return False
    if row is None:
        session.execute(entries.insert().values(
            chat_id=chat_id, status="waiting", queued_at=parse_iso(queued_at), priority=0,
            risk=False, gender=gender, age=age,
        ))
    else:
        # The risk screen was quicker than chat_started: keep the raised priority.
        session.execute(update(entries).where(entries.c.chat_id == chat_id).values(
            status="waiting", queued_at=parse_iso(queued_at), gender=gender, age=age))
    outbox.add(session, ev.CHAT_QUEUED, {"chat_id": chat_id, "queued_at": iso(parse_iso(queued_at))})
    return True


def raise_for_risk(session, outbox, chat_id, severity, reason):
    """A risk screen hit raises a waiting chat; it never lowers one."""
    level = SEVERITY_PRIORITY.get(severity, SEVERITY_PRIORITY["medium"])
    row = session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()
    if row is None:
        # Events from two services race: remember the risk until chat_started comes.
        session.execute(entries.insert().values(
            chat_id=chat_id, status="pending", queued_at=utcnow(), priority=level, risk=True,
            reason=reason))
        return False
    if row.status not in ("waiting", "pending"):
        return False
    values = {"risk": True}
    if level >= (row.priority or 0):
        values.update(priority=level, reason=reason)
    session.execute(update(entries).where(entries.c.chat_id == chat_id).values(**values))
    return True


def set_priority(session, outbox, chat_id, priority, reason):
    """A supervisor raises or lowers a waiting chat by hand, with a reason."""
    if not reason or not str(reason).strip():
        raise Invalid("Say why the priority changes.", {"reason": ["Required."]})
    changed = session.execute(
        update(entries).where(entries.c.chat_id == chat_id, entries.c.status == "waiting")
        .values(priority=int(priority), reason=str(reason).strip())
    ).rowcount
    if not changed:
        raise NotFound("No such waiting chat.")
    return True


def _ensure_counsellor(session, counsellor_id, name, default_capacity, now):
    row = session.execute(select(counsellors).where(counsellors.c.id == counsellor_id)).first()
    if row is None:
        session.execute(counsellors.insert().values(
            id=counsellor_id, name=name, status="offline", capacity=default_capacity,
            active_chats=0, updated_at=now,
        ))
        row = session.execute(select(counsellors).where(counsellors.c.id == counsellor_id)).first()
    return row


def set_presence(session, outbox, counsellor_id, name, status, capacity=None,
                 default_capacity=3, now=None):
    now = now or utcnow()
    if status not in PRESENCE:
        raise Invalid("Unknown presence.", {"status": [f"One of {', '.join(PRESENCE)}."]})
    if capacity is not None and not 1 <= int(capacity) <= 10:
        raise Invalid("Capacity is 1 to 10.", {"capacity": ["Between 1 and 10."]})
    row = _ensure_counsellor(session, counsellor_id, name, default_capacity, now)
    session.execute(update(counsellors).where(counsellors.c.id == counsellor_id).values(
        status=status, name=name, updated_at=now,
        capacity=int(capacity) if capacity is not None else row.capacity,
    ))
    row = session.execute(select(counsellors).where(counsellors.c.id == counsellor_id)).first()
    view = {"status": row.status, "capacity": row.capacity, "active_chats": row.active_chats}
    outbox.add(session, ev.PRESENCE_CHANGED, {"counsellor_id": counsellor_id, **view})
    return view


def _ordered_waiting(session):
    return session.execute(
        select(entries).where(entries.c.status == "waiting")
        .order_by(entries.c.priority.desc(), entries.c.queued_at, entries.c.chat_id)
    ).all()


def take(session, outbox, counsellor_id, name, chat_id=None, default_capacity=3, now=None):
    """Give the head of the queue (or a named chat) to this counsellor.

    Returns the assignment, or None when nobody waits. Raises Conflict at capacity.
    """
    now = now or utcnow()
    _ensure_counsellor(session, counsellor_id, name, default_capacity, now)
    if chat_id is not None:
        row = session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()
        if row is None:
            raise NotFound("No such chat in the queue.")
        candidates = [row]
    else:
        candidates = _ordered_waiting(session)
    for row in candidates:
        got = session.execute(
            update(entries)
            .where(entries.c.chat_id == row.chat_id, entries.c.status == "waiting")
            .values(status="assigned", counsellor_id=counsellor_id, assigned_at=now)
        ).rowcount
        if got:
            break
    else:
        if chat_id is not None:
            raise Conflict("That chat is no longer waiting.")
        return None
    room = session.execute(
        update(counsellors)
        .where(counsellors.c.id == counsellor_id, counsellors.c.active_chats < counsellors.c.capacity)
        .values(active_chats=counsellors.c.active_chats + 1, updated_at=now)
    ).rowcount
    if not room:
        # Raising rolls back the entry update above: the chat stays where it was.
        raise Conflict("You are at your capacity of concurrent chats.")
    waited = (now - parse_iso(row.queued_at)).total_seconds()
    assignment = {
        "chat_id": row.chat_id, "counsellor_id": counsellor_id, "counsellor_name": name,
        "assigned_at": iso(now), "waited_s": round(waited, 3),
    }
    outbox.add(session, ev.CHAT_ASSIGNED, assignment)
    return {**assignment, "priority": row.priority, "risk": row.risk, "reason": row.reason,
            "gender": row.gender, "age": row.age}


def finish(session, outbox, chat_id, status, ended_at=None):
    """chat_ended arrived: leave the queue, or free the counsellor's place. Idempotent."""
    ended_at = parse_iso(ended_at) or utcnow()
    row = session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()
    if row is None or row.status in ("ended", "abandoned"):
        return None
    if row.status == "waiting":
        session.execute(update(entries).where(entries.c.chat_id == chat_id, entries.c.status == "waiting")
                        .values(status="abandoned", ended_at=ended_at))
        waited = max(0.0, (ended_at - parse_iso(row.queued_at)).total_seconds())
        outbox.add(session, ev.CHAT_ABANDONED, {"chat_id": chat_id, "waited_s": round(waited, 3)})
        return "abandoned"
    changed = session.execute(
        update(entries).where(entries.c.chat_id == chat_id, entries.c.status == "assigned")
        .values(status="ended", ended_at=ended_at)
    ).rowcount
    if changed and row.counsellor_id:
        session.execute(
            update(counsellors)
            .where(counsellors.c.id == row.counsellor_id, counsellors.c.active_chats > 0)
            .values(active_chats=counsellors.c.active_chats - 1)
        )
    return "ended"


def transfer(session, outbox, chat_id, to_counsellor_id, name, default_capacity=3, now=None):
    """Move a chat's place in capacity from one counsellor to another. Idempotent."""
    now = now or utcnow()
    row = session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()
    if row is None or row.status != "assigned" or row.counsellor_id == to_counsellor_id:
        return False
    _ensure_counsellor(session, to_counsellor_id, name, default_capacity, now)
    session.execute(update(entries).where(entries.c.chat_id == chat_id)
                    .values(counsellor_id=to_counsellor_id))
    session.execute(update(counsellors)
                    .where(counsellors.c.id == row.counsellor_id, counsellors.c.active_chats > 0)
                    .values(active_chats=counsellors.c.active_chats - 1))
    # A transfer is a decision by people: it may take the receiver past capacity.
    session.execute(update(counsellors).where(counsellors.c.id == to_counsellor_id)
                    .values(active_chats=counsellors.c.active_chats + 1))
    return True


def take_rate(session, now):
    """Chats taken per second over the recent window, or None with too little to go on."""
    since = now - RATE_WINDOW
    times = session.execute(
        select(entries.c.assigned_at).where(entries.c.assigned_at >= since)
        .order_by(entries.c.assigned_at)
    ).scalars().all()
    if len(times) < MIN_TAKES_FOR_ESTIMATE:
        return None
    span = (now - parse_iso(times[0])).total_seconds()
    return len(times) / span if span > 0 else None


def available_counsellors(session):
    return session.execute(
        select(func.count()).select_from(counsellors).where(counsellors.c.status == "available")
    ).scalar_one()


def snapshot(session, now=None):
    """The queue as it will be served, with positions and honest estimates."""
    now = now or utcnow()
    rate = take_rate(session, now)
    waiting = []
    for position, row in enumerate(_ordered_waiting(session), start=1):
        waiting.append({
            "chat_id": row.chat_id, "position": position, "waiting_since": iso(row.queued_at),
            "priority": row.priority, "risk": bool(row.risk), "reason": row.reason,
            "gender": row.gender, "age": row.age,
            "estimated_wait_s": int(round(position / rate)) if rate else None,
        })
    return {"waiting": waiting, "available_counsellors": available_counsellors(session)}


def position_of(session, chat_id, now=None):
    row = session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()
    if row is None:
        return {"chat_id": chat_id, "status": None, "position": None, "estimated_wait_s": None}
    if row.status != "waiting":
        return {"chat_id": chat_id, "status": row.status, "position": None, "estimated_wait_s": None}
    for entry in snapshot(session, now)["waiting"]:
        if entry["chat_id"] == chat_id:
            return {"chat_id": chat_id, "status": "waiting", "position": entry["position"],
                    "estimated_wait_s": entry["estimated_wait_s"], "risk": entry["risk"]}
    return {"chat_id": chat_id, "status": row.status, "position": None, "estimated_wait_s": None}
