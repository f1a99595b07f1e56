"""Escalation domain on a real database (SQLite and PostgreSQL): alerts and
their repeats, each kind's status machine, access, sealing and the audit log."""

import datetime as dt
from dataclasses import dataclass
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from chatvakt import vocabulary
from chatvakt.clock import utcnow
from chatvakt.errors import Conflict, Forbidden, Invalid, NotFound
from chatvakt.testing import run
from services.escalation import domain, report
from services.escalation.models import alerts, audit, escalations
from services.escalation.vault import Vault

SUP = {"role": "supervisor", "id": "sup-1", "name": "Siri Vakt"}
COUNSELLOR = {"role": "counsellor", "id": "c-1", "name": "Cathrine"}
OTHER = {"role": "counsellor", "id": "c-2", "name": "Ola"}


@dataclass(frozen=True)
class Finding:
    category: str
    severity: str
    terms: tuple
    reason: str


class FakeScreen:
    """The port the risk screen fills; its own tests live in test_risk.py."""

    def screen(self, text):
        if "danger" in text:
            return [Finding("suicide", "high", ("x",), "mentions wanting to die")]
        if "worry" in text:
            return [Finding("self_harm", "medium", ("y",), "mentions self-harm")]
        return []


def raise_(db, vault, kind, details, actor=COUNSELLOR, facts=None, chat_id="chat-1"):
    result, _ = run(db, domain.raise_escalation, vault, chat_id, kind, details, actor, "c-1", facts)
    return result["escalation_id"]


def patch(db, vault, escalation_id, actor=COUNSELLOR, **kw):
    return run(db, domain.update_escalation, vault, escalation_id, actor, **kw)[0]


# --- screening and alerts ------------------------------------------------------


def test_a_risky_message_is_flagged_once_and_opens_one_alert(db):
    payload, outbox = run(db, domain.screen_message, FakeScreen(), "chat-1", 3, "danger", "c-1")
    assert outbox.names() == ["risk_detected"]
    assert payload["counsellor_id"] == "c-1" and payload["alert_id"]
    assert "danger" not in payload["reason"]
    again, outbox = run(db, domain.screen_message, FakeScreen(), "chat-1", 3, "danger", "c-1")
    assert again is None and outbox.events == []  # a redelivered message records nothing new
    second, _ = run(db, domain.screen_message, FakeScreen(), "chat-1", 4, "worry", "c-1")
    assert second["alert_id"] == payload["alert_id"]  # one open alert per chat
    with db() as session:
        row = session.execute(select(alerts)).one()
        assert row.severity == "high"  # the most severe finding stays
    assert run(db, domain.screen_message, FakeScreen(), "chat-1", 5, "hello")[0] is None


def test_an_unacknowledged_alert_is_repeated_then_raised_and_stops_when_acknowledged(db):
    start = utcnow()
    payload, _ = run(db, domain.screen_message, FakeScreen(), "chat-2", 1, "danger", None, now=start)
    at = lambda s: start + dt.timedelta(seconds=s)  # noqa: E731
    assert run(db, domain.due_alerts, 60, 180, now=at(30))[0] == []
    sent, outbox = run(db, domain.due_alerts, 60, 180, now=at(61))
    assert outbox.names() == ["alert_repeated"]
    assert sent[0]["repeat"] == 1 and sent[0]["raised"] is False
    assert run(db, domain.due_alerts, 60, 180, now=at(90))[0] == []
    sent, _ = run(db, domain.due_alerts, 60, 180, now=at(181))
    assert sent[0]["raised"] is True and sent[0]["repeat"] == 2
    visible, _ = run(db, lambda s, o: domain.open_alerts(s, COUNSELLOR))
    assert [a["chat_id"] for a in visible] == ["chat-2"]  # still waiting: every counsellor sees it
    with pytest.raises(NotFound):
        run(db, domain.acknowledge_alerts, "chat-2", SUP, "nope")
    acked, outbox = run(db, domain.acknowledge_alerts, "chat-2", SUP)
    assert acked["acknowledged"] == [payload["alert_id"]] and outbox.names() == ["alert_acknowledged"]
    assert run(db, domain.due_alerts, 60, 180, now=at(400))[0] == []
    assert run(db, domain.acknowledge_alerts, "chat-2", SUP)[0]["acknowledged"] == []


