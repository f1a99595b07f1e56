"""The coding service's domain: records of chats, their coding by the
helpline's rule (rules.py), reminders for what is still uncoded, and
statistics (stats.py). No child text is ever stored here."""

import datetime as dt
import re

from marshmallow import ValidationError
from sqlalchemy import and_, func, or_, select, update

from chatvakt import events as ev
from chatvakt.clock import iso, parse_iso, utcnow
from chatvakt.errors import Conflict, Invalid, NotFound
from chatvakt.vocabulary import OPEN_CHAT_STATUSES, PHASES, SUPERVISORS

from . import messages
from .models import at_risk, history, records, taxonomies
from .rules import CodingInputSchema, check_coding, main_only_codes
from .stats import DEFAULT_TZ, compute_stats, range_bounds
from .taxonomy import TaxonomyError, bundled_taxonomy, taxonomy_from_dict

CODING_SCHEMA = CodingInputSchema()
RECORDING = "The chat's end is still being recorded; try again in a moment."
OPEN = OPEN_CHAT_STATUSES
# The fields of a coding a correction can change (for the audit trail's summary).
AUDITED = (
    "gender",
    "age",
    "categories",
    "contact_type",
    "acute_danger_assessed",
    "acute_danger",
    "time_in",
    "time_out",
    "notes",
    "phase_seconds",
)


# -- records ------------------------------------------------------------------------


def record_chat(session, outbox, facts):
    """Upsert the facts of an ended chat from the chat service's `chat_ended`:
    the one source of a record's facts (counsellor, times, gender, age,
    phases). The gateway's read of the chat, passed with a coding, never
    writes here: it only tells whether the chat is still open.

    The first time a chat a counsellor handled is recorded, the counsellor is
    told it needs coding. A chat still open is not recorded: it cannot be coded
    yet and must not show up as uncoded."""
    if facts["status"] in OPEN:
        return False
    values = {
        "status": facts["status"],
        "counsellor_id": facts.get("counsellor_id"),
        "counsellor_name": facts.get("counsellor_name"),
        "started_at": parse_iso(facts["started_at"]),
        "assigned_at": parse_iso(facts.get("assigned_at")),
        "ended_at": parse_iso(facts.get("ended_at")),
        "gender": facts.get("gender"),
        "age": facts.get("age"),
        "phases": facts.get("phases") or {},
    }
    if is_recorded(session, facts["chat_id"]):
        # a redelivered or replayed chat_ended: the event's facts stand
        session.execute(update(records).where(records.c.chat_id == facts["chat_id"]).values(**values))
        return False
    session.execute(records.insert().values(chat_id=facts["chat_id"], coded=False, reminders=0, **values))
    if facts.get("counsellor_id") and facts["status"] != "abandoned":
        outbox.add(
            session,
            ev.CODING_REQUIRED,
            {
                "chat_id": facts["chat_id"],
                "counsellor_id": facts["counsellor_id"],
                "uncoded": _uncoded_count(session, facts["counsellor_id"]),
                "reminder": 0,
            },
        )
    return True


def mark_at_risk(session, outbox, chat_id):
    if session.execute(select(at_risk).where(at_risk.c.chat_id == chat_id)).first() is None:
        session.execute(at_risk.insert().values(chat_id=chat_id))


def _row(session, chat_id):
    return session.execute(select(records).where(records.c.chat_id == chat_id)).first()


def is_recorded(session, chat_id):
    return _row(session, chat_id) is not None


def _uncoded_query():
    return (records.c.coded.is_(False), records.c.counsellor_id.is_not(None), records.c.status != "abandoned")


def _uncoded_count(session, counsellor_id):
    return session.execute(
        select(func.count()).select_from(records).where(*_uncoded_query(), records.c.counsellor_id == counsellor_id)
    ).scalar_one()


def _may_code(counsellor_id, actor):
    return actor.get("role") in SUPERVISORS or counsellor_id == actor.get("id")


# -- taxonomies by version -------------------------------------------------------------

_known: dict[str, object] = {}  # version -> Taxonomy; versions are immutable once stored


def register_taxonomy(session, taxonomy):
    """Store the taxonomy a coding is made with, once per version."""
    if session.execute(select(taxonomies.c.version).where(taxonomies.c.version == taxonomy.version)).first() is None:
        session.execute(
            taxonomies.insert().values(
                version=taxonomy.version, document=taxonomy.to_document(), registered_at=utcnow()
            )
        )


def taxonomy_for(session, version, current):
    """The taxonomy of a version: the current one, one this database stored,
    or one shipped with the service; None when nobody knows it."""
    if version is None or version == current.version:
        return current
    if version not in _known:
        row = session.execute(select(taxonomies.c.document).where(taxonomies.c.version == version)).first()
        found = None
        if row is not None:
            try:
                found = taxonomy_from_dict(row.document, source=f"stored taxonomy {version}")
            except TaxonomyError:
                found = None
        found = found or bundled_taxonomy(version)
        if found is None:
            return None
        _known[version] = found
    return _known[version]


