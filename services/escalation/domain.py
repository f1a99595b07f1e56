"""The escalation service's domain: risk flags and alerts from the screen,
escalations with their status machines, and the audit trail.

Plain functions `fn(session, outbox, ...)`; the screen and the vault (which
seals what a counsellor writes about a child) are passed in.
"""

import datetime as dt
import json
import secrets
from pathlib import Path

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import bindparam, func, or_, select, update

from chatvakt import events as ev
from chatvakt.clock import iso, parse_iso, utcnow
from chatvakt.db import Prepared
from chatvakt.errors import Conflict, Forbidden, Invalid, NotFound
from chatvakt.vocabulary import ESCALATION_KINDS, GENDERS, STAFF, SUPERVISORS, escalation_open

from .models import alerts, audit, escalations, risk_corrections, risk_flags, screen_context, status_history
from .risk import category_words, reason_text

KINDS = ESCALATION_KINDS
SEVERITY_ORDER = {"high": 2, "medium": 1}
DIRECTORY = Path(__file__).resolve().parent / "data" / "services.json"
# Child welfare must assess a report of concern within a week of receiving it.
ASSESSMENT_DAYS = 7
EMERGENCY_NUMBERS = (
    {"number": "112", "name": "Politi", "name_en": "Police"},
    {"number": "113", "name": "Medisinsk nødhjelp", "name_en": "Medical emergency"},
    {"number": "110", "name": "Brann", "name_en": "Fire"},
)
CALLABLE = ("112", "113", "110", "116 117", "02800")
CONTACTS = ("parent", "school", "school_nurse", "doctor", "police", "other")
CONSENT = ("given", "refused", "not_asked", "not_required")


# --- details: one schema per kind ------------------------------------------


def _text(limit):
    return fields.String(validate=validate.Length(max=limit), allow_none=True)


class IsoTime(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return iso(parse_iso(text))
        except ValueError:
            raise ValidationError("Not an ISO 8601 time.") from None


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class Person(_Strict):
    """Identifying details a child gives: sealed, and shown to supervisors only."""

    name = _text(200)
    address = _text(500)
    school = _text(200)
    phone = _text(40)
    location = _text(500)
    guardians = _text(500)
    other = _text(2000)


class ChildFacts(_Strict):
    gender = fields.String(validate=validate.OneOf(GENDERS), allow_none=True)
    age = fields.Integer(strict=True, validate=validate.Range(min=0, max=25), allow_none=True)


class ContactPerson(_Strict):
    name = _text(200)
    phone = _text(40)
    organisation = _text(200)


class Reporter(ContactPerson):
    """Who reports a concern: a contact person with a role and an e-mail, or anonymous."""

    anonymous = fields.Boolean(load_default=False)
    role = _text(200)
    email = _text(200)


class _Details(_Strict):
    person = fields.Nested(Person, allow_none=True)
    note = _text(4000)


class AcuteDanger(_Details):
    emergency_number = fields.String(validate=validate.OneOf(CALLABLE), allow_none=True)
    called_at = IsoTime(allow_none=True)
    called_by = _text(200)
    location = _text(500)  # where the child said they are: identifying
    situation = _text(4000)
    outcome = _text(4000)


class ReportOfConcern(_Details):
    child = fields.Nested(ChildFacts, allow_none=True)
    concerns = _text(2000)  # whom it concerns, beyond the person fields
    cause = _text(8000)  # what concretely causes concern
    examples = fields.List(
        fields.String(validate=validate.Length(min=1, max=2000)), validate=validate.Length(max=30), allow_none=True
    )
    observed = _text(1000)  # when it was observed
    duration = fields.String(validate=validate.OneOf(("once", "over_time", "unknown")), allow_none=True)
    others_who_know = _text(2000)
    reporter = fields.Nested(Reporter, allow_none=True)
    recipient = _text(300)  # which child welfare service
    sent_via = fields.String(validate=validate.OneOf(("post", "email", "phone", "digital", "other")), allow_none=True)
    reference = _text(200)
    response = _text(4000)


class NetworkContact(_Details):
    contact = fields.String(validate=validate.OneOf(CONTACTS), allow_none=True)
    contact_other = _text(200)
    contact_person = fields.Nested(ContactPerson, allow_none=True)  # identifying
    consent = fields.String(validate=validate.OneOf(CONSENT), allow_none=True)
    consent_note = _text(2000)
    contacted_at = IsoTime(allow_none=True)
    contacted_by = _text(200)
    outcome = _text(4000)


class Referral(_Details):
    services = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(min=1, max=50), allow_none=True
    )


SCHEMAS = {
    "acute_danger": AcuteDanger(),
    "report_of_concern": ReportOfConcern(),
    "network_contact": NetworkContact(),
    "referral": Referral(),
}
# Top-level detail keys only supervisors read back (everything is sealed at rest).
IDENTIFYING = {"person", "location", "contact_person"}
# Must be filled when the escalation is raised, or before it may move to a status.
REQUIRED_AT_START = {"network_contact": ("contact", "consent"), "referral": ("services",)}
REQUIRED_FOR = {
    ("acute_danger", "emergency_contacted"): ("emergency_number",),
    ("report_of_concern", "approved"): ("cause", "observed", "duration"),
    ("network_contact", "contacted"): ("contact", "consent"),
}


# --- status machines ----------------------------------------------------------

