"""Issue 4 on a real database, without a broker: notes, whispers, phases, the
typing throttle, inactivity and retention (with a shifted clock)."""

import datetime as dt

import pytest
from sqlalchemy import select

from chatvakt import vocabulary
from chatvakt.clock import utcnow
from chatvakt.errors import Conflict, Forbidden, Invalid, NotFound
from chatvakt.testing import read, run
from services.chat import domain
from services.chat.models import conversations

C1 = {"role": "counsellor", "id": "c1"}
C2 = {"role": "counsellor", "id": "c2"}
SUP = {"role": "supervisor", "id": "s1"}


def child(chat_id):
    return {"role": "child", "chat_id": chat_id}


def active_chat(db, now=None, message="hei"):
    chat, _ = run(db, domain.start_chat, helpline="Alarmtelefonen", message=message, now=now)
    run(db, domain.activate, chat["chat_id"], "c1", "Cathrine Hansen", now=now)
    return chat["chat_id"]


def test_notes_and_whispers_reach_staff_only(db):
    chat_id = active_chat(db)
    note, outbox = run(db, domain.add_note, chat_id, C1, "  sjekk skolen  ")
    assert outbox.events[0][1]["visibility"] == "counsellors" and outbox.events[0][1]["kind"] == "note"
    whisper, outbox = run(db, domain.whisper, chat_id, SUP, "spør om trygghet")
    assert outbox.events[0][1]["kind"] == "whisper"
    with pytest.raises(Forbidden):
        run(db, domain.whisper, chat_id, C1, "nei")
    with pytest.raises(Forbidden):
        run(db, domain.add_note, chat_id, child(chat_id), "nei")
    with pytest.raises(NotFound):
        run(db, domain.add_note, chat_id, C2, "not my chat")
    run(db, domain.add_note, chat_id, SUP, "fra vakthavende")
    kids = read(db, domain.list_messages, chat_id, child(chat_id))
    assert {m["kind"] for m in kids} == {"welcome", "message", "connected"}
    for viewer in (C1, SUP):
        kinds = [m["kind"] for m in read(db, domain.list_messages, chat_id, viewer)]
        assert kinds.count("note") == 2 and kinds.count("whisper") == 1
    # Seqs stay gap-free for staff; the child sees a subsequence, in order.
    assert [m["seq"] for m in read(db, domain.list_messages, chat_id, SUP)] == list(range(1, 7))
    run(db, domain.end_chat, chat_id, C1)
    with pytest.raises(Conflict):
        run(db, domain.whisper, chat_id, SUP, "for sent")
    run(db, domain.add_note, chat_id, C1, "etter chatten")  # notes for coding after the end