def test_alerts_follow_the_chat_to_its_counsellor(db):
    run(db, domain.screen_message, FakeScreen(), "chat-3", 1, "danger", None)
    run(db, domain.chat_counsellor_changed, "chat-3", "c-2")
    assert [a["chat_id"] for a in run(db, lambda s, o: domain.open_alerts(s, OTHER))[0]] == ["chat-3"]
    assert run(db, lambda s, o: domain.open_alerts(s, COUNSELLOR))[0] == []


# --- the kinds -------------------------------------------------------------------


def test_acute_danger_checklist_to_closed(db, vault):
    eid = raise_(db, vault, "acute_danger", {"location": "Storgata 1", "situation": "alone"})
    out = patch(db, vault, eid, details={"emergency_number": "113"}, status="emergency_contacted")
    assert out["status"] == "emergency_contacted" and out["details"]["called_by"] == "Cathrine"
    assert out["details"]["called_at"] and "location" not in out["details"]
    assert out["identifying"] == {"fields": ["location"], "visible": False}
    assert [n["number"] for n in out["emergency_numbers"]] == ["112", "113", "110"]
    with pytest.raises(Conflict):
        patch(db, vault, eid, status="open")
    closed = patch(db, vault, eid, status="closed")
    assert closed["open"] is False and [h["status"] for h in closed["history"]] == [
        "open",
        "emergency_contacted",
        "closed",
    ]
    with pytest.raises(Conflict):
        patch(db, vault, eid, details={"outcome": "late"})


def test_acute_danger_needs_the_number_before_emergency_contacted(db, vault):
    eid = raise_(db, vault, "acute_danger", {})
    with pytest.raises(Invalid) as error:
        patch(db, vault, eid, status="emergency_contacted")
    assert "details.emergency_number" in error.value.fields


def test_bad_details_are_422_with_fields(db, vault):
    with pytest.raises(Invalid) as error:
        raise_(db, vault, "acute_danger", {"emergency_number": "999", "bogus": 1, "person": {"name": 5}})
    assert {"details.emergency_number", "details.bogus", "details.person.name"} <= set(error.value.fields)
    with pytest.raises(Invalid) as error:
        raise_(db, vault, "network_contact", {"contact": "parent"})
    assert "details.consent" in error.value.fields
    with pytest.raises(Invalid) as error:
        raise_(db, vault, "referral", {"services": ["police", "nowhere"]})
    assert "details.services" in error.value.fields
    with pytest.raises(Invalid):
        raise_(db, vault, "nonsense", {})


def test_report_of_concern_draft_approval_sent_acknowledged_with_deadline(db, vault):
    facts = {
        "chat": {
            "started_at": "2026-01-05T22:10:00Z",
            "ended_at": "2026-01-05T22:50:00Z",
            "gender": "girl",
            "age": 12,
            "counsellor_name": "Cathrine",
        },
        "coding": {"categories": ["violence_physical"], "acute_danger": False, "age": 12, "gender": "girl"},
    }
    eid = raise_(db, vault, "report_of_concern", {"person": {"name": "Kari Nordmann"}}, facts=facts)
    draft = run(db, domain.get_escalation, vault, eid, COUNSELLOR)[0]
    assert draft["status"] == "draft" and draft["details"]["child"] == {"gender": "girl", "age": 12}
    assert draft["details"]["reporter"]["organisation"] == "Alarmtelefonen"
    assert "05.01.2026" in draft["details"]["observed"]
    assert draft["facts"]["categories"] == ["violence_physical"] and draft["deadline"] is None
    assert "person" not in draft["details"]
    with pytest.raises(Invalid):  # the content DESIGN.md names is needed before approval
        patch(db, vault, eid, SUP, status="approved")
    patch(
        db,
        vault,
        eid,
        details={
            "cause": "Hun blir slått hjemme.",
            "examples": ["Blåmerker"],
            "duration": "over_time",
            "others_who_know": "Læreren",
        },
    )
    with pytest.raises(Forbidden):
        patch(db, vault, eid, status="approved")
    approved = patch(db, vault, eid, SUP, status="approved")
    assert approved["details"]["person"] == {"name": "Kari Nordmann"}
    with pytest.raises(Conflict):  # content is fixed once approved
        patch(db, vault, eid, details={"cause": "changed"})
    sent = patch(db, vault, eid, details={"sent_via": "post"}, status="sent")
    assert sent["sent_at"] and sent["deadline"]
    from chatvakt.clock import parse_iso

    assert parse_iso(sent["deadline"]) - parse_iso(sent["sent_at"]) == dt.timedelta(days=7)
    acked = patch(db, vault, eid, details={"reference": "BV-2026-17"}, status="acknowledged")
    assert acked["open"] is True and acked["next"] == ["closed"]
    pdf = report.render(run(db, domain.report_document, vault, eid, SUP)[0])
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    with pytest.raises(Forbidden):
        run(db, domain.report_document, vault, eid, COUNSELLOR)
    assert patch(db, vault, eid, status="closed")["open"] is False