MACHINES: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "acute_danger": (
        "open",
        {"open": ("emergency_contacted", "closed"), "emergency_contacted": ("closed",), "closed": ()},
    ),
    "report_of_concern": (
        "draft",
        {
            "draft": ("approved", "closed"),
            "approved": ("draft", "sent", "closed"),
            "sent": ("acknowledged", "closed"),
            "acknowledged": ("closed",),
            "closed": (),
        },
    ),
    "network_contact": ("open", {"open": ("contacted", "closed"), "contacted": ("closed",), "closed": ()}),
    # A referral is a record of what the child was told: done when written.
    "referral": ("recorded", {"recorded": ()}),
}
SUPERVISOR_MOVES = {("report_of_concern", "approved")}
# A report's content is fixed once approved; only its tracking can change.
TRACKING = {"sent_via", "reference", "response", "note"}
CONTENT_STATUSES = {"report_of_concern": ("draft",)}


def is_open(kind, status):
    # The vocabulary says which statuses are open; the machines above agree
    # (a status with a way out is open; tested).
    return escalation_open(kind, status)


def next_statuses(kind, status, actor):
    moves = MACHINES[kind][1].get(status, ())
    return [s for s in moves if (kind, s) not in SUPERVISOR_MOVES or _supervisor(actor)]


# --- risk screen and alerts ----------------------------------------------------

FIRST_MESSAGES = 3  # the child's first messages, read together by the screen


# Built once: a reused statement keeps its SQLAlchemy cache key, which costs
# more to make than to run it (as chatvakt/outbox.py's).
_FLAGGED = select(risk_flags.c.id).where(
    risk_flags.c.chat_id == bindparam("chat_id"), risk_flags.c.seq == bindparam("seq")
)
# Read for every child's message (chatvakt.db.Prepared: issue 16).
_CONTEXT = Prepared(
    select(screen_context.c.seq, screen_context.c.sealed)
    .where(screen_context.c.chat_id == bindparam("chat_id"))
    .order_by(screen_context.c.seq)
)


def screen_message(
    session, outbox, screen, chat_id, seq, text, counsellor_id=None, now=None, vault=None, suspect=False, found=None
):
    """Screen one child message; record and announce what was found.

    With a vault and a screen that reads several messages (`screen_messages`),
    the child's first FIRST_MESSAGES messages are kept sealed and each of them
    is screened together with those before it: danger often comes only in the
    second or third message. Later messages are screened alone.
    Only the category and the reason (built from the screen's own vocabulary)
    are kept in the clear.
    Idempotent: a redelivered message that was already recorded adds nothing.
    `found`: what findings_alone found in a later message on its read, which
    is what screening it here would find (a later message is screened alone):
    a long message is not screened twice before its alert.
    A flood chat (suspect) is recorded and announced, so the queue still orders
    the flood by risk, but raises no alert: a flood must not bury supervisors
    in one alert per fake chat (they get one flood notice from the queue).
    """
    now = now or utcnow()
    if found:
        findings = found
    elif _keeps_context(screen, vault, seq):
        findings = screen.screen_messages(_first_messages(session, vault, chat_id, seq, text, now))
    else:
        findings = screen.screen(text)
    # Most messages find nothing and record nothing: only a finding asks
    # whether a first delivery already recorded it (screening again is harmless).
    if not findings:
        return None
    if seq is not None and session.execute(_FLAGGED, {"chat_id": chat_id, "seq": seq}).first():
        return None
    top = max(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 0))
    reason = "; ".join(f.reason for f in findings)[:500]
    for finding in findings:
        session.execute(
            risk_flags.insert().values(
                chat_id=chat_id,
                seq=seq,
                category=finding.category,
                severity=finding.severity,
                reason=finding.reason[:500],
                detected_at=now,
            )
        )
    return _detected(session, outbox, chat_id, seq, top.category, top.severity, reason, counsellor_id, suspect, now)


def _detected(session, outbox, chat_id, seq, category, severity, reason, counsellor_id, suspect, now):
    """Alert supervisors (unless the chat is part of a flood) and announce the risk."""
    alert_id = None if suspect else _open_alert(session, chat_id, seq, category, severity, reason, counsellor_id, now)
    payload = {
        "chat_id": chat_id,
        "seq": seq,
        "category": category,
        "severity": severity,
        "reason": reason,
        "detected_at": iso(now),
        "counsellor_id": counsellor_id,
        "alert_id": alert_id,
    }
    if suspect:
        payload["suspect"] = True
    outbox.add(session, ev.RISK_DETECTED, payload)
    return payload


SELF_REPORT = "self_report"
# The child's own words on the page, in Norwegian and English, never theirs in a message.
SELF_REPORT_REASON = "Sier selv at hen er i fare nå (says they are in danger now)"


def self_report(session, outbox, chat_id, in_danger, counsellor_id=None, suspect=False, now=None):
    """The child answered yes to "Er du i fare akkurat nå?": a finding like the
    screen's, most severe, so the queue puts the chat in the at-risk tier and
    supervisors are alerted the same way.

    A no (or rather not say) records nothing: it never lowers what the screen
    found. Idempotent: one self-report flag per chat, so a redelivered event or
    a yes after a no after a yes alerts once. A flood chat (suspect) is recorded
    and announced without an alert, exactly as screen_message does.
    """
    if in_danger is not True:
        return None
    if session.execute(
        select(risk_flags.c.id).where(risk_flags.c.chat_id == chat_id, risk_flags.c.category == SELF_REPORT)
    ).first():
        return None
    now = now or utcnow()
    session.execute(
        risk_flags.insert().values(
            chat_id=chat_id, seq=None, category=SELF_REPORT, severity="high", reason=SELF_REPORT_REASON, detected_at=now
        )
    )
    return _detected(
        session, outbox, chat_id, None, SELF_REPORT, "high", SELF_REPORT_REASON, counsellor_id, suspect, now
    )