def test_phases_record_when_each_began_and_travel_with_chat_ended(db):
    t0 = utcnow()
    chat_id = active_chat(db, now=t0)
    with pytest.raises(Invalid):
        run(db, domain.set_phase, chat_id, C1, "chatting")
    run(db, domain.set_phase, chat_id, C1, "request_and_goal", now=t0 + dt.timedelta(minutes=2))
    run(db, domain.set_phase, chat_id, SUP, "options_for_action", now=t0 + dt.timedelta(minutes=9))
    view, _ = run(db, domain.set_phase, chat_id, C1, "request_and_goal", now=t0 + dt.timedelta(minutes=11))
    assert view["phase"] == "request_and_goal"
    assert list(view["phases"]) == ["opening", "request_and_goal", "options_for_action"]
    assert view["phases"]["request_and_goal"].startswith((t0 + dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M"))
    with pytest.raises(NotFound):
        run(db, domain.set_phase, chat_id, C2, "summary_and_close")
    _, outbox = run(db, domain.end_chat, chat_id, C1)
    ended = dict(outbox.events)["chat_ended"]
    assert set(ended["phases"]) == {"opening", "request_and_goal", "options_for_action"}
    with pytest.raises(Conflict):
        run(db, domain.set_phase, chat_id, C1, "summary_and_close")


def test_list_chats_own_for_counsellors_all_for_supervisors(db):
    mine = active_chat(db)
    other, _ = run(db, domain.start_chat, helpline="X")
    run(db, domain.activate, other["chat_id"], "c2", "Ola Nordmann")
    assert [c["chat_id"] for c in read(db, domain.list_chats, C1)] == [mine]
    assert {c["chat_id"] for c in read(db, domain.list_chats, SUP)} >= {mine, other["chat_id"]}
    with pytest.raises(Forbidden):
        read(db, domain.list_chats, child(mine))
    with pytest.raises(Invalid):
        read(db, domain.list_chats, C1, "bogus")


def test_typing_is_throttled_per_chat_and_side(db):
    chat_id = active_chat(db)
    t0 = utcnow()
    first, _ = run(db, domain.typing, chat_id, child(chat_id), 2.0, now=t0)
    assert first == {"chat_id": chat_id, "sender": "child", "counsellor_id": "c1"}
    assert run(db, domain.typing, chat_id, child(chat_id), 2.0, now=t0 + dt.timedelta(seconds=1))[0] is None
    assert run(db, domain.typing, chat_id, C1, 2.0, now=t0 + dt.timedelta(seconds=1))[0]["sender"] == "counsellor"
    assert run(db, domain.typing, chat_id, child(chat_id), 2.0, now=t0 + dt.timedelta(seconds=2))[0]
    assert run(db, domain.typing, chat_id, SUP, 2.0, now=t0 + dt.timedelta(seconds=9))[0] is None


def test_inactivity_prompts_once_then_times_out(db):
    t0 = utcnow()
    chat_id = active_chat(db, now=t0)
    at = lambda s: t0 + dt.timedelta(seconds=s)  # noqa: E731
    assert read(db, domain.silent_chats, 600, now=at(599)) == []
    assert read(db, domain.silent_chats, 600, now=at(600)) == [chat_id]
    outcome, outbox = run(db, domain.check_silence, chat_id, 600, 1200, now=at(600))
    assert outcome == "prompted"
    prompt = outbox.events[0][1]
    assert prompt["kind"] == "inactivity_prompt" and prompt["visibility"] == "counsellors"
    assert run(db, domain.check_silence, chat_id, 600, 1200, now=at(700))[0] is None  # once
    # The child writes: silence starts over, and a new silence prompts again.
    run(db, domain.post_message, chat_id, child(chat_id), "er her", now=at(800))
    assert run(db, domain.check_silence, chat_id, 600, 1200, now=at(1300))[0] is None
    assert run(db, domain.check_silence, chat_id, 600, 1200, now=at(1400))[0] == "prompted"
    outcome, outbox = run(db, domain.check_silence, chat_id, 600, 1200, now=at(2000))
    assert outcome == "timed_out"
    ended = dict(outbox.events)["chat_ended"]
    assert ended["status"] == "timed_out" and ended["ended_by"] == "timeout"
    assert read(db, domain.get_chat, chat_id, SUP)["status"] == "timed_out"
    # Another replica running the same check a moment later changes nothing.
    assert run(db, domain.check_silence, chat_id, 600, 1200, now=at(2001))[1].events == []
    with pytest.raises(Conflict):
        run(db, domain.post_message, chat_id, child(chat_id), "hallo?")
    assert not any(m["kind"] == "inactivity_prompt" for m in read(db, domain.list_messages, chat_id, child(chat_id)))


def test_a_child_who_wrote_only_while_waiting_is_silent_from_assignment(db):
    t0 = utcnow()
    chat, _ = run(db, domain.start_chat, helpline="X", message="hei", now=t0)
    run(db, domain.activate, chat["chat_id"], "c1", "Cathrine", now=t0 + dt.timedelta(minutes=30))
    assert run(db, domain.check_silence, chat["chat_id"], 600, 1200, now=t0 + dt.timedelta(minutes=31))[0] is None


def test_retention_deletes_old_transcripts_unless_an_escalation_holds_them(db):
    t0 = utcnow()
    old, kept, recent = (active_chat(db, now=t0) for _ in range(3))
    for chat_id in (old, kept):
        run(db, domain.end_chat, chat_id, C1, now=t0 + dt.timedelta(hours=1))
    run(db, domain.end_chat, recent, C1, now=t0 + dt.timedelta(days=20))
    with db() as session, session.begin():
        session.execute(conversations.update().where(conversations.c.id == old).values(nickname="Mia"))
    run(db, domain.record_hold, "e1", kept, "acute_danger", "open", True, raised=True)
    run(db, domain.record_hold, "e2", old, "acute_danger", "closed", False)
    # a late "raised" does not reopen
    run(db, domain.record_hold, "e2", old, "acute_danger", "open", True, raised=True)
    later = t0 + dt.timedelta(days=31)  # the shifted clock
    assert run(db, domain.purge_expired, 30, now=t0 + dt.timedelta(days=29))[0] == []
    purged, _ = run(db, domain.purge_expired, 30, now=later)
    assert purged == [old]
    assert read(db, domain.list_messages, old, SUP) == []
    with db() as session:
        row = session.execute(select(conversations).where(conversations.c.id == old)).first()
    assert row.nickname is None and row.purged_at is not None and row.phases  # coding facts stay
    assert read(db, domain.list_messages, kept, SUP)
    assert read(db, domain.list_messages, recent, SUP)
    assert run(db, domain.purge_expired, 30, now=later)[0] == []  # idempotent
    run(db, domain.record_hold, "e1", kept, "acute_danger", "closed", False)
    assert run(db, domain.purge_expired, 30, now=later)[0] == [kept]
    with pytest.raises(Conflict):
        run(db, domain.add_note, old, C1, "for sent")


# One rule for every kind and status (chatvakt/vocabulary.py): the hold keeps
# the transcript exactly while the escalation event's `open` flag is true.
EVERY_STATUS = [(kind, status) for kind, statuses in vocabulary.ESCALATION_STATUSES.items() for status in statuses]


def _purged_after_hold(db, kind, status, open_):
    t0 = utcnow()
    chat_id = active_chat(db, now=t0)
    run(db, domain.end_chat, chat_id, C1, now=t0 + dt.timedelta(hours=1))
    run(db, domain.record_hold, f"e-{chat_id}", chat_id, kind, status, open_, raised=True)
    return chat_id in run(db, domain.purge_expired, 30, now=t0 + dt.timedelta(days=31))[0]


@pytest.mark.parametrize("kind,status", EVERY_STATUS)
def test_retention_follows_the_events_open_flag(db, kind, status):
    open_ = vocabulary.escalation_open(kind, status)  # what the escalation service sends
    assert _purged_after_hold(db, kind, status, open_) is (not open_)


@pytest.mark.parametrize("kind,status", EVERY_STATUS)
def test_retention_judges_an_event_without_the_flag_by_the_vocabulary(db, kind, status):
    assert _purged_after_hold(db, kind, status, None) is (not vocabulary.escalation_open(kind, status))


def test_a_chat_whose_only_escalation_is_a_referral_loses_its_transcript(db):
    assert not vocabulary.escalation_open("referral", "recorded")
    assert _purged_after_hold(db, "referral", "recorded", False)


def test_the_flag_wins_over_the_status_and_unknown_statuses_keep(db):
    assert not _purged_after_hold(db, "referral", "recorded", True)
    assert not _purged_after_hold(db, "acute_danger", "something_new", None)
    assert not _purged_after_hold(db, "a_new_kind", "closed", None)


def test_post_message_writes_no_line_per_message():
    # chatvakt.observability.per_message: the gateway's access line has the request (issue 16).
    from chatvakt.observability import PER_MESSAGE
    from services.chat.service import ChatService

    assert getattr(ChatService.post_message, PER_MESSAGE, False)
