"""The relay's domain on a real database, without a broker."""

import datetime as dt

import pytest

from chatvakt.clock import utcnow
from chatvakt.errors import Conflict, Invalid, NotFound, RateLimited
from chatvakt.testing import run
from services.chat import domain

COUNSELLOR = {"role": "counsellor", "id": "c1"}


def child(chat_id):
    return {"role": "child", "chat_id": chat_id}


def test_start_greets_and_stores_the_first_message(db):
    chat, outbox = run(db, domain.start_chat, helpline="Alarmtelefonen", gender="girl", age=12, message="  hei  ")
    assert chat["welcome"] == "Hei, velkommen til Alarmtelefonen. Hva ønsker du å snakke med oss om?"
    assert outbox.names() == ["chat_started", "message_posted", "message_posted"]
    with db() as session:
        messages = domain.list_messages(session, chat["chat_id"], child(chat["chat_id"]))
    assert [(m["seq"], m["sender"], m["text"]) for m in messages] == [
        (1, "system", chat["welcome"]),
        (2, "child", "hei"),
    ]


def test_sequence_is_gap_free_and_client_msg_id_idempotent(db):
    chat, _ = run(db, domain.start_chat, helpline="X")
    me = child(chat["chat_id"])
    first, _ = run(db, domain.post_message, chat["chat_id"], me, "en", "a")
    second, _ = run(db, domain.post_message, chat["chat_id"], me, "to", "b")
    again, outbox = run(db, domain.post_message, chat["chat_id"], me, "en", "a")
    assert (first["seq"], second["seq"]) == (2, 3)
    assert again["seq"] == 2 and again["duplicate"] and outbox.events == []


def test_text_limits(db):
    chat, _ = run(db, domain.start_chat, helpline="X")
    me = child(chat["chat_id"])
    with pytest.raises(Invalid):
        run(db, domain.post_message, chat["chat_id"], me, " \n ")
    with pytest.raises(Invalid):
        run(db, domain.post_message, chat["chat_id"], me, "x" * 4001)
    ok, _ = run(db, domain.post_message, chat["chat_id"], me, "x" * 4000)
    assert ok["seq"] == 2


def test_visibility_and_roles(db):
    chat, _ = run(db, domain.start_chat, helpline="X")
    with db() as session:
        with pytest.raises(NotFound):
            domain.get_chat(session, chat["chat_id"], child("someone-else"))
        with pytest.raises(NotFound):
            domain.get_chat(session, chat["chat_id"], COUNSELLOR)  # not assigned yet
        assert domain.get_chat(session, chat["chat_id"], {"role": "supervisor", "id": "s"})
    with pytest.raises(NotFound):
        run(db, domain.post_message, chat["chat_id"], COUNSELLOR, "hei")
    run(db, domain.activate, chat["chat_id"], "c1", "Cathrine Hansen")
    view, outbox = run(db, domain.activate, chat["chat_id"], "c1", "Cathrine Hansen")
    assert outbox.events == []  # idempotent: no second "connected" message
    assert view["status"] == "active" and view["counsellor"]["name"] == "Cathrine"
    with pytest.raises(Conflict):
        run(db, domain.activate, chat["chat_id"], "c2", "Other")
    sent, _ = run(db, domain.post_message, chat["chat_id"], COUNSELLOR, "Hei, jeg heter Cathrine")
    assert sent["seq"] == 3


def test_end_waiting_is_abandoned_and_ended_rejects_messages(db):
    chat, _ = run(db, domain.start_chat, helpline="X")
    me = child(chat["chat_id"])
    view, outbox = run(db, domain.end_chat, chat["chat_id"], me, "quick_exit")
    assert view["status"] == "abandoned" and view["ended_by"] == "quick_exit"
    ended = dict(outbox.events)["chat_ended"]
    assert ended["status"] == "abandoned"
    with pytest.raises(Conflict):
        run(db, domain.post_message, chat["chat_id"], me, "hallo?")
    again, outbox = run(db, domain.end_chat, chat["chat_id"], me)
    assert again["status"] == "abandoned" and outbox.events == []