def findings_alone(session, screen, vault, chat_id, seq, text, kept=None):
    """What screen_message would find in a message past the child's first ones,
    on a read: None when the message is one of the first, which screen_message
    must keep. The escalation service asks this first and opens a unit (the
    database's write lock) only for a first message or a finding: most
    messages come later and find nothing (issue 16). Core statements only:
    the service reads it on a plain connection (read_core). A chat found
    with all its first messages kept goes into `kept` (KeptContexts), so
    its later messages need no read at all (findings_remembered)."""
    if not _keeps_context(screen, vault, seq):
        return screen.screen(text)
    rows = _CONTEXT.rows(session, {"chat_id": chat_id})
    if len(rows) < FIRST_MESSAGES:
        return None
    seqs = frozenset(r.seq for r in rows)
    if kept is not None:
        kept.remember(chat_id, seqs)
    if seq in seqs:
        return None
    return screen.screen_messages([text])


UNREAD = object()  # findings_remembered: this process must read to know


def _keeps_context(screen, vault, seq):
    """Whether a child's first messages are kept and read together (a vault
    to seal them, a numbered message, a screen that reads several)."""
    return vault is not None and seq is not None and hasattr(screen, "screen_messages")


def findings_remembered(kept, screen, vault, chat_id, seq, text):
    """findings_alone's answer without its read, for a chat whose first
    messages this process has seen all kept; UNREAD when it must read.

    A chat's kept first messages only ever grow to FIRST_MESSAGES (by
    whichever replica screens them) and are then left alone until retention
    purges them, long after the chat ended: what a read once found full stays
    true, on every replica. The read was a connection, a transaction and a
    query for each of the child's messages: about a fifth of the escalation
    service's CPU per relayed message (issue 16)."""
    if not _keeps_context(screen, vault, seq):
        return UNREAD
    seqs = kept.seqs(chat_id)
    if seqs is None or seq in seqs:
        return UNREAD
    return screen.screen_messages([text])


class KeptContexts:
    """Per process: the chats found with all their first messages kept, and
    those messages' seqs; the oldest forgotten past `limit` chats (a forgotten
    chat costs its next message one read, nothing more)."""

    def __init__(self, limit=10_000):
        self.limit = limit
        self._seqs: dict = {}

    def seqs(self, chat_id):
        return self._seqs.get(chat_id)

    def remember(self, chat_id, seqs):
        if chat_id not in self._seqs and len(self._seqs) >= self.limit:
            del self._seqs[next(iter(self._seqs))]  # dicts keep insertion order
        self._seqs[chat_id] = seqs


def _first_messages(session, vault, chat_id, seq, text, now):
    """The messages to screen together: this one with the child's earlier first
    messages, when it is one of the first; else this one alone."""
    rows = _CONTEXT.rows(session, {"chat_id": chat_id})
    seqs = [r.seq for r in rows]
    if seq not in seqs:
        if len(rows) >= FIRST_MESSAGES:
            return [text]
        session.execute(
            screen_context.insert().values(chat_id=chat_id, seq=seq, sealed=vault.seal(text), received_at=now)
        )
    earlier = [vault.open(r.sealed) for r in rows if r.seq < seq]
    return earlier[-(FIRST_MESSAGES - 1) :] + [text]


def purge_screen_context(session, _outbox, retention_days, now=None, limit=1000):
    """Forget the kept first messages of chats older than the retention period."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=retention_days)
    ids = (
        session.execute(select(screen_context.c.id).where(screen_context.c.received_at < cutoff).limit(limit))
        .scalars()
        .all()
    )
    if ids:
        session.execute(screen_context.delete().where(screen_context.c.id.in_(ids)))
    return len(ids)


def record_correction(session, _outbox, vault, chat_id, at_risk, reason, actor, categories=None, now=None):
    """A counsellor or supervisor marks a chat at risk or not at risk by hand.

    The mark is kept as a labelled example for `chatvakt risk retrain`: the
    child's first messages (as the screen kept them) and the reason sealed, the
    label and who marked it in the clear. Nothing of it is logged or sent on.
    """
    from .learned import LEARNED_CATEGORIES

    if (actor or {}).get("role") not in STAFF:
        raise Forbidden("Only counsellors and supervisors mark risk.")
    if not isinstance(at_risk, bool):
        raise Invalid("Say whether the chat is at risk.", {"at_risk": ["true or false."]})
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
        raise Invalid("Say why.", {"reason": ["Required, at most 2000 characters."]})
    cats = list(dict.fromkeys(categories or []))
    if any(c not in LEARNED_CATEGORIES for c in cats) or (cats and not at_risk):
        raise Invalid(
            "Unknown or misplaced categories.",
            {"categories": [f"Only with at_risk, from {', '.join(LEARNED_CATEGORIES)}."]},
        )
    now = now or utcnow()
    rows = session.execute(
        select(screen_context.c.sealed)
        .where(screen_context.c.chat_id == chat_id)
        .order_by(screen_context.c.seq)
        .limit(FIRST_MESSAGES)
    ).all()
    messages = [vault.open(r.sealed) for r in rows]
    session.execute(
        risk_corrections.insert().values(
            chat_id=chat_id,
            at_risk=at_risk,
            categories=json.dumps(cats) if cats else None,
            sealed=vault.seal({"messages": messages, "reason": reason.strip()}),
            has_messages=bool(messages),
            actor_id=actor.get("id") or "unknown",
            actor_role=actor.get("role"),
            marked_at=now,
        )
    )
    return {
        "chat_id": chat_id,
        "at_risk": at_risk,
        "categories": cats,
        "kept_as_example": bool(messages),
        "marked_at": iso(now),
    }


def correction_examples(session, vault):
    """The corrections as training rows ({messages, labels, at_risk}), the
    latest mark of a chat winning; for `chatvakt risk retrain` only, in the
    operator's own process."""
    latest = {}
    for row in session.execute(
        select(risk_corrections).where(risk_corrections.c.has_messages.is_(True)).order_by(risk_corrections.c.id)
    ):
        record = vault.open(row.sealed)
        if record.get("messages"):
            latest[row.chat_id] = {
                "messages": record["messages"],
                "labels": json.loads(row.categories or "[]"),
                "at_risk": bool(row.at_risk),
                "lang": None,
                "author": "correction",
            }
    return list(latest.values())


