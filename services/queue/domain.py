"""The intake queue's domain: who waits, in what order, and who gets whom.

Order is priority first, then arrival. Assignment is a conditional UPDATE in
the service's database (status must still be 'waiting', the counsellor must
still have room), so two replicas and many counsellors taking at once can
never put two counsellors on one chat, and a refused take leaves the chat
where it was.

Everything here takes `now` so that time-driven rules (cool-down, presence
grace, offers, opening hours) are tested without sleeping.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select, update

from chatvakt import events as ev
from chatvakt.clock import iso, parse_iso, utcnow
from chatvakt.errors import Conflict, Invalid, NotAvailable, NotFound
from chatvakt.numbers import percentile

from .models import counsellors, entries, sockets

PRESENCE = ("available", "away", "offline")
SEVERITY_PRIORITY = {"medium": 10, "high": 20}
# The child said "yes, I am in danger now" on the page (issue 14).
SELF_REPORT = "self_report"
# A screen hit this severe counts as acute danger found in the chat (cool-down).
ACUTE_SEVERITIES = ("high",)
RATE_WINDOW = dt.timedelta(minutes=30)
MIN_TAKES_FOR_ESTIMATE = 3
TAKE_BATCH = 25

EMERGENCY = [
    {"number": "112", "label_nb": "Politi", "label_en": "Police"},
    {"number": "113", "label_nb": "Ambulanse (medisinsk nødhjelp)", "label_en": "Ambulance (medical emergency)"},
    {"number": "110", "label_nb": "Brann", "label_en": "Fire"},
    {"number": "116 117", "label_nb": "Legevakt", "label_en": "Out-of-hours doctor"},
]
_DANGER_NB = (
    "Er du i fare nå, ring 112 (politi), 113 (ambulanse) eller 110 (brann). "
    "Trenger du lege, ring legevakten på 116 117."
)
_DANGER_EN = (
    "If you are in danger now, call 112 (police), 113 (ambulance) or 110 (fire). "
    "If you need a doctor, call the out-of-hours doctor on 116 117."
)
NOTICES = {
    "closed": (
        "Chatten er stengt akkurat nå. Du kan bli i køen, så svarer vi deg når vi åpner. " + _DANGER_NB,
        "The chat is closed right now. You can stay in the queue and we will answer you when we open. " + _DANGER_EN,
    ),
    "no_counsellor": (
        "Ingen chatverter er ledige akkurat nå. Du kan bli i køen, så svarer vi deg så snart "
        "noen er ledig. " + _DANGER_NB,
        "No counsellor is free right now. You can stay in the queue and we will answer you as "
        "soon as someone is free. " + _DANGER_EN,
    ),
}


# -- opening hours ---------------------------------------------------------


def parse_hours(spec):
    """'08:00-16:00,20:00-02:00' -> [(480, 960), (1200, 120)] in minutes; a
    range whose end is not after its start runs past midnight."""
    ranges = []
    for part in (spec or "00:00-24:00").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            start, end = (_minutes(x) for x in part.split("-"))
        except ValueError:
            raise ValueError(f"opening hours {part!r}: write HH:MM-HH:MM") from None
        ranges.append((start, end))
    if not ranges:
        raise ValueError("opening hours: no range given")
    return ranges


def _minutes(text):
    hours, minutes = text.strip().split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= int(minutes) < 60 or not 0 <= value <= 24 * 60:
        raise ValueError(text)
    return value


def is_open(now, hours="00:00-24:00", tz="Europe/Oslo"):
    local = now.astimezone(ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    for start, end in parse_hours(hours):
        if start < end and start <= minute < end:
            return True
        if start >= end and (minute >= start or minute < end):
            return True
    return False


def notice(open_, available):
    """What a waiting child is told plainly when nobody can answer soon."""
    if open_ and available:
        return None
    code = "closed" if not open_ else "no_counsellor"
    message_nb, message_en = NOTICES[code]
    return {
        "code": code,
        "message_nb": message_nb,
        "message_en": message_en,
        "may_keep_waiting": True,
        "emergency": [dict(e) for e in EMERGENCY],
    }


# -- entering the queue and priority --------------------------------------


def _entry(session, chat_id):
    return session.execute(select(entries).where(entries.c.chat_id == chat_id)).first()


def enqueue(session, outbox, chat_id, queued_at, gender=None, age=None, source=None, suspect=False, now=None):
    """Idempotent: chat_started may arrive twice (at-least-once delivery), and
    the gateway's direct call races it. Entering the queue counts as seen.

    A suspect chat (its source opened a flood of chats) also moves the waiting
    chats its source sent earlier to the suspect tier: they are the same flood.
    """
    now = now or utcnow()
    suspect = bool(suspect)
    row = _entry(session, chat_id)
    if row is not None and row.status != "pending":
        # The second of the two paths may know what the first did not.
        if row.status == "waiting" and ((suspect and not row.suspect) or (source and not row.source)):
            session.execute(
                update(entries)
                .where(entries.c.chat_id == chat_id)
                .values(suspect=bool(row.suspect) or suspect, source=row.source or source)
            )
            _flag_source(session, source or row.source, suspect or bool(row.suspect))
            return True
        return False
    if source and not suspect:
        # chat_started events overtake one another: a chat its source sent
        # before one of its suspect chats is part of the same flood.
        suspect = (
            session.execute(
                select(entries.c.chat_id)
                .where(
                    entries.c.source == source,
                    entries.c.suspect.is_(True),
                    entries.c.status.in_(("waiting", "pending")),
                    entries.c.queued_at > parse_iso(queued_at),
                )
                .limit(1)
            ).first()
            is not None
        )
    if row is None:
        session.execute(
            entries.insert().values(
                chat_id=chat_id,
                status="waiting",
                queued_at=parse_iso(queued_at),
                priority=0,
                risk=False,
                acute=False,
                cooldown_applied=False,
                gender=gender,
                age=age,
                last_seen=now,
                source=source,
                suspect=suspect,
            )
        )
    else:
        # The risk screen was quicker than chat_started: keep the raised priority.
        session.execute(
            update(entries)
            .where(entries.c.chat_id == chat_id)
            .values(
                status="waiting",
                queued_at=parse_iso(queued_at),
                gender=gender,
                age=age,
                last_seen=now,
                source=source,
                suspect=suspect,
            )
        )
    _flag_source(session, source, suspect)
    outbox.add(session, ev.CHAT_QUEUED, {"chat_id": chat_id, "queued_at": iso(parse_iso(queued_at))})
    return True


def _flag_source(session, source, suspect):
    if suspect and source:
        session.execute(
            update(entries)
            .where(
                entries.c.source == source, entries.c.status.in_(("waiting", "pending")), entries.c.suspect.is_(False)
            )
            .values(suspect=True)
        )


def _pending(session, chat_id, now, **values):
    """Events from two services race: remember what came before chat_started."""
    session.execute(
        entries.insert().values(
            chat_id=chat_id,
            status="pending",
            queued_at=now,
            priority=values.pop("priority", 0),
            risk=values.pop("risk", False),
            acute=values.pop("acute", False),
            cooldown_applied=False,
            **values,
        )
    )


def raise_for_risk(session, outbox, chat_id, severity, reason, now=None, category=None):
    """A risk screen hit raises a waiting chat; it never lowers one.

    The child's own yes (category self_report, issue 14) raises like the most
    severe hit, but is not acute danger *found*: the counsellor's coding or an
    escalation says that, so it starts no cool-down on its own.

    Returns True when the queue as shown changed."""
    now = now or utcnow()
    level = SEVERITY_PRIORITY.get(severity, SEVERITY_PRIORITY["medium"])
    by_child = category == SELF_REPORT
    acute = severity in ACUTE_SEVERITIES and not by_child
    source = SELF_REPORT if by_child else "risk_screen"
    row = _entry(session, chat_id)
    if row is None:
        _pending(session, chat_id, now, priority=level, risk=True, reason=reason, priority_source=source, acute=acute)
        return False
    if row.status not in ("waiting", "pending"):
        # Found during the chat: it still counts for the counsellor's cool-down.
        if acute and not row.acute:
            session.execute(update(entries).where(entries.c.chat_id == chat_id).values(acute=True))
        return False
    values: dict[str, object] = {"risk": True, "acute": bool(row.acute) or acute}
    if level >= (row.priority or 0):
        # A screen hit arriving after the child's own yes at the same level must not
        # hide that the child said it (the console labels the row by the source).
        kept = row.priority_source == SELF_REPORT and level == row.priority
        values.update(priority=level, reason=reason, priority_source=SELF_REPORT if kept else source)
    session.execute(update(entries).where(entries.c.chat_id == chat_id).values(**values))
    return row.status == "waiting"


HAND_MARK_REASON = {
    True: "Markert i fare av chatvert (marked at risk by staff)",
    False: "Markert ikke i fare av chatvert (marked not at risk by staff)",
}


def hand_mark(session, outbox, chat_id, at_risk):
    """A counsellor or supervisor marked a waiting chat at risk or not (issue 14).

    At risk: the at-risk tier (the screen's highest level), never lower than it
    was. Not at risk: back to the ordinary line. The staff member's own reason
    stays sealed with the escalation service's correction; the queue shows a
    fixed text. The flood tier (suspect) is left alone: a source that floods
    stays behind real children. Returns True when a waiting chat changed."""
    if not isinstance(at_risk, bool):
        raise Invalid("Say whether the chat is at risk.", {"at_risk": ["true or false."]})
    row = _entry(session, chat_id)
    if row is None or row.status != "waiting":
        return False
    if at_risk:
        values = {"risk": True, "priority": max(row.priority or 0, SEVERITY_PRIORITY["high"])}
    else:
        values = {"risk": False, "priority": min(row.priority or 0, 0)}
    session.execute(
        update(entries)
        .where(entries.c.chat_id == chat_id, entries.c.status == "waiting")
        .values(reason=HAND_MARK_REASON[at_risk], priority_source="hand_mark", **values)
    )
    return True


def set_priority(session, outbox, chat_id, priority, reason):
    """A supervisor raises or lowers a waiting chat by hand, with a reason."""
    if not reason or not str(reason).strip():
        raise Invalid("Say why the priority changes.", {"reason": ["Required."]})
    changed = session.execute(
        update(entries)
        .where(entries.c.chat_id == chat_id, entries.c.status == "waiting")
        .values(priority=int(priority), reason=str(reason).strip(), priority_source="supervisor")
    ).rowcount
    if not changed:
        raise NotFound("No such waiting chat.")
    return True


# -- counsellors: presence, capacity, cool-down ------------------------------


def _counsellor(session, counsellor_id):
    return session.execute(select(counsellors).where(counsellors.c.id == counsellor_id)).first()


def _ensure_counsellor(session, counsellor_id, name, default_capacity, now):
    row = _counsellor(session, counsellor_id)
    if row is None:
        session.execute(
            counsellors.insert().values(
                id=counsellor_id,
                name=name or "",
                status="offline",
                capacity=max(1, min(10, int(default_capacity))),
                active_chats=0,
                updated_at=now,
                cooldown_opt_in=False,
            )
        )
        row = _counsellor(session, counsellor_id)
    return row


def in_cooldown(row, now):
    until = parse_iso(row.cooldown_until) if row is not None else None
    return until is not None and until > now and not row.cooldown_opt_in


def presence_view(row, now):
    """API.md's {status, capacity, active_chats}; during a cool-down also when
    it ends and whether the counsellor opted in."""
    view = {"status": row.status, "capacity": row.capacity, "active_chats": row.active_chats}
    until = parse_iso(row.cooldown_until)
    if until is not None and until > now:
        view.update(cooldown_until=iso(until), cooldown_opt_in=bool(row.cooldown_opt_in))
    return view


def get_presence(session, counsellor_id, name="", default_capacity=3, now=None):
    now = now or utcnow()
    row = _counsellor(session, counsellor_id)
    if row is None:
        return {"status": "offline", "capacity": max(1, min(10, int(default_capacity))), "active_chats": 0}
    return presence_view(row, now)


def set_presence(
    session, outbox, counsellor_id, name, status, capacity=None, default_capacity=3, now=None, opt_in=None
):
    now = now or utcnow()
    if status not in PRESENCE:
        raise Invalid("Unknown presence.", {"status": [f"One of {', '.join(PRESENCE)}."]})
    if capacity is not None and not 1 <= int(capacity) <= 10:
        raise Invalid("Capacity is 1 to 10.", {"capacity": ["Between 1 and 10."]})
    row = _ensure_counsellor(session, counsellor_id, name, default_capacity, now)
    values = {
        "status": status,
        "name": name,
        "updated_at": now,
        "capacity": int(capacity) if capacity is not None else row.capacity,
    }
    opting_in = opt_in is True and in_cooldown(row, now)
    if opt_in is not None:
        values["cooldown_opt_in"] = bool(opt_in)
    session.execute(update(counsellors).where(counsellors.c.id == counsellor_id).values(**values))
    # Said explicitly, presence starts afresh: what is left of closed sockets
    # must not take an API-only client offline later. Live sockets stay.
    session.execute(delete(sockets).where(sockets.c.counsellor_id == counsellor_id, sockets.c.count == 0))
    if status != "available":
        _withdraw_offers_to(session, outbox, counsellor_id, "away")
    row = _counsellor(session, counsellor_id)
    view = presence_view(row, now)
    outbox.add(
        session,
        ev.PRESENCE_CHANGED,
        {
            "counsellor_id": counsellor_id,
            "status": row.status,
            "capacity": row.capacity,
            "active_chats": row.active_chats,
        },
    )
    if opting_in:
        outbox.add(
            session,
            ev.COUNSELLOR_COOLDOWN,
            {
                "counsellor_id": counsellor_id,
                "counsellor_name": row.name,
                "chat_id": row.cooldown_chat_id,
                "state": "opted_in",
                "until": iso(row.cooldown_until),
            },
        )
    return view


def mark_acute(session, outbox, chat_id, now=None, cooldown_s=0.0):
    """Acute danger was found in this chat (an escalation, or the coding).

    If the chat has already ended, the rest of its cool-down still applies."""
    now = now or utcnow()
    row = _entry(session, chat_id)
    if row is None:
        _pending(session, chat_id, now, acute=True)
        return False
    if not row.acute:
        session.execute(update(entries).where(entries.c.chat_id == chat_id).values(acute=True))
    if row.status == "ended" and not row.cooldown_applied and row.counsellor_id:
        return _start_cooldown(session, outbox, chat_id, row.counsellor_id, parse_iso(row.ended_at), cooldown_s, now)
    return False


def _start_cooldown(session, outbox, chat_id, counsellor_id, ended_at, cooldown_s, now):
    session.execute(update(entries).where(entries.c.chat_id == chat_id).values(cooldown_applied=True))
    until = (ended_at or now) + dt.timedelta(seconds=cooldown_s)
    if cooldown_s <= 0 or until <= now:
        return False
    row = _ensure_counsellor(session, counsellor_id, "", 3, now)
    current = parse_iso(row.cooldown_until)
    if current is not None and current > until:
        until = current
    session.execute(
        update(counsellors)
        .where(counsellors.c.id == counsellor_id)
        .values(cooldown_until=until, cooldown_chat_id=chat_id, cooldown_opt_in=False)
    )
    _withdraw_offers_to(session, outbox, counsellor_id, "cooldown")
    outbox.add(
        session,
        ev.COUNSELLOR_COOLDOWN,
        {
            "counsellor_id": counsellor_id,
            "counsellor_name": row.name or None,
            "chat_id": chat_id,
            "state": "started",
            "until": iso(until),
        },
    )
    return True


# -- the queue's order and taking --------------------------------------------


def _ordered(query):
    # Flood chats (suspect) after every other chat whatever their risk; risk
    # still orders within each tier.
    return query.order_by(entries.c.suspect, entries.c.priority.desc(), entries.c.queued_at, entries.c.chat_id)


def _ordered_waiting(session):
    return session.execute(_ordered(select(entries).where(entries.c.status == "waiting"))).all()


def _free_for(counsellor_id, now):
    """Not offered to someone else (or that offer ran out)."""
    return or_(entries.c.offered_to.is_(None), entries.c.offered_to == counsellor_id, entries.c.offer_expires_at < now)


def take(
    session,
    outbox,
    counsellor_id,
    name,
    chat_id=None,
    default_capacity=3,
    now=None,
    offer_only=False,
    require_available=False,
):
    """Give the head of the queue (or a named chat) to this counsellor.

    Returns the assignment, or None when nobody waits. Raises Conflict at
    capacity or in a cool-down, NotAvailable (require_available) when the
    caller is offline or away: a chat taken by someone who said they are not
    there is a child nobody answers. (The rule tests of this module call take
    without a presence; the service always requires it.)
    """
    now = now or utcnow()
    me = _ensure_counsellor(session, counsellor_id, name, default_capacity, now)
    if require_available and me.status != "available" and chat_id is not None and _entry(session, chat_id) is None:
        raise NotFound("No such chat in the queue.")
    if require_available and me.status != "available":
        raise NotAvailable(f"You are {me.status}: set yourself available to take a chat.", {"status": [me.status]})
    if in_cooldown(me, now):
        raise Conflict(
            "You are in a cool-down after a chat with acute danger. Take a break and "
            "talk to your supervisor; opt in if you are ready to take chats again.",
            {"cooldown_until": [iso(me.cooldown_until)]},
        )
    if me.active_chats >= me.capacity:
        raise Conflict("You are at your capacity of concurrent chats.")
    if chat_id is not None:
        row = _entry(session, chat_id)
        if row is None or row.status == "pending":
            raise NotFound("No such chat in the queue.")
        if row.status != "waiting":
            raise Conflict("That chat is no longer waiting.")
        live_offer = row.offered_to and parse_iso(row.offer_expires_at) >= now
        if offer_only and (row.offered_to != counsellor_id or not live_offer):
            raise Conflict("That offer has expired or was withdrawn.")
        if live_offer and row.offered_to != counsellor_id:
            raise Conflict("That chat is offered to another counsellor just now.")
        row = _claim(session, row, counsellor_id, now)
        if row is None:
            raise Conflict("That chat is no longer waiting.")
    else:
        row = None
        offset = 0
        while row is None:
            batch = session.execute(
                _ordered(select(entries).where(entries.c.status == "waiting", _free_for(counsellor_id, now)))
                .limit(TAKE_BATCH)
                .offset(offset)
            ).all()
            if not batch:
                return None
            for candidate in batch:
                row = _claim(session, candidate, counsellor_id, now)
                if row is not None:
                    break
            offset += len(batch)
    room = session.execute(
        update(counsellors)
        .where(counsellors.c.id == counsellor_id, counsellors.c.active_chats < counsellors.c.capacity)
        .values(active_chats=counsellors.c.active_chats + 1, updated_at=now)
    ).rowcount
    if not room:
        # Raising rolls back the claim above: the chat stays where it was.
        raise Conflict("You are at your capacity of concurrent chats.")
    if row.offered_to and row.offered_to != counsellor_id:
        outbox.add(
            session, ev.OFFER_WITHDRAWN, {"chat_id": row.chat_id, "counsellor_id": row.offered_to, "why": "taken"}
        )
    waited = max(0.0, (now - parse_iso(row.queued_at)).total_seconds())
    assignment = {
        "chat_id": row.chat_id,
        "counsellor_id": counsellor_id,
        "counsellor_name": name,
        "assigned_at": iso(now),
        "waited_s": round(waited, 3),
    }
    outbox.add(session, ev.CHAT_ASSIGNED, assignment)
    return {
        **assignment,
        "priority": row.priority,
        "risk": bool(row.risk),
        "reason": row.reason,
        "gender": row.gender,
        "age": row.age,
    }


def _claim(session, row, counsellor_id, now):
    """The one step that decides who gets a chat: only one UPDATE can match."""
    got = session.execute(
        update(entries)
        .where(entries.c.chat_id == row.chat_id, entries.c.status == "waiting", _free_for(counsellor_id, now))
        .values(
            status="assigned",
            counsellor_id=counsellor_id,
            assigned_at=now,
            waited_s=max(0.0, (now - parse_iso(row.queued_at)).total_seconds()),
            offered_to=None,
            offer_expires_at=None,
        )
    ).rowcount
    return row if got else None


def finish(session, outbox, chat_id, status, ended_at=None, counsellor_id=None, cooldown_s=0.0, now=None):
    """chat_ended arrived: leave the queue, or free the counsellor's place. Idempotent."""
    ended_at = parse_iso(ended_at) or utcnow()
    now = now or utcnow()
    row = _entry(session, chat_id)
    if row is None or row.status in ("ended", "abandoned"):
        return None
    if row.status in ("waiting", "pending"):
        waited = max(0.0, (ended_at - parse_iso(row.queued_at)).total_seconds())
        session.execute(
            update(entries)
            .where(entries.c.chat_id == chat_id, entries.c.status == row.status)
            .values(
                status="abandoned", ended_at=ended_at, waited_s=round(waited, 3), offered_to=None, offer_expires_at=None
            )
        )
        if row.offered_to:
            outbox.add(
                session, ev.OFFER_WITHDRAWN, {"chat_id": chat_id, "counsellor_id": row.offered_to, "why": "left"}
            )
        outbox.add(session, ev.CHAT_ABANDONED, {"chat_id": chat_id, "waited_s": round(waited, 3)})
        return "abandoned"
    changed = session.execute(
        update(entries)
        .where(entries.c.chat_id == chat_id, entries.c.status == "assigned")
        .values(status="ended", ended_at=ended_at)
    ).rowcount
    owner = row.counsellor_id or counsellor_id
    if changed and owner:
        session.execute(
            update(counsellors)
            .where(counsellors.c.id == owner, counsellors.c.active_chats > 0)
            .values(active_chats=counsellors.c.active_chats - 1)
        )
        if row.acute and not row.cooldown_applied:
            _start_cooldown(session, outbox, chat_id, owner, ended_at, cooldown_s, now)
    return "ended"


def transfer(session, outbox, chat_id, to_counsellor_id, name, default_capacity=3, now=None):
    """Move a chat's place in capacity from one counsellor to another. Idempotent."""
    now = now or utcnow()
    row = _entry(session, chat_id)
    if row is None or row.status != "assigned" or row.counsellor_id == to_counsellor_id:
        return False
    _ensure_counsellor(session, to_counsellor_id, name, default_capacity, now)
    session.execute(update(entries).where(entries.c.chat_id == chat_id).values(counsellor_id=to_counsellor_id))
    session.execute(
        update(counsellors)
        .where(counsellors.c.id == row.counsellor_id, counsellors.c.active_chats > 0)
        .values(active_chats=counsellors.c.active_chats - 1)
    )
    # A transfer is a decision by people: it may take the receiver past capacity.
    session.execute(
        update(counsellors)
        .where(counsellors.c.id == to_counsellor_id)
        .values(active_chats=counsellors.c.active_chats + 1)
    )
    return True


# -- auto-assign: offers ---------------------------------------------------


def _withdraw_offers_to(session, outbox, counsellor_id, why):
    rows = (
        session.execute(
            select(entries.c.chat_id).where(entries.c.offered_to == counsellor_id, entries.c.status == "waiting")
        )
        .scalars()
        .all()
    )
    for chat_id in rows:
        session.execute(
            update(entries)
            .where(entries.c.chat_id == chat_id, entries.c.offered_to == counsellor_id)
            .values(offered_to=None, offer_expires_at=None, last_offered_to=counsellor_id)
        )
        outbox.add(session, ev.OFFER_WITHDRAWN, {"chat_id": chat_id, "counsellor_id": counsellor_id, "why": why})
    return len(rows)


def make_offers(session, outbox, timeout_s, now=None):
    """Offer waiting chats, head first, to the least-loaded available counsellors
    (one open offer each). The chat keeps its place while offered."""
    now = now or utcnow()
    busy = set(
        session.execute(
            select(entries.c.offered_to).where(
                entries.c.status == "waiting", entries.c.offered_to.is_not(None), entries.c.offer_expires_at >= now
            )
        )
        .scalars()
        .all()
    )
    free = [
        c
        for c in session.execute(
            select(counsellors)
            .where(counsellors.c.status == "available", counsellors.c.active_chats < counsellors.c.capacity)
            .order_by(
                counsellors.c.active_chats, counsellors.c.capacity.desc(), counsellors.c.updated_at, counsellors.c.id
            )
        ).all()
        if c.id not in busy and not in_cooldown(c, now)
    ]
    if not free:
        return 0
    waiting = session.execute(
        _ordered(
            select(entries).where(
                entries.c.status == "waiting", or_(entries.c.offered_to.is_(None), entries.c.offer_expires_at < now)
            )
        ).limit(len(free))
    ).all()
    made = 0
    for row in waiting:
        if not free:
            break
        # Not straight back to the one who just let it pass, if anyone else is free.
        pick = next((c for c in free if c.id != row.last_offered_to), free[0])
        expires = now + dt.timedelta(seconds=timeout_s)
        got = session.execute(
            update(entries)
            .where(
                entries.c.chat_id == row.chat_id,
                entries.c.status == "waiting",
                or_(entries.c.offered_to.is_(None), entries.c.offer_expires_at < now),
            )
            .values(offered_to=pick.id, offer_expires_at=expires)
        ).rowcount
        if not got:
            continue
        free.remove(pick)
        made += 1
        outbox.add(
            session,
            ev.CHAT_OFFERED,
            {
                "chat_id": row.chat_id,
                "counsellor_id": pick.id,
                "expires_at": iso(expires),
                "priority": row.priority,
                "risk": bool(row.risk),
                "reason": row.reason,
                "gender": row.gender,
                "age": row.age,
            },
        )
    return made


def expire_offers(session, outbox, now=None):
    """Offers nobody accepted in time: the chat is free again, still at its place."""
    now = now or utcnow()
    rows = session.execute(
        select(entries).where(
            entries.c.status == "waiting", entries.c.offered_to.is_not(None), entries.c.offer_expires_at < now
        )
    ).all()
    for row in rows:
        got = session.execute(
            update(entries)
            .where(
                entries.c.chat_id == row.chat_id,
                entries.c.offered_to == row.offered_to,
                entries.c.offer_expires_at < now,
            )
            .values(offered_to=None, offer_expires_at=None, last_offered_to=row.offered_to)
        ).rowcount
        if got:
            outbox.add(
                session, ev.OFFER_WITHDRAWN, {"chat_id": row.chat_id, "counsellor_id": row.offered_to, "why": "expired"}
            )
    return len(rows)


def decline_offer(session, outbox, counsellor_id, chat_id):
    got = session.execute(
        update(entries)
        .where(entries.c.chat_id == chat_id, entries.c.offered_to == counsellor_id, entries.c.status == "waiting")
        .values(offered_to=None, offer_expires_at=None, last_offered_to=counsellor_id)
    ).rowcount
    if not got:
        raise NotFound("No such offer.")
    outbox.add(session, ev.OFFER_WITHDRAWN, {"chat_id": chat_id, "counsellor_id": counsellor_id, "why": "declined"})
    return {"chat_id": chat_id, "declined": True}


# -- sockets and the presence grace ------------------------------------------


def report_sockets(session, outbox, gateway, counts, now=None):
    """One gateway process says how many sockets each counsellor has open on it
    (all of them: a counsellor it leaves out has none there)."""
    now = now or utcnow()
    rows = {r.counsellor_id: r for r in session.execute(select(sockets).where(sockets.c.gateway == gateway)).all()}
    for counsellor_id, count in counts.items():
        count = max(0, int(count))
        old = rows.pop(counsellor_id, None)
        if old is None:
            # A count of none with no row: a socket that came and went between
            # two reports; the grace runs from now.
            session.execute(
                sockets.insert().values(
                    counsellor_id=counsellor_id,
                    gateway=gateway,
                    count=count,
                    seen_at=now,
                    zero_since=None if count else now,
                )
            )
            continue
        zero_since = None if count else (parse_iso(old.zero_since) if not old.count else now)
        session.execute(
            update(sockets)
            .where(sockets.c.counsellor_id == counsellor_id, sockets.c.gateway == gateway)
            .values(count=count, seen_at=now, zero_since=zero_since)
        )
    for counsellor_id, old in rows.items():
        session.execute(
            update(sockets)
            .where(sockets.c.counsellor_id == counsellor_id, sockets.c.gateway == gateway)
            .values(count=0, seen_at=now, zero_since=parse_iso(old.zero_since) if not old.count else now)
        )
    return True


def expire_presence(session, outbox, grace_s, stale_s, now=None):
    """Mark offline whoever has had no open socket for longer than the grace
    time. A gateway process that stopped reporting (it died) counts as closed."""
    now = now or utcnow()
    ids = (
        session.execute(
            select(sockets.c.counsellor_id)
            .distinct()
            .join(counsellors, counsellors.c.id == sockets.c.counsellor_id)
            .where(counsellors.c.status != "offline")
        )
        .scalars()
        .all()
    )
    gone = []
    for counsellor_id in ids:
        rows = session.execute(select(sockets).where(sockets.c.counsellor_id == counsellor_id)).all()
        last_seen = None
        for r in rows:
            seen = parse_iso(r.seen_at)
            if r.count and (now - seen).total_seconds() <= stale_s:
                last_seen = None
                break
            since = parse_iso(r.zero_since) if not r.count and r.zero_since else seen
            last_seen = since if last_seen is None or since > last_seen else last_seen
        else:
            if last_seen is not None and (now - last_seen).total_seconds() >= grace_s:
                gone.append(counsellor_id)
    for counsellor_id in gone:
        session.execute(
            update(counsellors).where(counsellors.c.id == counsellor_id).values(status="offline", updated_at=now)
        )
        session.execute(delete(sockets).where(sockets.c.counsellor_id == counsellor_id))
        _withdraw_offers_to(session, outbox, counsellor_id, "offline")
        row = _counsellor(session, counsellor_id)
        outbox.add(
            session,
            ev.PRESENCE_CHANGED,
            {
                "counsellor_id": counsellor_id,
                "status": "offline",
                "capacity": row.capacity,
                "active_chats": row.active_chats,
            },
        )
    return gone


# -- waiting children's presence (issue 12) -----------------------------------

SEEN_BATCH = 500


def seen(session, outbox, chat_ids, now=None):
    """A gateway saw these waiting children's pages (a socket or a request)."""
    now = now or utcnow()
    ids = sorted({str(c) for c in chat_ids or () if isinstance(c, str) and c})
    touched = 0
    for start in range(0, len(ids), SEEN_BATCH):
        touched += session.execute(
            update(entries)
            .where(entries.c.chat_id.in_(ids[start : start + SEEN_BATCH]), entries.c.status.in_(("waiting", "pending")))
            .values(last_seen=now)
        ).rowcount
    return touched


def absent(row, grace_s, now):
    """Pure: has this waiting chat's child been gone longer than the grace?"""
    last = parse_iso(row.last_seen) or parse_iso(row.queued_at)
    return row.status == "waiting" and (now - last).total_seconds() > grace_s


def sweep_absent(session, outbox, grace_s, now=None, limit=200):
    """Let go of waiting chats whose child has been absent longer than the grace.

    Every replica may run this at once: the UPDATE only matches while the
    chat still waits and was not seen since we read it (compare-and-set), so
    one replica abandons each chat and a child seen meanwhile keeps its place.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=grace_s)
    last = func.coalesce(entries.c.last_seen, entries.c.queued_at)
    rows = session.execute(
        select(entries).where(entries.c.status == "waiting", last < cutoff).order_by(last).limit(limit)
    ).all()
    gone = []
    for row in rows:
        if not absent(row, grace_s, now):
            continue
        same_seen = entries.c.last_seen.is_(None) if row.last_seen is None else entries.c.last_seen == row.last_seen
        waited = max(0.0, (now - parse_iso(row.queued_at)).total_seconds())
        got = session.execute(
            update(entries)
            .where(entries.c.chat_id == row.chat_id, entries.c.status == "waiting", same_seen)
            .values(status="abandoned", ended_at=now, waited_s=round(waited, 3), offered_to=None, offer_expires_at=None)
        ).rowcount
        if not got:
            continue
        if row.offered_to:
            outbox.add(
                session, ev.OFFER_WITHDRAWN, {"chat_id": row.chat_id, "counsellor_id": row.offered_to, "why": "left"}
            )
        # The chat service ends the chat on this (chat_ended, status abandoned).
        outbox.add(session, ev.CHAT_ABANDONED, {"chat_id": row.chat_id, "waited_s": round(waited, 3), "why": "absent"})
        gone.append(row.chat_id)
    return gone


# -- reading the queue -----------------------------------------------------


def take_rate(session, now):
    """Chats taken per second over the recent window, or None with too little to go on."""
    since = now - RATE_WINDOW
    times = (
        session.execute(
            select(entries.c.assigned_at).where(entries.c.assigned_at >= since).order_by(entries.c.assigned_at)
        )
        .scalars()
        .all()
    )
    if len(times) < MIN_TAKES_FOR_ESTIMATE:
        return None
    span = (now - parse_iso(times[0])).total_seconds()
    return len(times) / span if span > 0 else None


def available_counsellors(session):
    return session.execute(
        select(func.count()).select_from(counsellors).where(counsellors.c.status == "available")
    ).scalar_one()


def _estimate(position, rate, told):
    # With nobody to answer, a rate from the past would be a made-up number.
    if not rate or told is not None:
        return None
    return int(round(position / rate))


def snapshot(session, now=None, open_=True):
    """The queue as it will be served, with positions and honest estimates."""
    now = now or utcnow()
    rate = take_rate(session, now)
    available = available_counsellors(session)
    told = notice(open_, available)
    waiting = []
    for position, row in enumerate(_ordered_waiting(session), start=1):
        waiting.append(
            {
                "chat_id": row.chat_id,
                "position": position,
                "waiting_since": iso(row.queued_at),
                "priority": row.priority,
                "risk": bool(row.risk),
                "reason": row.reason,
                "priority_source": row.priority_source,
                "gender": row.gender,
                "age": row.age,
                "estimated_wait_s": _estimate(position, rate, told),
                "offered_to": row.offered_to if row.offered_to and parse_iso(row.offer_expires_at) >= now else None,
                "suspect": bool(row.suspect),
            }
        )
    return {
        "waiting": waiting,
        "available_counsellors": available,
        "open": open_,
        "notice": told,
        "flood": flood(session, now),
    }


FLOOD_MEMORY = dt.timedelta(minutes=10)


def flood(session, now=None):
    """What supervisors are told about a flood: how many flood chats wait, how
    many it sent, since when, from how many sources. Counts and a time only: a
    source is a salted hash, and even that stays in the queue's database.

    A flood's chats that left within FLOOD_MEMORY still count for `since` and
    `total`, so the notice stays one notice while the flood ages out."""
    now = now or utcnow()
    episode = and_(
        entries.c.suspect.is_(True),
        or_(entries.c.status.in_(("waiting", "pending")), entries.c.ended_at >= now - FLOOD_MEMORY),
    )
    waiting = session.execute(
        select(func.count()).select_from(entries).where(entries.c.status == "waiting", entries.c.suspect.is_(True))
    ).scalar_one()
    if not waiting:
        return None
    total, since, sources = session.execute(
        select(func.count(), func.min(entries.c.queued_at), func.count(entries.c.source.distinct())).where(episode)
    ).one()
    return {"suspect_waiting": waiting, "suspect_total": total, "since": iso(parse_iso(since)), "sources": sources}


def position_of(session, chat_id, now=None, open_=True):
    """One child's place: counted, not listed, so a long queue stays cheap."""
    now = now or utcnow()
    row = _entry(session, chat_id)
    if row is None or row.status != "waiting":
        return {
            "chat_id": chat_id,
            "status": row.status if row is not None else None,
            "position": None,
            "estimated_wait_s": None,
            "notice": None,
        }
    queued_at = parse_iso(row.queued_at)
    same_tier = or_(
        entries.c.priority > row.priority,
        and_(
            entries.c.priority == row.priority,
            or_(entries.c.queued_at < queued_at, and_(entries.c.queued_at == queued_at, entries.c.chat_id < chat_id)),
        ),
    )
    if row.suspect:
        ahead_of_me = or_(entries.c.suspect.is_(False), and_(entries.c.suspect.is_(True), same_tier))
    else:
        ahead_of_me = and_(entries.c.suspect.is_(False), same_tier)
    ahead = session.execute(
        select(func.count()).select_from(entries).where(entries.c.status == "waiting", ahead_of_me)
    ).scalar_one()
    position = ahead + 1
    told = notice(open_, available_counsellors(session))
    return {
        "chat_id": chat_id,
        "status": "waiting",
        "position": position,
        "estimated_wait_s": _estimate(position, take_rate(session, now), told),
        "risk": bool(row.risk),
        "notice": told,
    }


def counsellor_list(session, now=None):
    """For supervisors: who is in, their load, and who is in a cool-down."""
    now = now or utcnow()
    rows = session.execute(select(counsellors).order_by(counsellors.c.name, counsellors.c.id)).all()
    return [
        {"id": r.id, "name": r.name, "cooldown_until": None, "cooldown_opt_in": False, **presence_view(r, now)}
        for r in rows
    ]


def _percentiles(values):
    def pick(p):
        value = percentile(values, p)
        return None if value is None else round(value, 3)

    return {"count": len(values), "p50": pick(50), "p90": pick(90), "max": pick(100)}


def stats(session, since=None, until=None):
    """Waits of answered and abandoned chats that entered the queue in [since, until)."""
    query = select(entries.c.status, entries.c.waited_s).where(
        entries.c.status.in_(("assigned", "ended", "abandoned", "waiting"))
    )
    if since is not None:
        query = query.where(entries.c.queued_at >= parse_iso(since))
    if until is not None:
        query = query.where(entries.c.queued_at < parse_iso(until))
    answered, abandoned, waiting = [], [], 0
    for status, waited in session.execute(query).all():
        if status == "abandoned":
            abandoned.append(waited or 0.0)
        elif status == "waiting":
            waiting += 1
        elif waited is not None:
            answered.append(waited)
    return {
        "answered": len(answered),
        "abandoned": len(abandoned),
        "waiting": waiting,
        "wait_s": _percentiles(answered),
        "abandoned_wait_s": _percentiles(abandoned),
    }


def metrics_snapshot(session, now=None):
    """Queue length and the longest wait, for the service's gauges."""
    now = now or utcnow()
    oldest = session.execute(select(func.min(entries.c.queued_at)).where(entries.c.status == "waiting")).scalar()
    waiting = session.execute(
        select(func.count()).select_from(entries).where(entries.c.status == "waiting")
    ).scalar_one()
    return {"waiting": waiting, "oldest_wait_s": (now - parse_iso(oldest)).total_seconds() if oldest else 0.0}