def test_network_contact_and_referral(db, vault):
    eid = raise_(
        db,
        vault,
        "network_contact",
        {"contact": "school_nurse", "consent": "given", "contact_person": {"name": "Helse Søster"}},
    )
    out = patch(db, vault, eid, status="contacted")
    assert out["details"]["contacted_by"] == "Cathrine" and "contact_person" not in out["details"]
    assert patch(db, vault, eid, status="closed")["status"] == "closed"
    rid = raise_(db, vault, "referral", {"services": ["korspahalsen", "ungno"]})
    got = run(db, domain.get_escalation, vault, rid, COUNSELLOR)[0]
    assert got["status"] == "recorded" and got["open"] is False and got["next"] == []


def test_only_the_chats_counsellor_and_supervisors_see_an_escalation(db, vault):
    eid = raise_(db, vault, "acute_danger", {"person": {"name": "Per"}})
    with pytest.raises(NotFound):
        run(db, domain.get_escalation, vault, eid, OTHER)
    with pytest.raises(NotFound):
        patch(db, vault, eid, OTHER, status="closed")
    assert run(db, domain.list_escalations, vault, OTHER)[0] == []
    assert run(db, domain.get_escalation, vault, eid, SUP)[0]["details"]["person"] == {"name": "Per"}
    with pytest.raises(Forbidden):
        run(db, domain.audit_trail, eid, COUNSELLOR)
    with pytest.raises(Invalid):  # a counsellor cannot blank what they cannot see
        patch(db, vault, eid, details={"person": None})


def test_details_are_sealed_at_rest_and_every_access_is_audited(db, vault, tmp_path):
    eid = raise_(
        db,
        vault,
        "report_of_concern",
        {"person": {"name": "Zxqvna Plimsoll", "address": "Ørneveien 77"}, "cause": "Secretcause"},
    )
    run(db, domain.get_escalation, vault, eid, SUP)
    patch(db, vault, eid, details={"examples": ["one"]})
    with db() as session:
        sealed = session.execute(select(escalations.c.sealed)).scalar_one()
        details = session.execute(select(audit.c.detail)).scalars().all()
    assert "Zxqvna" not in sealed and "Secretcause" not in sealed
    assert not any("Zxqvna" in (d or "") for d in details)
    for path in tmp_path.glob("*.sqlite3*"):
        raw = path.read_bytes()
        assert b"Zxqvna" not in raw and b"Secretcause" not in raw and "Ørneveien".encode() not in raw
    trail = run(db, domain.audit_trail, eid, SUP)[0]
    assert [(t["action"], t["actor_id"]) for t in trail] == [("raised", "c-1"), ("read", "sup-1"), ("edited", "c-1")]
    assert trail[2]["detail"] == "fields: examples"
    with pytest.raises(RuntimeError):  # another key cannot open it
        run(db, domain.get_escalation, Vault([Fernet.generate_key()]), eid, SUP)