def _open_alert(session, chat_id, seq, category, severity, reason, counsellor_id, now, kind="risk", escalation_id=None):
    """One open alert per chat and kind: a new finding refreshes it (the most
    severe category names it) and restarts its repeat clock, but not its raise
    clock. It keeps every category found for it (all the screen found in this
    message, and the child's own "I am in danger"), so that the one never
    hides the other from a supervisor who logs in later.
    A counsellor's acute-danger escalation is its own kind, so that
    acknowledging the screen's alert does not silence it (and vice versa)."""
    row = session.execute(
        select(alerts)
        .where(alerts.c.chat_id == chat_id, alerts.c.kind == kind, alerts.c.acked_at.is_(None))
        .order_by(alerts.c.detected_at.desc())
    ).first()
    found = [(category, severity)]
    if kind == "risk" and seq is not None:
        # the screen's findings for this message are recorded just before
        found += session.execute(
            select(risk_flags.c.category, risk_flags.c.severity)
            .where(risk_flags.c.chat_id == chat_id, risk_flags.c.seq == seq)
            .order_by(risk_flags.c.id)
        ).all()
    if row is None:
        alert_id = secrets.token_hex(10)
        session.execute(
            alerts.insert().values(
                id=alert_id,
                chat_id=chat_id,
                kind=kind,
                escalation_id=escalation_id,
                seq=seq,
                category=category,
                categories=_merge_categories(None, found),
                severity=severity,
                reason=reason,
                counsellor_id=counsellor_id,
                detected_at=now,
                last_sent_at=now,
                sent_count=1,
            )
        )
        return alert_id
    values = {
        "seq": seq if seq is not None else row.seq,
        "reason": _merge_reasons(row.reason, reason),
        "last_sent_at": now,
        "sent_count": row.sent_count + 1,
    }
    known = json.loads(row.categories) if row.categories else [[row.category, row.severity]]
    values["categories"] = _merge_categories(known, found)
    if escalation_id:
        values["escalation_id"] = escalation_id
    if SEVERITY_ORDER.get(severity, 0) >= SEVERITY_ORDER.get(row.severity, 0):
        values.update(category=category, severity=severity)
    if counsellor_id:
        values["counsellor_id"] = counsellor_id
    session.execute(update(alerts).where(alerts.c.id == row.id).values(**values))
    return row.id


def _merge_categories(known, found):
    """The stored form: [[category, severity], ...], most severe first, the
    one found first ahead among equals; a category found again keeps its
    higher severity."""
    merged: dict[str, str] = {}
    for category, severity in [*(known or []), *found]:
        if SEVERITY_ORDER.get(severity, 0) >= SEVERITY_ORDER.get(merged.get(category, ""), 0):
            merged[category] = severity
    ordered = sorted(merged.items(), key=lambda pair: -SEVERITY_ORDER.get(pair[1], 0))
    return json.dumps([list(pair) for pair in ordered])


def _merge_reasons(known, new, limit=1000):
    """The reasons kept so far and the new one, each once (a reason is "; "-joined
    parts, see screen_message), cut at a whole part within `limit`."""
    parts: list[str] = []
    for part in [*(known or "").split("; "), *new.split("; ")]:
        if part and part not in parts and len("; ".join([*parts, part])) <= limit:
            parts.append(part)
    return "; ".join(parts) or new[:limit]


def _category_words(category):
    # the child's own "I am in danger" is no category of the screen's lexicon
    if category == SELF_REPORT:
        return "Sier selv at hen er i fare nå / says they are in danger now"
    return category_words(category)


# what alert_repeated and alert_raised carry of alert_view (chatvakt/events.py AlertRepeated)
ALERT_EVENT_KEYS = (
    "alert_id",
    "chat_id",
    "seq",
    "category",
    "severity",
    "reason",
    "counsellor_id",
    "detected_at",
    "repeat",
    "raised",
    "kind",
    "escalation_id",
    "categories",
    "categories_words",
)


def alert_view(row):
    categories = [c for c, _ in json.loads(row.categories)] if row.categories else [row.category]
    return {
        "alert_id": row.id,
        "chat_id": row.chat_id,
        "kind": row.kind or "risk",
        "seq": row.seq,
        "escalation_id": row.escalation_id,
        "category": row.category,
        "category_words": _category_words(row.category),
        "categories": categories,
        "categories_words": [_category_words(c) for c in categories],
        "severity": row.severity,
        "reason": row.reason,
        "counsellor_id": row.counsellor_id,
        "detected_at": iso(row.detected_at),
        "last_sent_at": iso(row.last_sent_at),
        "repeat": row.sent_count - 1,
        "raised": row.raised_at is not None,
        "raised_at": iso(row.raised_at),
        "acked_at": iso(row.acked_at),
        "acked_by": row.acked_by,
    }


