"""The escalation service's domain: risk flags from the screen, escalations
and their audit trail. Plain functions; the screen is passed in (a port)."""
import json
import secrets
from pathlib import Path

from sqlalchemy import select

from chatvakt import events as ev
from chatvakt.db import iso, utcnow
from chatvakt.errors import Invalid, NotFound

from .models import audit, escalations, risk_flags

KINDS = ("acute_danger", "report_of_concern", "network_contact", "referral")
SEVERITY_ORDER = {"high": 2, "medium": 1}
DIRECTORY = Path(__file__).resolve().parent / "data" / "services.json"


def screen_message(session, outbox, screen, chat_id, seq, text, counsellor_id=None, now=None):
    """Screen one child message; record and announce what was found.

    Only the category and the reason (built from lexicon terms) are kept.
    """
    findings = screen.screen(text)
    if not findings:
        return None
    now = now or utcnow()
    top = max(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 0))
    reason = "; ".join(f.reason for f in findings)[:500]
    for finding in findings:
        session.execute(risk_flags.insert().values(
            chat_id=chat_id, seq=seq, category=finding.category, severity=finding.severity,
            reason=finding.reason[:500], detected_at=now))
    payload = {"chat_id": chat_id, "seq": seq, "category": top.category, "severity": top.severity,
               "reason": reason, "detected_at": iso(now), "counsellor_id": counsellor_id}
    outbox.add(session, ev.RISK_DETECTED, payload)
    return payload


def flags_for(session, chat_id):
    rows = session.execute(select(risk_flags).where(risk_flags.c.chat_id == chat_id)
                           .order_by(risk_flags.c.id)).all()
    return [{"seq": r.seq, "category": r.category, "severity": r.severity, "reason": r.reason,
             "detected_at": iso(r.detected_at)} for r in rows]


def _audit(session, escalation_id, chat_id, actor, action, detail=None, now=None):
    session.execute(audit.insert().values(
        escalation_id=escalation_id, chat_id=chat_id, actor_id=actor.get("id") or "unknown",
        action=action, at=now or utcnow(), detail=detail))


def view(row):
    return {"escalation_id": row.id, "chat_id": row.chat_id, "kind": row.kind,
            "status": row.status, "details": row.details or {}, "created_by": row.created_by,
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def raise_escalation(session, outbox, chat_id, kind, details, actor, counsellor_id=None, now=None):
    if kind not in KINDS:
        raise Invalid("Unknown kind of escalation.", {"kind": [f"One of {', '.join(KINDS)}."]})
    if not isinstance(details, dict):
        raise Invalid("Details must be an object.", {"details": ["Must be an object."]})
    now = now or utcnow()
    escalation_id = secrets.token_hex(12)
    session.execute(escalations.insert().values(
        id=escalation_id, chat_id=chat_id, kind=kind, status="open", details=details,
        created_by=actor.get("id") or "unknown", created_at=now, updated_at=now))
    _audit(session, escalation_id, chat_id, actor, "raised", kind, now)
    outbox.add(session, ev.ESCALATION_RAISED, {
        "escalation_id": escalation_id, "chat_id": chat_id, "kind": kind, "status": "open",
        "counsellor_id": counsellor_id})
    return {"escalation_id": escalation_id, "status": "open"}


def list_escalations(session, _outbox, actor, status=None):
    query = select(escalations).order_by(escalations.c.created_at)
    if status:
        query = query.where(escalations.c.status == status)
    rows = session.execute(query).all()
    for row in rows:
        _audit(session, row.id, row.chat_id, actor, "read")
    return [view(r) for r in rows]


def get_escalation(session, _outbox, escalation_id, actor):
    row = session.execute(select(escalations).where(escalations.c.id == escalation_id)).first()
    if row is None:
        raise NotFound("No such escalation.")
    _audit(session, row.id, row.chat_id, actor, "read")
    return view(row)


def directory(path=DIRECTORY):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