SRC = "0123456789abcdef"


def test_source_and_suspect_travel_on_the_chat_and_its_events(db):
    early, _ = run(db, domain.start_chat, helpline="A", message="hei", source=SRC)
    chat, outbox = run(db, domain.start_chat, helpline="A", message="hei", source=SRC, suspect=True)
    started = dict(outbox.events)["chat_started"]
    assert started["source"] == SRC and started["suspect"] is True
    assert all(p["suspect"] for name, p in outbox.events if name == "message_posted")
    # the source's earlier open chat is part of the same flood from now on
    _, outbox = run(db, domain.post_message, early["chat_id"], child(early["chat_id"]), "igjen")
    assert outbox.events[0][1]["suspect"] is True


@pytest.mark.parametrize(
    "source,suspect", [("10.0.0.1", False), ("ABCDEF0123456789", False), ("0123", False), (SRC, "yes"), (123, False)]
)
def test_a_bad_origin_is_a_clear_4xx(db, source, suspect):
    with pytest.raises(Invalid):
        run(db, domain.start_chat, helpline="A", source=source, suspect=suspect)


def test_the_queue_letting_go_of_an_absent_child_ends_the_chat_as_abandoned(db):
    chat, _ = run(db, domain.start_chat, helpline="A")
    done, outbox = run(db, domain.end_absent, chat["chat_id"])
    assert done and dict(outbox.events)["chat_ended"]["status"] == "abandoned"
    assert dict(outbox.events)["chat_ended"]["ended_by"] == "absent"
    assert run(db, domain.end_absent, chat["chat_id"])[0] is False  # once
    assert run(db, domain.end_absent, "missing")[0] is False


# -- issue 14: the child says they are in danger -------------------------------


def test_in_danger_at_the_start_is_stored_and_announced(db):
    chat, outbox = run(db, domain.start_chat, helpline="X", message="hei", in_danger=True)
    assert outbox.names()[-1] == "danger_reported"
    assert outbox.events[-1][1]["in_danger"] is True and outbox.events[-1][1]["suspect"] is False
    with db() as session:
        assert domain.get_chat(session, chat["chat_id"], COUNSELLOR | {"role": "supervisor"})["in_danger"] is True
    quiet, outbox = run(db, domain.start_chat, helpline="X")
    assert "danger_reported" not in outbox.names()
    with db() as session:
        assert domain.get_chat(session, quiet["chat_id"], child(quiet["chat_id"]))["in_danger"] is None


def test_saying_it_later_is_idempotent_and_the_childs_own(db):
    chat, _ = run(db, domain.start_chat, helpline="X", in_danger=False, source="0123456789abcdef", suspect=True)
    me = child(chat["chat_id"])
    said, outbox = run(db, domain.report_danger, chat["chat_id"], me, True)
    assert said["changed"] and outbox.names() == ["danger_reported"]
    assert outbox.events[0][1]["suspect"] is True  # a flood chat stays one
    again, outbox = run(db, domain.report_danger, chat["chat_id"], me, True)
    assert not again["changed"] and outbox.names() == []
    with pytest.raises(NotFound):
        run(db, domain.report_danger, chat["chat_id"], child("other"), True)
    with pytest.raises(Invalid):
        run(db, domain.report_danger, chat["chat_id"], me, "yes")
    run(db, domain.end_chat, chat["chat_id"], me)
    with pytest.raises(Conflict):
        run(db, domain.report_danger, chat["chat_id"], me, True)


# -- issue 13: the child's language ----------------------------------------------