def due_alerts(session, outbox, repeat_s, raise_s, now=None, limit=100):
    """Send again each alert nobody acknowledged within `repeat_s` of its last
    sending; one older than `raise_s` goes to every supervisor, flagged raised.

    A compare-and-set on last_sent_at keeps two replicas' timers from both
    sending the same repeat.
    """
    now = now or utcnow()
    rows = session.execute(
        select(alerts).where(alerts.c.acked_at.is_(None)).order_by(alerts.c.last_sent_at).limit(limit)
    ).all()
    sent = []
    for row in rows:
        age = (now - _aware(row.detected_at)).total_seconds()
        quiet = (now - _aware(row.last_sent_at)).total_seconds()
        raise_now = row.raised_at is None and age >= raise_s
        if not raise_now and quiet < repeat_s:
            continue
        values = {"last_sent_at": now, "sent_count": row.sent_count + 1}
        if raise_now:
            values["raised_at"] = now
        changed = session.execute(
            update(alerts)
            .where(alerts.c.id == row.id, alerts.c.last_sent_at == row.last_sent_at, alerts.c.acked_at.is_(None))
            .values(**values)
        ).rowcount
        if not changed:
            continue
        fresh = session.execute(select(alerts).where(alerts.c.id == row.id)).first()
        payload = {key: value for key, value in alert_view(fresh).items() if key in ALERT_EVENT_KEYS}
        outbox.add(session, ev.ALERT_REPEATED, payload)
        sent.append(payload)
    return sent


def acknowledge_alerts(session, outbox, chat_id, actor, alert_id=None, now=None):
    """The caller has seen the chat's open alerts (or one of them) and acts on them."""
    now = now or utcnow()
    query = select(alerts).where(alerts.c.chat_id == chat_id)
    if alert_id:
        query = query.where(alerts.c.id == alert_id)
    rows = session.execute(query).all()
    if alert_id and not rows:
        raise NotFound("No such alert.")
    open_ids = [r.id for r in rows if r.acked_at is None]
    if open_ids:
        session.execute(
            update(alerts)
            .where(alerts.c.id.in_(open_ids), alerts.c.acked_at.is_(None))
            .values(acked_at=now, acked_by=actor.get("id") or "unknown")
        )
        outbox.add(
            session,
            ev.ALERT_ACKNOWLEDGED,
            {"chat_id": chat_id, "alert_ids": open_ids, "acked_by": actor.get("id") or "unknown", "acked_at": iso(now)},
        )
    return {"chat_id": chat_id, "acknowledged": open_ids}


def open_alerts(session, actor):
    """Unacknowledged alerts the caller should see: a supervisor all, a
    counsellor those of their chats and of chats still waiting."""
    query = select(alerts).where(alerts.c.acked_at.is_(None)).order_by(alerts.c.detected_at)
    if not _supervisor(actor):
        query = query.where(or_(alerts.c.counsellor_id == actor.get("id"), alerts.c.counsellor_id.is_(None)))
    return [alert_view(r) for r in session.execute(query)]


def chat_counsellor_changed(session, _outbox, chat_id, counsellor_id):
    """Follow a chat to its (new) counsellor: open alerts and escalations go with it."""
    session.execute(
        update(alerts)
        .where(alerts.c.chat_id == chat_id, alerts.c.acked_at.is_(None))
        .values(counsellor_id=counsellor_id)
    )
    session.execute(update(escalations).where(escalations.c.chat_id == chat_id).values(counsellor_id=counsellor_id))


def chat_risk(session, chat_ids):
    """What a chat card needs to keep its risk marker after a reload: per chat,
    the screen's most severe finding (category, reason, the child's message by
    seq) and whether a counsellor escalated acute danger. No sealed detail is
    read, so nothing is audited. Chats with neither are left out."""
    chat_ids = [c for c in (chat_ids or []) if isinstance(c, str)][:1000]
    out: dict[str, dict] = {}
    for start in range(0, len(chat_ids), 500):
        part = chat_ids[start : start + 500]
        for r in session.execute(select(risk_flags).where(risk_flags.c.chat_id.in_(part)).order_by(risk_flags.c.id)):
            entry = out.setdefault(r.chat_id, _no_risk())
            flag = {
                "seq": r.seq,
                "category": r.category,
                "category_words": category_words(r.category),
                "severity": r.severity,
                "reason": r.reason,
                "detected_at": iso(r.detected_at),
            }
            entry["flags"].append(flag)
            top = entry["top"]
            if top is None or SEVERITY_ORDER.get(r.severity, 0) > SEVERITY_ORDER.get(top["severity"], 0):
                entry["top"] = flag
        for r in session.execute(
            select(escalations.c.chat_id, escalations.c.open).where(
                escalations.c.chat_id.in_(part), escalations.c.kind == "acute_danger"
            )
        ):
            entry = out.setdefault(r.chat_id, _no_risk())
            entry["acute_danger"] = True
            entry["acute_danger_open"] = entry["acute_danger_open"] or bool(r.open)
    views = {}
    for chat_id, entry in out.items():
        top = entry.pop("top") or {}
        if entry["acute_danger"] and not top:
            top = {
                "category": "acute_danger",
                "category_words": category_words("acute_danger"),
                "severity": "high",
                "reason": reason_text("acute_danger", ()),
                "seq": None,
            }
        views[chat_id] = {
            "risk": True,
            "category": top.get("category"),
            "category_words": top.get("category_words"),
            "severity": top.get("severity"),
            "reason": top.get("reason"),
            "seq": top.get("seq"),
            **entry,
        }
    return views