def taxonomy_view(session, version, current, lang="nb"):
    found = taxonomy_for(session, version, current)
    if found is None:
        raise NotFound("No such taxonomy version.")
    return {**found.to_api(lang), "current": found.version == current.version}


# -- the coding --------------------------------------------------------------------


def phase_seconds(phases, assigned_at, ended_at):
    """Seconds spent in each phase of the conversation model, from when each
    phase began until the next began or the chat ended. The opening counts
    from when the counsellor came in, not from when the child started waiting."""
    assigned, ended = parse_iso(assigned_at), parse_iso(ended_at)
    if not phases or assigned is None or ended is None:
        return None
    starts = []
    for name, began in (phases or {}).items():
        if name not in PHASES:
            continue
        try:
            began = parse_iso(began)
        except (TypeError, ValueError):
            continue
        starts.append((min(max(began, assigned), ended), PHASES.index(name), name))
    starts.sort()
    out = {}
    for i, (began, _, name) in enumerate(starts):
        until = starts[i + 1][0] if i + 1 < len(starts) else ended
        out[name] = round(max(0.0, (until - began).total_seconds()), 1)
    return out or None


def _categories_view(taxonomy, codes, lang):
    main_only = set(main_only_codes(taxonomy, codes)) if taxonomy else set()
    out = []
    for i, code in enumerate(codes):
        out.append(
            {
                "code": code,
                "primary": i == 0,
                "label": taxonomy.label(code, lang) if taxonomy else None,
                "main_category": (taxonomy.main_of(code) if taxonomy else None),
                "is_main": bool(taxonomy and taxonomy.is_main(code)),
                # a main category alone means "no subcategory fits" and is counted so
                "no_subcategory_fits": code in main_only,
            }
        )
    return out


def view(row, taxonomy=None, lang="nb"):
    """A chat's coding as the API shows it. `taxonomy` is the one the coding was
    made with (labels); None leaves labels out."""
    coding = dict(row.coding or {})
    codes = coding.get("categories", [])
    corrected_phases = coding.get("phase_seconds")
    return {
        "chat_id": row.chat_id,
        "coded": bool(row.coded),
        "counsellor": {"id": row.counsellor_id, "name": row.counsellor_name},
        "gender": coding.get("gender", row.gender),
        "age": coding.get("age", row.age),
        "categories": codes,
        "primary_category": codes[0] if codes else None,
        "category_details": _categories_view(taxonomy, codes, lang),
        "main_only": main_only_codes(taxonomy, codes) if taxonomy else [],
        "acute_danger_assessed": coding.get("acute_danger_assessed"),
        "acute_danger": coding.get("acute_danger"),
        "contact_type": coding.get("contact_type"),
        "time_in": coding.get("time_in") or iso(row.started_at),
        "time_out": coding.get("time_out") or iso(row.ended_at),
        "chat_started_at": iso(row.started_at),
        "chat_assigned_at": iso(row.assigned_at),
        "chat_ended_at": iso(row.ended_at),
        "notes": coding.get("notes"),
        "phase_seconds": (
            corrected_phases
            if corrected_phases is not None
            else phase_seconds(row.phases, row.assigned_at, row.ended_at)
        ),
        "phase_seconds_source": "counsellor" if corrected_phases is not None else "chat",
        "taxonomy_version": row.taxonomy_version,
        "coded_at": iso(row.coded_at),
        "coded_by": row.coded_by,
        "status": row.status,
    }


def _draft_view(facts):
    """The coding form of a chat whose end is not recorded yet: nothing is stored."""
    counsellor = {"id": facts.get("counsellor_id"), "name": facts.get("counsellor_name")}
    return {
        "chat_id": facts["chat_id"],
        "coded": False,
        "counsellor": counsellor,
        "gender": facts.get("gender"),
        "age": facts.get("age"),
        "categories": [],
        "primary_category": None,
        "category_details": [],
        "main_only": [],
        "acute_danger_assessed": None,
        "acute_danger": None,
        "contact_type": None,
        "time_in": facts.get("started_at"),
        "time_out": facts.get("ended_at"),
        "chat_started_at": facts.get("started_at"),
        "chat_assigned_at": facts.get("assigned_at"),
        "chat_ended_at": facts.get("ended_at"),
        "notes": None,
        "phase_seconds": None,
        "phase_seconds_source": "chat",
        "taxonomy_version": None,
        "coded_at": None,
        "coded_by": None,
        "status": facts["status"],
    }


