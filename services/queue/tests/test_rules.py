"""Every rule of the intake queue (issue 3) on a real database, without a broker:
priority with its reason, positions and honest estimates, capacity, presence
grace, cool-down, auto-assign offers, opening hours, abandonment, statistics."""

import datetime as dt

import pytest

from chatvakt.clock import iso
from chatvakt.errors import Conflict, Invalid, NotFound
from chatvakt.testing import read, run
from services.queue import domain

T0 = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.timezone.utc)


def s(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def queue(db, n, start=0):
    for i in range(n):
        run(db, domain.enqueue, f"k{i}", iso(s(start + i)))


def order(db, now=T0):
    return [w["chat_id"] for w in read(db, domain.snapshot, now)["waiting"]]


# -- order, priority and its reason --------------------------------------------


def test_risk_on_a_later_message_raises_a_waiting_chat_with_the_reason(db):
    queue(db, 3)
    changed, _ = run(db, domain.raise_for_risk, "k2", "medium", "mobbing")
    assert changed and order(db) == ["k2", "k0", "k1"]
    # A later, graver hit raises it further and says why; a milder one never lowers it.
    run(db, domain.raise_for_risk, "k1", "high", "selvskading")
    run(db, domain.raise_for_risk, "k1", "medium", "krangel")
    head = read(db, domain.snapshot, T0)["waiting"][0]
    assert (head["chat_id"], head["priority"], head["reason"], head["priority_source"]) == (
        "k1",
        20,
        "selvskading",
        "risk_screen",
    )


def test_supervisor_sets_priority_with_a_reason(db):
    queue(db, 3)
    with pytest.raises(Invalid):
        run(db, domain.set_priority, "k2", 50, "  ")
    run(db, domain.set_priority, "k2", 50, "Kjent gjenganger i krise")
    run(db, domain.set_priority, "k0", -5, "Tester tjenesten")
    snap = read(db, domain.snapshot, T0)["waiting"]
    assert [w["chat_id"] for w in snap] == ["k2", "k1", "k0"]
    assert snap[0]["reason"] == "Kjent gjenganger i krise" and snap[0]["priority_source"] == "supervisor"
    with pytest.raises(NotFound):
        run(db, domain.set_priority, "nope", 1, "x")


def test_position_of_counts_the_same_order_as_the_snapshot(db):
    queue(db, 6)
    run(db, domain.raise_for_risk, "k4", "high", "r")
    run(db, domain.set_priority, "k1", 20, "same level as k4, came earlier")
    snap = read(db, domain.snapshot, T0)["waiting"]
    for entry in snap:
        assert read(db, domain.position_of, entry["chat_id"], T0)["position"] == entry["position"]
    assert read(db, domain.position_of, "unknown", T0)["position"] is None


# -- estimates ---------------------------------------------------------------


def test_no_estimate_when_nobody_is_available_even_with_history(db):
    queue(db, 1)
    for i in range(4):
        run(db, domain.enqueue, f"old{i}", iso(s(-1200)))
        run(db, domain.take, f"c{i}", "X", f"old{i}", now=s(-600 + 120 * i))
    assert read(db, domain.snapshot, T0)["waiting"][0]["estimated_wait_s"] is None
    run(db, domain.set_presence, "c0", "X", "available")
    assert read(db, domain.snapshot, T0)["waiting"][0]["estimated_wait_s"] == 150
    assert read(db, domain.position_of, "k0", T0)["estimated_wait_s"] == 150


# -- capacity --------------------------------------------------------------------


def test_capacity_is_one_to_ten_and_refuses_at_the_limit(db):
    with pytest.raises(Invalid):
        run(db, domain.set_presence, "c1", "A", "available", 11)
    with pytest.raises(Invalid):
        run(db, domain.set_presence, "c1", "A", "available", 0)
    with pytest.raises(Invalid):
        run(db, domain.set_presence, "c1", "A", "busy")
    view, outbox = run(db, domain.set_presence, "c1", "A", "available", 2)
    assert view == {"status": "available", "capacity": 2, "active_chats": 0}
    assert outbox.names() == ["presence_changed"]
    queue(db, 3)
    assert run(db, domain.take, "c1", "A")[0]["chat_id"] == "k0"
    assert run(db, domain.take, "c1", "A")[0]["chat_id"] == "k1"
    with pytest.raises(Conflict):
        run(db, domain.take, "c1", "A")
    with pytest.raises(Conflict):
        run(db, domain.take, "c1", "A", "k2")
    assert order(db) == ["k2"]


def test_default_capacity_is_clamped(db):
    run(db, domain.take, "c1", "A", default_capacity=50)
    assert read(db, domain.get_presence, "c1")["capacity"] == 10


def test_a_named_chat_is_taken_once(db):
    queue(db, 2)
    assert run(db, domain.take, "c1", "A", "k1")[0]["chat_id"] == "k1"
    with pytest.raises(Conflict):
        run(db, domain.take, "c2", "B", "k1")
    with pytest.raises(NotFound):
        run(db, domain.take, "c2", "B", "nope")
    assert order(db) == ["k0"]


def test_pending_risk_is_not_takeable(db):
    run(db, domain.raise_for_risk, "early", "high", "r")
    assert run(db, domain.take, "c1", "A")[0] is None
    with pytest.raises(NotFound):
        run(db, domain.take, "c1", "A", "early")


# -- abandonment and statistics -----------------------------------------------


def test_abandoned_with_the_wait_in_statistics(db):
    queue(db, 3)
    run(db, domain.take, "c1", "A", "k0", now=s(10))
    _, outbox = run(db, domain.finish, "k1", "abandoned", iso(s(61)))
    assert outbox.events == [("chat_abandoned", {"chat_id": "k1", "waited_s": 60.0})]
    stats = read(db, domain.stats)
    assert stats["answered"] == 1 and stats["abandoned"] == 1 and stats["waiting"] == 1
    assert stats["abandoned_wait_s"]["p50"] == 60.0 and stats["wait_s"]["max"] == 10.0
    assert read(db, domain.stats, iso(s(2)))["abandoned"] == 0


def test_ending_an_assigned_chat_frees_the_place_once(db):
    queue(db, 1)
    run(db, domain.set_presence, "c1", "A", "available", 1)
    run(db, domain.take, "c1", "A")
    run(db, domain.finish, "k0", "ended")
    run(db, domain.finish, "k0", "ended")  # redelivered event
    assert read(db, domain.get_presence, "c1")["active_chats"] == 0


# -- cool-down -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["screen", "escalation", "coding_after_end"])
def test_cooldown_after_a_chat_with_acute_danger(db, source):
    queue(db, 3)
    run(db, domain.set_presence, "c1", "Cathrine", "available", 3)
    run(db, domain.take, "c1", "Cathrine", "k0", now=s(5))
    if source == "screen":
        run(db, domain.raise_for_risk, "k0", "high", "selvmordstanker")
    elif source == "escalation":
        run(db, domain.mark_acute, "k0", now=s(6), cooldown_s=600)
    _, outbox = run(db, domain.finish, "k0", "ended", iso(s(100)), cooldown_s=600, now=s(100))
    if source == "coding_after_end":
        assert "counsellor_cooldown" not in outbox.names()
        _, outbox = run(db, domain.mark_acute, "k0", now=s(160), cooldown_s=600)
    told = dict(outbox.events)["counsellor_cooldown"]
    assert told["state"] == "started" and told["counsellor_id"] == "c1" and told["chat_id"] == "k0"
    assert told["until"] == iso(s(700))
    # Neither given (take) nor offered (auto-assign) a chat during the cool-down.
    with pytest.raises(Conflict) as refused:
        run(db, domain.take, "c1", "Cathrine", now=s(200))
    assert "cool-down" in refused.value.message
    assert run(db, domain.make_offers, 30, now=s(200))[0] == 0
    assert read(db, domain.get_presence, "c1", now=s(200))["cooldown_until"] == iso(s(700))
    # The same facts again (redelivered events) start nothing new.
    assert "counsellor_cooldown" not in run(db, domain.mark_acute, "k0", now=s(200), cooldown_s=600)[1].names()
    # Over by itself ...
    assert run(db, domain.take, "c1", "Cathrine", now=s(701))[0]["chat_id"] == "k1"


def test_opt_in_ends_the_cooldown_early_and_supervisors_hear_of_it(db):
    queue(db, 2)
    run(db, domain.take, "c1", "A", "k0", now=s(1))
    run(db, domain.raise_for_risk, "k0", "high", "r")
    run(db, domain.finish, "k0", "ended", iso(s(10)), cooldown_s=600, now=s(10))
    view, outbox = run(db, domain.set_presence, "c1", "A", "available", opt_in=True, now=s(20))
    assert view["cooldown_opt_in"] is True and view["cooldown_until"] == iso(s(610))
    assert dict(outbox.events)["counsellor_cooldown"]["state"] == "opted_in"
    assert run(db, domain.take, "c1", "A", now=s(21))[0]["chat_id"] == "k1"


def test_medium_risk_and_late_coding_start_no_cooldown(db):
    queue(db, 2)
    run(db, domain.take, "c1", "A", "k0", now=s(1))
    run(db, domain.raise_for_risk, "k0", "medium", "r")
    _, outbox = run(db, domain.finish, "k0", "ended", iso(s(10)), cooldown_s=600, now=s(10))
    assert "counsellor_cooldown" not in outbox.names()
    # Coded long after the cool-down would have ended: nothing left of it.
    _, outbox = run(db, domain.mark_acute, "k0", now=s(10_000), cooldown_s=600)
    assert "counsellor_cooldown" not in outbox.names()
    assert run(db, domain.take, "c1", "A", now=s(10_001))[0]["chat_id"] == "k1"


def test_cooldown_follows_a_transfer(db):
    queue(db, 1)
    run(db, domain.take, "c1", "A", "k0", now=s(1))
    run(db, domain.transfer, "k0", "c2", "B")
    run(db, domain.mark_acute, "k0", cooldown_s=600)
    _, outbox = run(db, domain.finish, "k0", "ended", iso(s(10)), cooldown_s=600, now=s(10))
    assert dict(outbox.events)["counsellor_cooldown"]["counsellor_id"] == "c2"
    assert "cooldown_until" not in read(db, domain.get_presence, "c1", now=s(11))


# -- presence grace ---------------------------------------------------------------


def test_offline_after_every_socket_is_gone_for_the_grace_time(db):
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    run(db, domain.report_sockets, "gw-1", {"c1": 1}, now=s(1))
    run(db, domain.report_sockets, "gw-2", {"c1": 2}, now=s(1))
    run(db, domain.report_sockets, "gw-1", {}, now=s(5))  # closed on one gateway ...
    run(db, domain.report_sockets, "gw-2", {"c1": 2}, now=s(90))  # (heartbeat)
    assert run(db, domain.expire_presence, 60, 45, now=s(100))[0] == []  # ... open on the other
    run(db, domain.report_sockets, "gw-2", {"c1": 0}, now=s(110))
    assert run(db, domain.expire_presence, 60, 45, now=s(169))[0] == []  # within grace
    gone, outbox = run(db, domain.expire_presence, 60, 45, now=s(171))
    assert gone == ["c1"] and outbox.events[-1][1]["status"] == "offline"
    assert read(db, domain.get_presence, "c1")["status"] == "offline"
    assert run(db, domain.expire_presence, 60, 45, now=s(300))[0] == []


def test_a_socket_back_within_the_grace_keeps_the_counsellor(db):
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    run(db, domain.report_sockets, "gw-1", {"c1": 1}, now=s(1))
    run(db, domain.report_sockets, "gw-1", {"c1": 0}, now=s(2))
    run(db, domain.report_sockets, "gw-1", {"c1": 1}, now=s(30))  # page reloaded
    assert run(db, domain.expire_presence, 60, 45, now=s(40))[0] == []
    assert read(db, domain.get_presence, "c1")["status"] == "available"


def test_a_silent_gateway_counts_as_closed(db):
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    run(db, domain.report_sockets, "gw-dead", {"c1": 1}, now=s(1))
    assert run(db, domain.expire_presence, 60, 45, now=s(40))[0] == []
    assert run(db, domain.expire_presence, 60, 45, now=s(62))[0] == ["c1"]


def test_a_socket_that_came_and_went_between_reports_still_ends_in_offline(db):
    # The gateway never saw it open at a report: it says "none" for someone unknown here.
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    run(db, domain.report_sockets, "gw-1", {"c1": 0}, now=s(5))
    assert run(db, domain.expire_presence, 60, 45, now=s(64))[0] == []
    assert run(db, domain.expire_presence, 60, 45, now=s(66))[0] == ["c1"]


def test_a_counsellor_without_sockets_is_left_alone(db):
    # API clients (scripts, load tests) never open a socket.
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    assert run(db, domain.expire_presence, 60, 45, now=s(10_000))[0] == []
    run(db, domain.report_sockets, "gw-1", {"c1": 1}, now=s(1))
    run(db, domain.report_sockets, "gw-1", {}, now=s(2))
    run(db, domain.set_presence, "c1", "A", "available", now=s(3))  # said again: starts afresh
    assert run(db, domain.expire_presence, 60, 45, now=s(10_000))[0] == []


# -- auto-assign ---------------------------------------------------------------------


def test_offers_go_to_the_least_loaded_and_expire_back_to_the_head(db):
    queue(db, 3)
    run(db, domain.set_presence, "busy", "B", "available", 3, now=s(0))
    run(db, domain.take, "busy", "B", "k2", now=s(1))
    run(db, domain.set_presence, "idle", "I", "available", 3, now=s(2))
    made, outbox = run(db, domain.make_offers, 30, now=s(10))
    offers = {p["chat_id"]: p["counsellor_id"] for n, p in outbox.events if n == "chat_offered"}
    assert made == 2 and offers == {"k0": "idle", "k1": "busy"}
    assert run(db, domain.make_offers, 30, now=s(11))[0] == 0  # one open offer each
    # Others cannot take an offered chat; the head for them is the next free one.
    run(db, domain.enqueue, "k3", iso(s(3)))
    assert run(db, domain.take, "third", "T", now=s(12))[0]["chat_id"] == "k3"
    with pytest.raises(Conflict):
        run(db, domain.take, "third", "T", "k0", now=s(12))
    # idle accepts; busy lets it pass: k1 is back, still ahead of later chats.
    assert run(db, domain.take, "idle", "I", "k0", offer_only=True, now=s(20))[0]["chat_id"] == "k0"
    run(db, domain.enqueue, "k9", iso(s(30)))
    expired, outbox = run(db, domain.expire_offers, now=s(41))
    assert expired == 1 and outbox.events == [
        ("offer_withdrawn", {"chat_id": "k1", "counsellor_id": "busy", "why": "expired"})
    ]
    assert order(db, s(41)) == ["k1", "k9"]
    with pytest.raises(Conflict):
        run(db, domain.take, "busy", "B", "k1", offer_only=True, now=s(42))
    # The next offer of k1 goes to someone other than the one who let it pass.
    run(db, domain.set_presence, "other", "O", "available", 3, now=s(43))
    _, outbox = run(db, domain.make_offers, 30, now=s(44))
    offers = {p["chat_id"]: p["counsellor_id"] for n, p in outbox.events if n == "chat_offered"}
    assert offers["k1"] != "busy"


def test_decline_and_going_away_withdraw_offers(db):
    queue(db, 1)
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    run(db, domain.make_offers, 30, now=s(1))
    _, outbox = run(db, domain.decline_offer, "c1", "k0")
    assert outbox.events[0][1]["why"] == "declined"
    with pytest.raises(NotFound):
        run(db, domain.decline_offer, "c1", "k0")
    run(db, domain.make_offers, 30, now=s(2))  # only c1 is free: offered again
    _, outbox = run(db, domain.set_presence, "c1", "A", "away", now=s(3))
    assert ("offer_withdrawn", {"chat_id": "k0", "counsellor_id": "c1", "why": "away"}) in outbox.events
    assert run(db, domain.make_offers, 30, now=s(4))[0] == 0


def test_a_child_who_leaves_while_offered_withdraws_the_offer(db):
    queue(db, 1)
    run(db, domain.set_presence, "c1", "A", "available", now=s(0))
    run(db, domain.make_offers, 30, now=s(1))
    _, outbox = run(db, domain.finish, "k0", "abandoned", iso(s(5)))
    assert outbox.names() == ["offer_withdrawn", "chat_abandoned"]


# -- opening hours and the notice ------------------------------------------------------


def test_opening_hours_in_oslo_time():
    winter_2330 = dt.datetime(2026, 1, 10, 22, 30, tzinfo=dt.timezone.utc)  # 23:30 in Oslo
    assert domain.is_open(winter_2330)
    assert domain.is_open(winter_2330, "20:00-02:00")
    assert not domain.is_open(winter_2330, "08:00-16:00,18:00-23:00")
    summer_0130 = dt.datetime(2026, 7, 1, 23, 30, tzinfo=dt.timezone.utc)  # 01:30 in Oslo
    assert domain.is_open(summer_0130, "20:00-02:00")
    assert not domain.is_open(summer_0130, "08:00-16:00")
    for bad in ("8-16", "08:00-25:00", "08:61-09:00", ","):
        with pytest.raises(ValueError):
            domain.parse_hours(bad)


def test_the_notice_names_the_emergency_numbers(db):
    queue(db, 1)
    told = read(db, domain.position_of, "k0", T0)["notice"]
    assert told["code"] == "no_counsellor" and told["may_keep_waiting"]
    assert [e["number"] for e in told["emergency"]] == ["112", "113", "110", "116 117"]
    assert "112" in told["message_nb"] and "116 117" in told["message_en"]
    run(db, domain.set_presence, "c1", "A", "available")
    assert read(db, domain.position_of, "k0", T0)["notice"] is None
    closed = read(db, domain.snapshot, T0, False)
    assert closed["notice"]["code"] == "closed" and closed["open"] is False
    assert read(db, domain.position_of, "k0", T0, False)["notice"]["code"] == "closed"