def _no_risk():
    return {"flags": [], "top": None, "acute_danger": False, "acute_danger_open": False}


def flags_for(session, chat_id):
    rows = session.execute(select(risk_flags).where(risk_flags.c.chat_id == chat_id).order_by(risk_flags.c.id)).all()
    return [
        {
            "seq": r.seq,
            "category": r.category,
            "severity": r.severity,
            "reason": r.reason,
            "detected_at": iso(r.detected_at),
        }
        for r in rows
    ]


# --- escalations ---------------------------------------------------------------


def _supervisor(actor):
    return (actor or {}).get("role") in SUPERVISORS


def _aware(value):
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _audit(session, escalation_id, chat_id, actor, action, detail=None, now=None):
    session.execute(
        audit.insert().values(
            escalation_id=escalation_id,
            chat_id=chat_id,
            actor_id=actor.get("id") or "unknown",
            actor_role=actor.get("role"),
            action=action,
            at=now or utcnow(),
            detail=detail,
        )
    )


def _history(session, escalation_id, status, actor, now):
    session.execute(
        status_history.insert().values(
            escalation_id=escalation_id,
            status=status,
            actor_id=actor.get("id") or "unknown",
            actor_role=actor.get("role"),
            actor_name=actor.get("name"),
            at=now,
        )
    )


def _flat(messages, prefix="details"):
    out = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name))
        else:
            out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return out


def _validate(kind, details):
    if not isinstance(details, dict):
        raise Invalid("Details must be an object.", {"details": ["Must be an object."]})
    try:
        clean = SCHEMAS[kind].load(details)
    except ValidationError as error:
        raise Invalid("Some details are not valid.", _flat(error.messages)) from error
    if kind == "referral" and clean.get("services"):
        known = {s["id"] for s in directory()["services"]}
        unknown = [s for s in clean["services"] if s not in known]
        if unknown:
            raise Invalid(
                "Unknown services.", {"details.services": [f"Not in the directory: {', '.join(sorted(unknown)[:10])}."]}
            )
    return clean


def _missing(kind, details, names):
    missing = {f"details.{n}": ["Required."] for n in names if details.get(n) in (None, "", [], {})}
    if missing:
        raise Invalid("Some details are required here.", missing)


def _load(session, escalation_id):
    row = session.execute(select(escalations).where(escalations.c.id == escalation_id)).first()
    if row is None:
        raise NotFound("No such escalation.")
    return row


def _may_see(row, actor):
    if _supervisor(actor):
        return True
    return actor.get("role") == "counsellor" and actor.get("id") in (row.counsellor_id, row.created_by)


def _visible(session, escalation_id, actor):
    row = _load(session, escalation_id)
    if not _may_see(row, actor):
        # 404, not 403: an escalation the caller may not see does not exist for them.
        raise NotFound("No such escalation.")
    return row


def view(session, vault, row, actor):
    record = vault.open(row.sealed)
    details = dict(record.get("details") or {})
    identifying = sorted(k for k in IDENTIFYING if details.get(k) not in (None, "", {}))
    if not _supervisor(actor):
        for key in IDENTIFYING:
            details.pop(key, None)
    history = session.execute(
        select(status_history).where(status_history.c.escalation_id == row.id).order_by(status_history.c.id)
    ).all()
    out = {
        "escalation_id": row.id,
        "chat_id": row.chat_id,
        "kind": row.kind,
        "status": row.status,
        "open": bool(row.open),
        "details": details,
        "identifying": {"fields": identifying, "visible": _supervisor(actor)},
        "history": [
            {"status": h.status, "by": h.actor_id, "name": h.actor_name, "role": h.actor_role, "at": iso(h.at)}
            for h in history
        ],
        "next": next_statuses(row.kind, row.status, actor),
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "counsellor_id": row.counsellor_id,
    }
    if row.kind == "acute_danger":
        out["emergency_numbers"] = [dict(n) for n in EMERGENCY_NUMBERS]
    if row.kind == "report_of_concern":
        out["facts"] = record.get("facts") or {}
        out["sent_at"] = iso(row.sent_at)
        out["deadline"] = iso(row.deadline_at)
        out["assessment_days"] = ASSESSMENT_DAYS
    return out


def _changed_event(row, status, counsellor_id=None):
    return {
        "escalation_id": row["id"],
        "chat_id": row["chat_id"],
        "kind": row["kind"],
        "status": status,
        "counsellor_id": counsellor_id,
        "open": is_open(row["kind"], status),
    }


def draft_report(facts, actor, helpline):
    """The first draft of a bekymringsmelding from what the chat and its coding say."""
    facts = facts or {}
    chat = facts.get("chat") or {}
    coding = facts.get("coding") or {}
    started = chat.get("started_at")
    day = parse_iso(started).strftime("%d.%m.%Y") if started else None
    child = {
        "gender": coding.get("gender") or chat.get("gender"),
        "age": coding.get("age") if coding.get("age") is not None else chat.get("age"),
    }
    draft: dict[str, object] = {
        "child": {k: v for k, v in child.items() if v is not None},
        "observed": f"Fortalt av barnet i chat med {helpline} {day}." if day else None,
        "reporter": {"anonymous": False, "organisation": helpline, "name": actor.get("name"), "role": "chatvert"},
        "examples": [],
    }
    return {k: v for k, v in draft.items() if v not in (None, {})}