def test_the_status_machines_agree_with_the_vocabulary():
    """One rule: a status is open when the vocabulary says so, and exactly
    then has a way out in the escalation's status machine."""
    assert set(domain.MACHINES) == set(vocabulary.ESCALATION_KINDS)
    for kind, (initial, moves) in domain.MACHINES.items():
        assert set(moves) == set(vocabulary.ESCALATION_STATUSES[kind])
        assert initial in moves
        for status, outs in moves.items():
            assert domain.is_open(kind, status) == bool(outs) == vocabulary.escalation_open(kind, status)


def test_the_events_carry_the_open_flag_of_every_kind(db, vault):
    """A referral is done when written: its events say so from the start."""
    details = {"network_contact": {"contact": "school", "consent": "given"}, "referral": {"services": ["ungno"]}}
    for kind in vocabulary.ESCALATION_KINDS:
        raise_(db, vault, kind, details.get(kind, {}), chat_id=f"chat-{kind}")
    with db() as session:
        rows = session.execute(select(domain.escalations)).all()
    assert {r.kind: bool(r.open) for r in rows} == {
        "acute_danger": True,
        "report_of_concern": True,
        "network_contact": True,
        "referral": False,
    }


def test_status_open_lists_every_open_escalation(db, vault):
    raise_(db, vault, "report_of_concern", {}, chat_id="a")
    raise_(db, vault, "referral", {"services": ["ungno"]}, chat_id="b")
    listed = run(db, domain.list_escalations, vault, SUP, "open")[0]
    assert [e["chat_id"] for e in listed] == ["a"]


def test_a_flood_chat_is_recorded_and_announced_but_alerts_no_one(db):
    """issue 12: a suspect chat's risk still orders the queue (risk_detected),
    but opens no alert: supervisors get one flood notice, not one per chat."""
    payload, outbox = run(db, domain.screen_message, FakeScreen(), "flood-1", 2, "danger", None, suspect=True)
    assert outbox.names() == ["risk_detected"]
    assert payload["suspect"] is True and payload["alert_id"] is None
    with db() as session:
        assert session.execute(select(alerts)).all() == []
        assert domain.flags_for(session, "flood-1")  # the risk is recorded
    assert run(db, domain.due_alerts, 0, 0)[0] == []  # nothing to repeat or raise either
    # a chat not in the flood still alerts
    real, _ = run(db, domain.screen_message, FakeScreen(), "real-1", 2, "danger", None)
    assert real["alert_id"] and "suspect" not in real


# -- issue 14: the child's own yes --------------------------------------------


def test_a_childs_yes_alerts_like_the_screen_once(db):
    found, outbox = run(db, domain.self_report, "chat-9", True)
    assert outbox.names() == ["risk_detected"]
    assert found["category"] == "self_report" and found["severity"] == "high"
    assert found["reason"] == domain.SELF_REPORT_REASON and found["alert_id"]
    with db() as session:
        assert [a["reason"] for a in domain.open_alerts(session, SUP)] == [domain.SELF_REPORT_REASON]
    again, outbox = run(db, domain.self_report, "chat-9", True)
    assert again is None and outbox.names() == []
    nothing, outbox = run(db, domain.self_report, "chat-8", False)
    assert nothing is None and outbox.names() == []


def test_a_flood_chats_yes_is_recorded_without_an_alert(db):
    found, outbox = run(db, domain.self_report, "chat-7", True, None, True)
    assert found["suspect"] is True and found["alert_id"] is None
    with db() as session:
        assert domain.open_alerts(session, SUP) == []
        assert [f["category"] for f in domain.flags_for(session, "chat-7")] == ["self_report"]


class ContextScreen(FakeScreen):
    """A screen that reads several messages, as the learned one does."""

    def __init__(self):
        self.read = []

    def screen_messages(self, messages):
        self.read.append(list(messages))
        return self.screen(" ".join(messages))


