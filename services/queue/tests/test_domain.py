"""The intake queue's domain on a real database, without a broker."""

import datetime as dt

import pytest

from chatvakt.clock import iso
from chatvakt.errors import Conflict
from chatvakt.testing import run
from services.queue import domain

T0 = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.timezone.utc)


def order(db):
    with db() as session:
        return [w["chat_id"] for w in domain.snapshot(session, T0)["waiting"]]


def test_priority_first_then_arrival_with_the_reason(db):
    for i, chat in enumerate(["a", "b", "c"]):
        run(db, domain.enqueue, chat, iso(T0 + dt.timedelta(seconds=i)))
    assert order(db) == ["a", "b", "c"]
    run(db, domain.raise_for_risk, "c", "high", "selvmord: «ta livet mitt»")
    run(db, domain.raise_for_risk, "b", "medium", "vold")
    assert order(db) == ["c", "b", "a"]
    with db() as session:
        head = domain.snapshot(session, T0)["waiting"][0]
    assert head["risk"] and head["reason"] == "selvmord: «ta livet mitt»" and head["position"] == 1


def test_risk_before_chat_started_is_kept(db):
    run(db, domain.enqueue, "early", iso(T0))
    run(db, domain.raise_for_risk, "late", "high", "grunn")
    assert order(db) == ["early"]  # pending, not yet in the queue
    run(db, domain.enqueue, "late", iso(T0 + dt.timedelta(seconds=5)))
    assert order(db) == ["late", "early"]


def test_enqueue_is_idempotent(db):
    assert run(db, domain.enqueue, "a", iso(T0))[0] is True
    assert run(db, domain.enqueue, "a", iso(T0))[0] is False
    assert order(db) == ["a"]


def test_take_capacity_and_release(db):
    for i, chat in enumerate(["a", "b"]):
        run(db, domain.enqueue, chat, iso(T0 + dt.timedelta(seconds=i)))
    run(db, domain.set_presence, "c1", "Cathrine", "available", 1)
    taken, outbox = run(db, domain.take, "c1", "Cathrine", now=T0 + dt.timedelta(seconds=30))
    assert taken["chat_id"] == "a" and taken["waited_s"] == 30
    assert outbox.names() == ["chat_assigned"]
    with pytest.raises(Conflict):
        run(db, domain.take, "c1", "Cathrine")
    assert order(db) == ["b"]  # the refused take left b where it was
    run(db, domain.finish, "a", "ended")
    taken, _ = run(db, domain.take, "c1", "Cathrine")
    assert taken["chat_id"] == "b"
    assert run(db, domain.take, "c2", "Ola")[0] is None  # nobody waits


def test_abandoned_reports_the_wait(db):
    run(db, domain.enqueue, "a", iso(T0))
    result, outbox = run(db, domain.finish, "a", "abandoned", iso(T0 + dt.timedelta(seconds=42)))
    assert result == "abandoned"
    assert outbox.events == [("chat_abandoned", {"chat_id": "a", "waited_s": 42.0})]
    assert run(db, domain.finish, "a", "abandoned")[0] is None


def test_estimate_is_null_without_enough_history(db):
    run(db, domain.enqueue, "a", iso(T0))
    run(db, domain.set_presence, "c9", "Ola", "available")
    with db() as session:
        assert domain.snapshot(session, T0)["waiting"][0]["estimated_wait_s"] is None
    for i in range(4):
        chat = f"old{i}"
        run(db, domain.enqueue, chat, iso(T0 - dt.timedelta(minutes=20)))
        run(db, domain.take, f"c{i}", "X", chat, now=T0 - dt.timedelta(minutes=10 - 2 * i))
    with db() as session:
        # 4 takes over the last 10 minutes: one every 150 s.
        assert domain.snapshot(session, T0)["waiting"][0]["estimated_wait_s"] == 150


def test_offered_assignment_is_on_unless_turned_off(monkeypatch):
    # Issue 13: an offer rings at one counsellor; off only when a helpline says so.
    from services.queue import service

    monkeypatch.delenv("CHATVAKT_AUTO_ASSIGN", raising=False)
    assert service.auto_assign() is True
    monkeypatch.setenv("CHATVAKT_AUTO_ASSIGN", "0")
    assert service.auto_assign() is False


# -- issue 14: the child's own yes and staff's hand mark ----------------------

SELF = "Sier selv at hen er i fare nå (says they are in danger now)"


def test_a_childs_yes_is_the_at_risk_tier_with_its_reason_but_not_acute(db):
    for i, chat in enumerate(["a", "b", "c"]):
        run(db, domain.enqueue, chat, iso(T0 + dt.timedelta(seconds=i)))
    run(db, domain.raise_for_risk, "c", "high", SELF, category="self_report")
    with db() as session:
        head = domain.snapshot(session, T0)["waiting"][0]
        row = domain._entry(session, "c")
    assert (head["chat_id"], head["reason"], head["priority_source"], head["risk"]) == ("c", SELF, "self_report", True)
    assert not row.acute  # said, not found: no cool-down on its own


def test_a_flood_chats_yes_stays_behind_a_real_child(db):
    run(db, domain.enqueue, "real", iso(T0 + dt.timedelta(seconds=9)))
    run(db, domain.enqueue, "fake", iso(T0), source="f" * 16, suspect=True)
    run(db, domain.raise_for_risk, "fake", "high", SELF, category="self_report")
    assert order(db) == ["real", "fake"]


def test_hand_mark_moves_a_waiting_chat_in_and_out_of_the_at_risk_tier(db):
    run(db, domain.enqueue, "a", iso(T0))
    run(db, domain.enqueue, "b", iso(T0 + dt.timedelta(seconds=1)))
    assert run(db, domain.hand_mark, "b", True)[0] is True
    assert order(db) == ["b", "a"]
    with db() as session:
        head = domain.snapshot(session, T0)["waiting"][0]
    assert head["priority_source"] == "hand_mark" and head["risk"] and head["priority"] == 20
    run(db, domain.hand_mark, "b", False)
    assert order(db) == ["a", "b"]
    assert run(db, domain.hand_mark, "nobody", True)[0] is False