def _facts_record(facts):
    facts = facts or {}
    chat = facts.get("chat") or {}
    coding = facts.get("coding") or {}
    return {
        "chat": {k: chat.get(k) for k in ("started_at", "ended_at", "counsellor_name", "gender", "age")},
        "categories": list(coding.get("categories") or []),
        "acute_danger_assessed": coding.get("acute_danger_assessed"),
        "acute_danger": coding.get("acute_danger"),
        "coded": bool(coding),
    }


def raise_escalation(
    session,
    outbox,
    vault,
    chat_id,
    kind,
    details,
    actor,
    counsellor_id=None,
    facts=None,
    helpline="Alarmtelefonen",
    now=None,
):
    if kind not in KINDS:
        raise Invalid("Unknown kind of escalation.", {"kind": [f"One of {', '.join(KINDS)}."]})
    given = _validate(kind, details if details is not None else {})
    record = {"details": given}
    if kind == "report_of_concern":
        record["details"] = {**draft_report(facts, actor, helpline), **given}
        record["facts"] = _facts_record(facts)
    _missing(kind, record["details"], REQUIRED_AT_START.get(kind, ()))
    now = now or utcnow()
    status = MACHINES[kind][0]
    escalation_id = secrets.token_hex(12)
    row = {"id": escalation_id, "chat_id": chat_id, "kind": kind}
    session.execute(
        escalations.insert().values(
            **row,
            status=status,
            open=is_open(kind, status),
            sealed=vault.seal(record),
            counsellor_id=counsellor_id,
            created_by=actor.get("id") or "unknown",
            created_at=now,
            updated_at=now,
        )
    )
    _history(session, escalation_id, status, actor, now)
    _audit(session, escalation_id, chat_id, actor, "raised", f"{kind}; fields: {', '.join(sorted(given)) or '-'}", now)
    outbox.add(session, ev.ESCALATION_RAISED, _changed_event(row, status, counsellor_id))
    out = {"escalation_id": escalation_id, "status": status}
    if kind == "acute_danger":
        out["alert_id"] = _acute_alert(session, outbox, chat_id, escalation_id, counsellor_id or actor.get("id"), now)
    return out


def _acute_alert(session, outbox, chat_id, escalation_id, counsellor_id, now):
    """Acute danger stays loud: the same stored alert as the screen's, repeated
    until someone acknowledges it and then raised to every supervisor, so a
    supervisor who logs in later still finds it (GET /api/v1/alerts)."""
    seq = session.execute(select(func.max(risk_flags.c.seq)).where(risk_flags.c.chat_id == chat_id)).scalar()
    alert_id = _open_alert(
        session,
        chat_id,
        seq,
        "acute_danger",
        "high",
        reason_text("acute_danger", ()),
        counsellor_id,
        now,
        kind="acute_danger",
        escalation_id=escalation_id,
    )
    fresh = session.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    view = alert_view(fresh)
    outbox.add(session, ev.ALERT_RAISED, {key: view[key] for key in ALERT_EVENT_KEYS})
    return alert_id


def update_escalation(session, outbox, vault, escalation_id, actor, details=None, status=None, facts=None, now=None):
    """Edit details and/or move to a status (details first, so one call can
    fill the checklist and close it). 409 on a move the machine does not allow."""
    row = _visible(session, escalation_id, actor)
    now = now or utcnow()
    record = vault.open(row.sealed)
    current = dict(record.get("details") or {})
    changed = []
    if details:
        if not isinstance(details, dict):
            raise Invalid("Details must be an object.", {"details": ["Must be an object."]})
        if not is_open(row.kind, row.status):
            raise Conflict(f"A {row.status} escalation can no longer be edited.")
        fixed = CONTENT_STATUSES.get(row.kind)
        if fixed and row.status not in fixed:
            frozen = sorted(set(details) - TRACKING)
            if frozen:
                raise Conflict(f"The report is {row.status}: move it back to draft to change {', '.join(frozen)}.")
        if not _supervisor(actor):
            # A counsellor cannot read identifying details, so may not blank
            # them by accident either; they may set them.
            for key in IDENTIFYING & set(details):
                if details[key] is None:
                    raise Invalid(
                        "Only a supervisor may remove identifying details.",
                        {f"details.{key}": ["Only a supervisor may remove this."]},
                    )
        merged = {**current}
        for key, value in details.items():
            if value is None:
                merged.pop(key, None)
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        current = _validate(row.kind, merged)
        changed = sorted(details)
    if facts is not None and row.kind == "report_of_concern":
        if row.status != "draft":
            raise Conflict("Only a draft takes the chat's facts again.")
        record["facts"] = _facts_record(facts)
        changed.append("facts")
    values: dict[str, object] = {}
    move = None
    if status is not None and status != row.status:
        if status not in MACHINES[row.kind][1]:
            raise Invalid("Unknown status.", {"status": [f"One of {', '.join(MACHINES[row.kind][1])} for {row.kind}."]})
        if status not in MACHINES[row.kind][1][row.status]:
            raise Conflict(f"A {row.kind} cannot go from {row.status} to {status}.")
        if (row.kind, status) in SUPERVISOR_MOVES and not _supervisor(actor):
            raise Forbidden("Only a supervisor may approve a report of concern.")
        current = _fill_on_move(row.kind, status, current, actor, now)
        _missing(row.kind, current, REQUIRED_FOR.get((row.kind, status), ()))
        values.update(status=status, open=is_open(row.kind, status))
        if row.kind == "report_of_concern" and status == "sent":
            values.update(sent_at=now, deadline_at=now + dt.timedelta(days=ASSESSMENT_DAYS))
        move = (row.status, status)
    if not changed and move is None:
        return get_escalation(session, outbox, vault, escalation_id, actor)
    record["details"] = current
    session.execute(
        update(escalations)
        .where(escalations.c.id == row.id)
        .values(sealed=vault.seal(record), updated_at=now, **values)
    )
    what = []
    if changed:
        what.append(f"fields: {', '.join(changed)}")
    if move:
        _history(session, row.id, move[1], actor, now)
        what.append(f"status: {move[0]} -> {move[1]}")
    _audit(session, row.id, row.chat_id, actor, "status" if move else "edited", "; ".join(what), now)
    outbox.add(
        session,
        ev.ESCALATION_UPDATED,
        _changed_event(
            {"id": row.id, "chat_id": row.chat_id, "kind": row.kind},
            values.get("status", row.status),
            row.counsellor_id,
        ),
    )
    fresh = _load(session, row.id)
    return view(session, vault, fresh, actor)