def prefill(coding, risk):
    """An uncoded chat's form starts from what the chat says about danger
    (issue 13): a counsellor's acute-danger escalation means acute danger was
    assessed and found; a high-severity flag of the risk screen suggests acute
    danger but leaves the assessment for the counsellor to confirm. Never
    "not acute" by default in a chat like that. `risk` is the escalation
    service's summary of the chat (or None). A coded chat keeps its coding."""
    if coding["coded"] or not risk:
        return {**coding, "prefilled": None}
    if risk.get("acute_danger"):
        return {
            **coding,
            "acute_danger_assessed": True,
            "acute_danger": True,
            "prefilled": {"source": "escalation", "fields": ["acute_danger_assessed", "acute_danger"]},
        }
    if risk.get("risk") and risk.get("severity") == "high":
        return {
            **coding,
            "acute_danger": True,
            "prefilled": {"source": "risk_screen", "fields": ["acute_danger"], "reason": risk.get("reason")},
        }
    return {**coding, "prefilled": None}


def get_coding(session, facts, actor, taxonomy, lang="nb", risk=None):
    """`facts` is the gateway's read of the chat: until chat_ended has been
    recorded (the chat is open, or its end is still on its way) the form is
    drawn from it. Reading a coding writes nothing."""
    row = None if facts["status"] in OPEN else _row(session, facts["chat_id"])
    if row is None:
        if facts["status"] not in OPEN and not _may_code(facts.get("counsellor_id"), actor):
            raise NotFound("No such chat.")
        return prefill(_draft_view(facts), risk)
    if not _may_code(row.counsellor_id, actor):
        raise NotFound("No such chat.")
    return prefill(view(row, taxonomy_for(session, row.taxonomy_version, taxonomy), lang), risk)


def save_coding(session, outbox, facts, body, actor, taxonomy, now=None, lang="nb"):
    # Messages in the console's language (`lang`); codes and field names stay.
    if facts["status"] in OPEN:
        raise Conflict(messages.sentence("A chat is coded when it has ended.", lang))
    if not isinstance(body, dict):
        raise Invalid(
            messages.sentence("The coding must be an object.", lang),
            {"_schema": [messages.message("Must be an object.", lang)]},
        )
    try:
        coding = CODING_SCHEMA.load(body)
    except ValidationError as error:
        raise Invalid(
            messages.sentence("The coding is not valid.", lang), messages.localise(error.messages, lang)
        ) from error
    row = _row(session, facts["chat_id"])
    if row is None:
        # chat_ended is on its way (the outbox publishes within moments)
        raise Conflict(messages.sentence(RECORDING, lang))
    if not _may_code(row.counsellor_id, actor):
        raise NotFound("No such chat.")
    problems = check_coding(taxonomy, coding, (parse_iso(row.started_at), parse_iso(row.ended_at)), lang)
    if problems:
        raise Invalid(messages.sentence("The coding breaks the helpline's rule.", lang), problems)
    now = now or utcnow()
    stored = {
        **coding,
        "time_in": iso(coding.get("time_in")) or iso(row.started_at),
        "time_out": iso(coding.get("time_out")) or iso(row.ended_at),
    }
    register_taxonomy(session, taxonomy)
    corrected = bool(row.coded)
    session.execute(
        update(records)
        .where(records.c.chat_id == row.chat_id)
        .values(coded=True, coding=stored, taxonomy_version=taxonomy.version, coded_at=now, coded_by=actor.get("id"))
    )
    session.execute(
        history.insert().values(
            chat_id=row.chat_id,
            coding=stored,
            taxonomy_version=taxonomy.version,
            changed_by=actor.get("id") or "unknown",
            changed_by_name=actor.get("name"),
            changed_at=now,
        )
    )
    outbox.add(
        session,
        ev.CHAT_CODED,
        {
            "chat_id": row.chat_id,
            "counsellor_id": row.counsellor_id,
            "coded_at": iso(now),
            "acute_danger": stored["acute_danger"],
            "corrected": corrected,
        },
    )
    return view(_row(session, row.chat_id), taxonomy, lang)


def coding_history(session, chat_id, actor):
    """Every saved version of a chat's coding, oldest first, with who changed
    what and when."""
    row = _row(session, chat_id)
    if row is None or not _may_code(row.counsellor_id, actor):
        raise NotFound("No such chat.")
    rows = session.execute(select(history).where(history.c.chat_id == chat_id).order_by(history.c.id)).all()
    out: list[dict] = []
    before = None
    for r in rows:
        coding = r.coding or {}
        changed = [k for k in AUDITED if before is None or coding.get(k) != before.get(k)]
        out.append(
            {
                "version": len(out) + 1,
                "coding": coding,
                "taxonomy_version": r.taxonomy_version,
                "changed_by": r.changed_by,
                "changed_by_name": r.changed_by_name,
                "changed_at": iso(r.changed_at),
                "changed_fields": changed,
                "correction": before is not None,
                # the console's short form of one version
                "categories": coding.get("categories", []),
                "coded_at": iso(r.changed_at),
                "coded_by": {"id": r.changed_by, "name": r.changed_by_name},
            }
        )
        before = coding
    return out