def test_a_later_message_is_screened_alone_on_a_read_and_a_first_one_is_left_to_the_unit(db, vault):
    # issue 16: the service opens a unit (the write lock) only for the child's
    # first messages or a finding, and reads on a plain Core connection, whose
    # one query runs on the driver's cursor (no statement through SQLAlchemy's
    # execution).
    from sqlalchemy import event

    from chatvakt.service import read_core as read

    executed = []

    def count(_conn, _cursor, statement, *_args):
        executed.append(statement)

    screen = ContextScreen()
    for seq in (2, 3, 4):
        assert read(db, domain.findings_alone, screen, vault, "chat-8", seq, "hei") is None
        run(db, domain.screen_message, screen, "chat-8", seq, "hei", None, None, vault)
    assert read(db, domain.findings_alone, screen, vault, "chat-8", 3, "hei") is None  # kept: one of the first
    event.listen(db.kw["bind"], "before_cursor_execute", count)
    try:
        assert read(db, domain.findings_alone, screen, vault, "chat-8", 5, "hei igjen") == []
    finally:
        event.remove(db.kw["bind"], "before_cursor_execute", count)
    assert executed == []
    assert read(db, domain.findings_alone, screen, vault, "chat-8", 6, "danger")[0].category == "suicide"
    assert screen.read[-2:] == [["hei igjen"], ["danger"]]
    assert read(db, domain.findings_alone, FakeScreen(), None, "chat-9", 2, "worry")[0].category == "self_harm"
    # What the read found is recorded as it is: the message is not screened again.
    found = read(db, domain.findings_alone, screen, vault, "chat-8", 7, "danger")
    screened = len(screen.read)
    payload, outbox = run(db, domain.screen_message, screen, "chat-8", 7, "danger", None, None, vault, found=found)
    assert payload["category"] == "suicide" and outbox.names() == ["risk_detected"]
    assert len(screen.read) == screened


def test_a_chat_read_once_with_its_first_messages_kept_is_screened_without_a_read(db, vault):
    # issue 16: the read was a connection, a transaction and a query per message.
    from chatvakt.service import read_core as read

    screen = ContextScreen()
    kept = domain.KeptContexts()
    for seq in (2, 3):
        assert domain.findings_remembered(kept, screen, vault, "chat-10", seq, "hei") is domain.UNREAD
        assert read(db, domain.findings_alone, screen, vault, "chat-10", seq, "hei", kept) is None
        run(db, domain.screen_message, screen, "chat-10", seq, "hei", None, None, vault)
    assert kept.seqs("chat-10") is None  # two of three kept: not full, nothing remembered
    assert read(db, domain.findings_alone, screen, vault, "chat-10", 4, "hei", kept) is None
    run(db, domain.screen_message, screen, "chat-10", 4, "hei", None, None, vault)
    assert kept.seqs("chat-10") is None  # the read came before the third was kept
    assert read(db, domain.findings_alone, screen, vault, "chat-10", 5, "hei igjen", kept) == []
    assert kept.seqs("chat-10") == {2, 3, 4}

    def no_read(*_args, **_kwargs):
        raise AssertionError("read the database")

    with mock.patch.object(domain._CONTEXT, "rows", no_read):
        assert domain.findings_remembered(kept, screen, vault, "chat-10", 6, "hei igjen") == []
        assert domain.findings_remembered(kept, screen, vault, "chat-10", 7, "danger")[0].category == "suicide"
        # A redelivered first message is the unit's to see again (idempotent).
        assert domain.findings_remembered(kept, screen, vault, "chat-10", 3, "hei") is domain.UNREAD
        assert domain.findings_remembered(kept, screen, vault, "chat-11", 5, "hei") is domain.UNREAD
        assert domain.findings_remembered(kept, FakeScreen(), None, "chat-10", 8, "x") is domain.UNREAD
    assert screen.read[-2:] == [["hei igjen"], ["danger"]]


def test_kept_contexts_forget_the_oldest_chat_past_their_limit():
    kept = domain.KeptContexts(limit=2)
    kept.remember("a", frozenset({1, 2, 3}))
    kept.remember("b", frozenset({1, 2, 3}))
    kept.remember("a", frozenset({1, 2, 3}))  # known already: nothing forgotten
    assert kept.seqs("b") is not None
    kept.remember("c", frozenset({2, 3, 4}))
    assert kept.seqs("a") is None and kept.seqs("b") == {1, 2, 3} and kept.seqs("c") == {2, 3, 4}