def _fill_on_move(kind, status, details, actor, now):
    """What the checklist can fill itself: who did it and when, unless given."""
    who = actor.get("name") or actor.get("id")
    if kind == "acute_danger" and status == "emergency_contacted":
        details = {
            **details,
            "called_at": details.get("called_at") or iso(now),
            "called_by": details.get("called_by") or who,
        }
    if kind == "network_contact" and status == "contacted":
        details = {
            **details,
            "contacted_at": details.get("contacted_at") or iso(now),
            "contacted_by": details.get("contacted_by") or who,
        }
    return details


def list_escalations(session, _outbox, vault, actor, status=None, kind=None, chat_id=None):
    """`status=open` means every escalation still open (whatever its own status)."""
    query = select(escalations).order_by(escalations.c.created_at)
    if status == "open":
        query = query.where(escalations.c.open.is_(True))
    elif status:
        query = query.where(escalations.c.status == status)
    if kind:
        query = query.where(escalations.c.kind == kind)
    if chat_id:
        query = query.where(escalations.c.chat_id == chat_id)
    rows = [r for r in session.execute(query).all() if _may_see(r, actor)]
    out = []
    for row in rows:
        _audit(session, row.id, row.chat_id, actor, "read", "list")
        out.append(view(session, vault, row, actor))
    return out


def get_escalation(session, _outbox, vault, escalation_id, actor):
    row = _visible(session, escalation_id, actor)
    _audit(session, row.id, row.chat_id, actor, "read", "with identifying details" if _supervisor(actor) else None)
    return view(session, vault, row, actor)


def read_identifying(session, _outbox, vault, escalation_id, actor, chat_live):
    """The identifying details, back to the counsellor who wrote them, while
    their chat is live (or just ended): they may need to tell 113 where the
    child is. Supervisors may always. Every read is in the audit trail."""
    row = _visible(session, escalation_id, actor)
    if not _supervisor(actor) and not chat_live:
        raise Forbidden(
            "Identifying details can be read back only during the chat and shortly after it; ask a supervisor."
        )
    details = dict(vault.open(row.sealed).get("details") or {})
    found = {k: details[k] for k in sorted(IDENTIFYING) if details.get(k) not in (None, "", {})}
    _audit(
        session,
        row.id,
        row.chat_id,
        actor,
        "read",
        f"identifying details read back: {', '.join(found) or 'none stored'}",
    )
    return {"escalation_id": row.id, "chat_id": row.chat_id, "kind": row.kind, "identifying": found}


def report_document(session, _outbox, vault, escalation_id, actor):
    """The report with everything in it, for the PDF (supervisors only)."""
    row = _visible(session, escalation_id, actor)
    if row.kind != "report_of_concern":
        raise NotFound("Only a report of concern has a document.")
    if not _supervisor(actor):
        raise Forbidden("The report holds identifying details: supervisors only.")
    _audit(session, row.id, row.chat_id, actor, "read", "report pdf")
    return view(session, vault, row, actor)


def transcript_access(session, _outbox, escalation_id, actor):
    """A supervisor reviewing an escalation (approving a report of concern)
    reads the chat beside it: allowed to supervisors, and every read audited.
    Returns the chat to read; the chat service holds the messages."""
    row = _visible(session, escalation_id, actor)
    if not _supervisor(actor):
        raise Forbidden("The transcript beside an escalation is for supervisors.")
    _audit(session, row.id, row.chat_id, actor, "read", "transcript")
    return {"escalation_id": row.id, "chat_id": row.chat_id, "kind": row.kind, "status": row.status}


def audit_trail(session, _outbox, escalation_id, actor):
    row = _visible(session, escalation_id, actor)
    if not _supervisor(actor):
        raise Forbidden("The audit log is for supervisors.")
    rows = session.execute(select(audit).where(audit.c.escalation_id == escalation_id).order_by(audit.c.id)).all()
    _audit(session, row.id, row.chat_id, actor, "audit_read")
    return [
        {"at": iso(r.at), "actor_id": r.actor_id, "role": r.actor_role, "action": r.action, "detail": r.detail}
        for r in rows
    ]


def counts(session):
    rows = session.execute(
        select(escalations.c.kind, escalations.c.status, func.count()).group_by(
            escalations.c.kind, escalations.c.status
        )
    ).all()
    return [{"kind": k, "status": s, "count": n} for k, s, n in rows]


def directory(path=DIRECTORY):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def metrics_snapshot(session, now=None):
    """Open escalations and those past their deadline, for the service's gauges."""
    now = now or utcnow()
    open_rows = select(func.count()).select_from(escalations).where(escalations.c.open.is_(True))
    return {
        "open": session.execute(open_rows).scalar_one(),
        "overdue": session.execute(open_rows.where(escalations.c.deadline_at < now)).scalar_one(),
    }
