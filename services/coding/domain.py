"""The coding service's domain: records of chats, their coding by the
helpline's rule (rules.py), and statistics (stats.py)."""
from marshmallow import ValidationError
from sqlalchemy import select, update

from chatvakt import events as ev
from chatvakt.db import iso, parse_iso, utcnow
from chatvakt.errors import Conflict, Invalid, NotFound

from .models import at_risk, history, records
from .rules import CodingInputSchema, check_coding
from .stats import compute_stats

CODING_SCHEMA = CodingInputSchema()


def record_chat(session, outbox, facts):
    """Upsert the facts of a chat (from chat_ended, or from the gateway's read
    of the chat when a coding is saved before that event arrived)."""
    values = {
        "status": facts["status"],
        "counsellor_id": facts.get("counsellor_id"),
        "counsellor_name": facts.get("counsellor_name"),
        "started_at": parse_iso(facts["started_at"]),
        "assigned_at": parse_iso(facts.get("assigned_at")),
        "ended_at": parse_iso(facts.get("ended_at")),
        "phases": facts.get("phases") or {},
    }
    row = session.execute(select(records).where(records.c.chat_id == facts["chat_id"])).first()
    if row is None:
        session.execute(records.insert().values(
            chat_id=facts["chat_id"], coded=False, gender=facts.get("gender"), age=facts.get("age"),
            **values))
        if facts.get("counsellor_id") and facts["status"] != "abandoned":
            outbox.add(session, ev.CODING_REQUIRED, {
                "chat_id": facts["chat_id"], "counsellor_id": facts.get("counsellor_id")})
        return True
    session.execute(update(records).where(records.c.chat_id == facts["chat_id"]).values(**values))
    return False


def mark_at_risk(session, outbox, chat_id):
    if session.execute(select(at_risk).where(at_risk.c.chat_id == chat_id)).first() is None:
        session.execute(at_risk.insert().values(chat_id=chat_id))


def _may_code(row, actor):
    return actor.get("role") in ("supervisor", "admin") or row.counsellor_id == actor.get("id")


def view(row):
    coding = dict(row.coding or {})
    return {
        "chat_id": row.chat_id, "coded": bool(row.coded),
        "counsellor": {"id": row.counsellor_id, "name": row.counsellor_name},
        "gender": coding.get("gender", row.gender), "age": coding.get("age", row.age),
        "categories": coding.get("categories", []),
        "acute_danger_assessed": coding.get("acute_danger_assessed"),
        "acute_danger": coding.get("acute_danger"),
        "contact_type": coding.get("contact_type"),
        "time_in": coding.get("time_in") or iso(row.started_at),
        "time_out": coding.get("time_out") or iso(row.ended_at),
        "notes": coding.get("notes"), "phase_seconds": coding.get("phase_seconds"),
        "taxonomy_version": row.taxonomy_version, "coded_at": iso(row.coded_at),
        "coded_by": row.coded_by, "status": row.status,
    }


def get_coding(session, outbox, facts, actor):
    record_chat(session, outbox, facts)
    row = session.execute(select(records).where(records.c.chat_id == facts["chat_id"])).first()
    if not _may_code(row, actor):
        raise NotFound("No such chat.")
    return view(row)


def save_coding(session, outbox, facts, body, actor, taxonomy, now=None):
    if facts["status"] in ("waiting", "active"):
        raise Conflict("A chat is coded when it has ended.")
    try:
        coding = CODING_SCHEMA.load(body if isinstance(body, dict) else {})
    except ValidationError as error:
        raise Invalid("The coding is not valid.", error.messages)
    if not isinstance(body, dict):
        raise Invalid("The coding must be an object.", {"_schema": ["Must be an object."]})
    bounds = (parse_iso(facts["started_at"]), parse_iso(facts.get("ended_at")))
    problems = check_coding(taxonomy, coding, bounds)
    if problems:
        raise Invalid("The coding breaks the helpline's rule.", problems)
    record_chat(session, outbox, facts)
    row = session.execute(select(records).where(records.c.chat_id == facts["chat_id"])).first()
    if not _may_code(row, actor):
        raise NotFound("No such chat.")
    now = now or utcnow()
    stored = {**coding, "time_in": iso(coding.get("time_in")) or iso(row.started_at),
              "time_out": iso(coding.get("time_out")) or iso(row.ended_at)}
    session.execute(update(records).where(records.c.chat_id == row.chat_id).values(
        coded=True, coding=stored, taxonomy_version=taxonomy.version, coded_at=now,
        coded_by=actor.get("id")))
    session.execute(history.insert().values(
        chat_id=row.chat_id, coding=stored, taxonomy_version=taxonomy.version,
        changed_by=actor.get("id") or "unknown", changed_at=now))
    outbox.add(session, ev.CHAT_CODED, {"chat_id": row.chat_id, "counsellor_id": row.counsellor_id,
                                        "coded_at": iso(now)})
    return view(session.execute(select(records).where(records.c.chat_id == row.chat_id)).first())


def coding_history(session, chat_id):
    rows = session.execute(select(history).where(history.c.chat_id == chat_id)
                           .order_by(history.c.id)).all()
    return [{"coding": r.coding, "taxonomy_version": r.taxonomy_version,
             "changed_by": r.changed_by, "changed_at": iso(r.changed_at)} for r in rows]


def uncoded(session, actor):
    query = (select(records).where(records.c.coded.is_(False), records.c.counsellor_id.is_not(None),
                                   records.c.status != "abandoned")
             .order_by(records.c.ended_at))
    if actor.get("role") not in ("supervisor", "admin"):
        query = query.where(records.c.counsellor_id == actor.get("id"))
    return [{"chat_id": r.chat_id, "counsellor": {"id": r.counsellor_id, "name": r.counsellor_name},
             "started_at": iso(r.started_at), "ended_at": iso(r.ended_at), "status": r.status}
            for r in session.execute(query)]


def stats_records(session, date_from, date_to):
    risky = set(session.execute(select(at_risk.c.chat_id)).scalars())
    query = select(records)
    if date_from is not None:
        query = query.where(records.c.started_at >= date_from)
    if date_to is not None:
        query = query.where(records.c.started_at < date_to)
    out = []
    for r in session.execute(query):
        coding = r.coding or {}
        out.append({
            "chat_id": r.chat_id, "started_at": parse_iso(r.started_at),
            "assigned_at": parse_iso(r.assigned_at), "ended_at": parse_iso(r.ended_at),
            "status": r.status, "at_risk": r.chat_id in risky, "coded": bool(r.coded),
            "gender": coding.get("gender", r.gender), "age": coding.get("age", r.age),
            "contact_type": coding.get("contact_type"), "categories": coding.get("categories", []),
            "acute_danger": coding.get("acute_danger"),
        })
    return out


def statistics(session, taxonomy, date_from=None, date_to=None):
    date_from, date_to = parse_iso(date_from), parse_iso(date_to)
    return compute_stats(stats_records(session, date_from, date_to), taxonomy, date_from, date_to)