def test_the_childs_language_is_kept_and_a_switch_is_told_to_staff_only(db):
    chat, _ = run(db, domain.start_chat, helpline="X", message="hi", lang="en")
    me = child(chat["chat_id"])
    staff = COUNSELLOR | {"role": "supervisor"}
    with db() as session:
        assert domain.get_chat(session, chat["chat_id"], staff)["lang"] == "en"
    switched, outbox = run(db, domain.set_lang, chat["chat_id"], me, "nb")
    assert switched == {"chat_id": chat["chat_id"], "lang": "nb", "changed": True}
    posted = outbox.events[-1][1]
    assert (posted["kind"], posted["visibility"], posted["sender"]) == ("lang", "counsellors", "system")
    again, outbox = run(db, domain.set_lang, chat["chat_id"], me, "nb")
    assert not again["changed"] and outbox.names() == []
    with db() as session:
        assert domain.get_chat(session, chat["chat_id"], staff)["lang"] == "nb"
        # the child's own transcript has no line about it
        assert all(
            m["sender"] != "system" or "byttet" not in m["text"]
            for m in domain.list_messages(session, chat["chat_id"], me)
        )
        assert any(
            m.get("kind") == "lang" or "byttet til norsk" in m["text"]
            for m in domain.list_messages(session, chat["chat_id"], staff)
        )
    with pytest.raises(Invalid):
        run(db, domain.set_lang, chat["chat_id"], me, "de")
    with pytest.raises(Invalid):
        run(db, domain.start_chat, helpline="X", lang="sv")
    run(db, domain.end_chat, chat["chat_id"], me)
    with pytest.raises(Conflict):
        run(db, domain.set_lang, chat["chat_id"], me, "en")
    quiet, _ = run(db, domain.start_chat, helpline="X")
    with db() as session:
        assert domain.get_chat(session, quiet["chat_id"], staff)["lang"] is None


def test_the_relay_path_runs_on_a_plain_connection_as_the_service_runs_it(db):
    # ChatService.post_message runs through run_core_unit: a Core connection,
    # no ORM session (issue 16). Every statement of the path must work there,
    # the outbox row included, on SQLite and on PostgreSQL.
    from sqlalchemy import select
    from sqlalchemy.engine import Connection

    from chatvakt.outbox import Outbox
    from chatvakt.service import run_core_unit
    from services.chat.models import outbox as outbox_table

    chat, _ = run(db, domain.start_chat, helpline="X")
    me = child(chat["chat_id"])
    seen, handed = [], []

    class Box(Outbox):
        def publish(self, sessions, dispatch, rows):
            handed.extend(rows)

    def post(session, box, *args):
        seen.append(type(session))
        return domain.post_message(session, box, *args)

    box = Box(outbox_table, "chat")
    first = run_core_unit(db, box, None, post, chat["chat_id"], me, "hei", "m1")
    again = run_core_unit(db, box, None, post, chat["chat_id"], me, "hei", "m1")
    assert issubclass(seen[0], Connection)
    assert first["seq"] == again["seq"] and again["duplicate"]
    assert [row.event for row in handed] == ["message_posted"]
    with db() as session:
        assert handed[0].id in session.execute(select(outbox_table.c.id)).scalars().all()


def test_the_relay_path_runs_no_statement_through_sqlalchemys_execution(db):
    # A child's message is a select, an update, two inserts and a commit: all
    # on the driver's cursor (chatvakt.db.Prepared, and BEGIN IMMEDIATE on
    # SQLite), because SQLAlchemy's work around each statement cost more CPU
    # than the database spent running it (issue 16).
    from sqlalchemy import event, select

    from chatvakt.outbox import Outbox
    from chatvakt.service import run_core_unit
    from services.chat.models import messages
    from services.chat.models import outbox as outbox_table

    chat, _ = run(db, domain.start_chat, helpline="X")
    me = child(chat["chat_id"])

    class Box(Outbox):
        def publish(self, sessions, dispatch, rows):
            pass

    engine = db.kw["bind"]
    executed = []
    box = Box(outbox_table, "chat")

    def count(_conn, _cursor, statement, *_args):
        executed.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        first = run_core_unit(db, box, None, domain.post_message, chat["chat_id"], me, "hei", "m9")
        again = run_core_unit(db, box, None, domain.post_message, chat["chat_id"], me, "hei", "m9")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert executed == []
    assert again == {**first, "duplicate": True}
    with db() as session:
        stored = session.execute(select(messages).where(messages.c.client_msg_id == "m9")).one()
    assert (stored.seq, stored.sender, stored.text) == (first["seq"], "child", "hei")