# -- nothing uncoded goes unnoticed -----------------------------------------------------------


def uncoded(session, actor):
    query = select(records).where(*_uncoded_query()).order_by(records.c.ended_at)
    if actor.get("role") not in SUPERVISORS:
        query = query.where(records.c.counsellor_id == actor.get("id"))
    return [
        {
            "chat_id": r.chat_id,
            "counsellor": {"id": r.counsellor_id, "name": r.counsellor_name},
            "started_at": iso(r.started_at),
            "ended_at": iso(r.ended_at),
            "status": r.status,
            "reminders": r.reminders or 0,
        }
        for r in session.execute(query)
    ]


def remind_uncoded(session, outbox, after_s, max_reminders, now=None, limit=200):
    """Remind again about chats still uncoded `after_s` seconds after the chat
    ended (or after the last reminder), at most `max_reminders` times; the last
    reminder is marked overdue, and the gateway also tells supervisors.
    Safe on several replicas: each reminder is claimed by a conditional update."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=after_s)
    due = session.execute(
        select(records.c.chat_id, records.c.counsellor_id, records.c.reminders)
        .where(
            *_uncoded_query(),
            records.c.reminders < max_reminders,
            or_(and_(records.c.reminded_at.is_(None), records.c.ended_at <= cutoff), records.c.reminded_at <= cutoff),
        )
        .order_by(records.c.ended_at)
        .limit(limit)
    ).all()
    counts, sent = {}, 0
    for r in due:
        claimed = session.execute(
            update(records)
            .where(records.c.chat_id == r.chat_id, records.c.reminders == r.reminders, records.c.coded.is_(False))
            .values(reminders=r.reminders + 1, reminded_at=now)
        ).rowcount
        if not claimed:
            continue
        if r.counsellor_id not in counts:
            counts[r.counsellor_id] = _uncoded_count(session, r.counsellor_id)
        outbox.add(
            session,
            ev.CODING_REQUIRED,
            {
                "chat_id": r.chat_id,
                "counsellor_id": r.counsellor_id,
                "uncoded": counts[r.counsellor_id],
                "reminder": r.reminders + 1,
                "overdue": r.reminders + 1 >= max_reminders,
            },
        )
        sent += 1
    return sent


# -- statistics -----------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_range(date_from, date_to, tz=DEFAULT_TZ):
    """The range of GET /stats: each end a date (a whole local day, both ends
    included) or an ISO 8601 time (naive means UTC); 422 naming the bad end."""
    problems: dict[str, list[str]] = {}
    parsed: dict[str, dt.date | None] = {}
    for key, value in (("from", date_from), ("to", date_to)):
        if value in (None, ""):
            parsed[key] = None
            continue
        try:
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError
            parsed[key] = dt.date.fromisoformat(value) if _DATE.match(value) else parse_iso(value)
        except (TypeError, ValueError):
            problems[key] = ["Not an ISO 8601 date (2024-03-01) or time (2024-03-01T00:00:00Z)."]
    if problems:
        raise Invalid("Bad date range.", problems)
    start, end = range_bounds(parsed["from"], parsed["to"], tz)
    if start is not None and end is not None and start >= end:
        raise Invalid("Bad date range.", {"to": ["Must be after 'from'."]})
    return parsed["from"], parsed["to"], start, end


def stats_records(session, start, end):
    query = select(records, at_risk.c.chat_id.label("risk_id")).outerjoin(
        at_risk, at_risk.c.chat_id == records.c.chat_id
    )
    if start is not None:
        query = query.where(records.c.started_at >= start)
    if end is not None:
        query = query.where(records.c.started_at < end)
    out = []
    for r in session.execute(query):
        coding = r.coding or {}
        out.append(
            {
                "chat_id": r.chat_id,
                "started_at": parse_iso(r.started_at),
                "assigned_at": parse_iso(r.assigned_at),
                "ended_at": parse_iso(r.ended_at),
                "status": r.status,
                "at_risk": r.risk_id is not None,
                "coded": bool(r.coded),
                "gender": coding.get("gender", r.gender),
                "age": coding.get("age", r.age),
                "contact_type": coding.get("contact_type"),
                "categories": coding.get("categories", []),
                "acute_danger": coding.get("acute_danger"),
            }
        )
    return out


def statistics(session, taxonomy, date_from=None, date_to=None, tz=DEFAULT_TZ):
    date_from, date_to, start, end = parse_range(date_from, date_to, tz)
    result = compute_stats(stats_records(session, start, end), taxonomy, date_from, date_to, tz)
    result["taxonomy_version"] = taxonomy.version
    return result