# -- what a child's page may do per chat, kept on the chat's row ----------------


def test_a_childs_messages_are_limited_per_chat_and_only_what_is_stored_counts(db, monkeypatch):
    monkeypatch.setenv("CHATVAKT_CHILD_MSGS_PER_MIN", "3")
    now = utcnow()
    chat, _ = run(db, domain.start_chat, helpline="X")
    other, _ = run(db, domain.start_chat, helpline="X")
    chat_id, me = chat["chat_id"], child(chat["chat_id"])
    run(db, domain.activate, chat_id, "c1", "Cathrine Hansen")
    for n in range(3):
        run(db, domain.post_message, chat_id, me, f"m{n}", f"id{n}", now=now)
    again, _ = run(db, domain.post_message, chat_id, me, "m0", "id0", now=now)
    assert again["duplicate"]  # a retry of a stored message spends nothing
    with pytest.raises(RateLimited) as refused:
        run(db, domain.post_message, chat_id, me, "en for mye", "id3", now=now)
    # a burst of 3, then 3 a minute: the next place is 20 s away
    assert refused.value.retry_after == 20
    run(db, domain.post_message, chat_id, COUNSELLOR, "the counsellor is not limited", now=now)
    run(db, domain.post_message, other["chat_id"], child(other["chat_id"]), "another chat is not", now=now)
    later, _ = run(db, domain.post_message, chat_id, me, "en for mye", "id3", now=now + dt.timedelta(seconds=20))
    assert not later["duplicate"]
    with db() as session:
        texts = [m["text"] for m in domain.list_messages(session, chat_id, me) if m["sender"] == "child"]
    assert texts == ["m0", "m1", "m2", "en for mye"]  # the refused send stored nothing


def test_a_replica_that_read_the_chat_before_another_spent_reads_the_limit_again(db, monkeypatch):
    monkeypatch.setenv("CHATVAKT_CHILD_MSGS_PER_MIN", "2")
    now = utcnow()
    chat, _ = run(db, domain.start_chat, helpline="X")
    chat_id, me = chat["chat_id"], child(chat["chat_id"])
    with db() as session:
        stale = domain._load(session, chat_id)  # this replica read the chat ...
    for n in range(2):  # ... and another spent the chat's whole burst meanwhile
        run(db, domain.post_message, chat_id, me, f"m{n}", now=now)
    with pytest.raises(RateLimited):
        run(db, domain._append, stale, "child", "one too many", now=now)


def test_danger_answers_and_language_switches_have_limits_of_their_own(db, monkeypatch):
    monkeypatch.setenv("CHATVAKT_DANGER_REPORTS_PER_MIN", "2")
    monkeypatch.setenv("CHATVAKT_LANG_SWITCHES_PER_MIN", "1")
    now = utcnow()
    chat, _ = run(db, domain.start_chat, helpline="X", lang="nb")
    chat_id, me = chat["chat_id"], child(chat["chat_id"])
    run(db, domain.report_danger, chat_id, me, True, now=now)
    run(db, domain.report_danger, chat_id, me, True, now=now)  # the same answer again is free
    run(db, domain.report_danger, chat_id, me, False, now=now)
    with pytest.raises(RateLimited):
        run(db, domain.report_danger, chat_id, me, True, now=now)
    run(db, domain.set_lang, chat_id, me, "en", now=now)  # the danger limit is not the language's
    run(db, domain.set_lang, chat_id, me, "en", now=now)
    with pytest.raises(RateLimited) as refused:
        run(db, domain.set_lang, chat_id, me, "nb", now=now)
    assert refused.value.retry_after == 60
    with db() as session:
        assert domain.get_chat(session, chat_id, COUNSELLOR | {"role": "supervisor"})["lang"] == "en"
