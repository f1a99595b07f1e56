"""Issue 12 in the queue's domain, without a broker: a waiting child whose
page is gone leaves after the grace; a flood is served after real children."""

import datetime as dt

from chatvakt import config
from chatvakt.clock import iso
from chatvakt.testing import read, run
from services.queue import domain, service

T0 = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.timezone.utc)
SRC = "0123456789abcdef"
OTHER_SRC = "fedcba9876543210"


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def order(db, now=None):
    return [w["chat_id"] for w in read(db, domain.snapshot, now or at(600))["waiting"]]


def status(db, chat_id):
    with db() as session:
        return domain._entry(session, chat_id).status


# -- absence -------------------------------------------------------------------


def test_the_default_grace_is_60_s_and_a_variable_changes_it(monkeypatch):
    monkeypatch.delenv("CHATVAKT_ABSENT_GRACE_S", raising=False)
    assert config.absent_grace_s() == 60.0
    monkeypatch.setenv("CHATVAKT_ABSENT_GRACE_S", "8")
    assert config.absent_grace_s() == 8.0
    monkeypatch.delenv("CHATVAKT_SEEN_REPORT_S", raising=False)
    assert config.seen_report_s() == 5.0  # well under the grace: a lost report costs no place


def test_entering_counts_as_seen_and_an_absent_child_leaves_after_the_grace(db):
    for i, chat in enumerate("abc"):
        run(db, domain.enqueue, chat, iso(at(i)), now=at(i))
    # b's page keeps reporting; a and c go quiet.
    run(db, domain.seen, ["b"], now=at(50))
    gone, outbox = run(db, domain.sweep_absent, 60, now=at(59))
    assert gone == [] and outbox.events == []  # within the grace nobody leaves
    gone, outbox = run(db, domain.sweep_absent, 60, now=at(62.5))
    assert gone == ["a", "c"]
    assert outbox.events == [
        ("chat_abandoned", {"chat_id": "a", "waited_s": 62.5, "why": "absent"}),
        ("chat_abandoned", {"chat_id": "c", "waited_s": 60.5, "why": "absent"}),
    ]
    assert status(db, "a") == "abandoned" and status(db, "b") == "waiting"
    # the others move up
    assert read(db, domain.position_of, "b", at(63))["position"] == 1
    # idempotent: a second replica's sweep finds nothing left to do
    gone, outbox = run(db, domain.sweep_absent, 60, now=at(63))
    assert gone == [] and outbox.events == []
    # chat_ended(abandoned) coming back from the chat service changes nothing
    assert run(db, domain.finish, "a", "abandoned", iso(at(64)))[0] is None


def test_a_phone_that_drops_for_a_few_seconds_keeps_its_place(db):
    run(db, domain.enqueue, "train", iso(at(0)), now=at(0))
    run(db, domain.enqueue, "later", iso(at(1)), now=at(1))
    for t in range(5, 300, 5):
        if 100 <= t < 115:
            continue  # 15 s in a tunnel: no socket, no request
        run(db, domain.seen, ["train", "later"], now=at(t))
        assert run(db, domain.sweep_absent, 60, now=at(t + 0.5))[0] == []
    assert order(db, at(300)) == ["train", "later"]


def test_the_sweep_is_a_compare_and_set_on_last_seen(db):
    """A replica that read the row before a report landed must not abandon it."""
    run(db, domain.enqueue, "x", iso(at(0)), now=at(0))
    with db() as session:
        stale = domain._entry(session, "x")
    run(db, domain.seen, ["x"], now=at(61))  # the report lands between read and write
    from sqlalchemy import update

    from services.queue.models import entries

    with db() as session, session.begin():
        same_seen = entries.c.last_seen == stale.last_seen
        got = session.execute(
            update(entries)
            .where(entries.c.chat_id == "x", entries.c.status == "waiting", same_seen)
            .values(status="abandoned")
        ).rowcount
    assert got == 0 and status(db, "x") == "waiting"
    assert run(db, domain.sweep_absent, 60, now=at(62))[0] == []


def test_seen_ignores_unknown_ended_and_malformed_ids(db):
    run(db, domain.enqueue, "w", iso(at(0)), now=at(0))
    run(db, domain.enqueue, "taken", iso(at(0)), now=at(0))
    run(db, domain.take, "c1", "Kari", "taken", now=at(1))
    touched, _ = run(db, domain.seen, ["w", "taken", "nope", None, 42, ""], now=at(30))
    assert touched == 1


def test_an_offered_chat_that_is_abandoned_withdraws_its_offer(db):
    run(db, domain.enqueue, "o", iso(at(0)), now=at(0))
    run(db, domain.set_presence, "c1", "Kari", "available", now=at(0))
    run(db, domain.make_offers, 600, now=at(1))
    gone, outbox = run(db, domain.sweep_absent, 60, now=at(61))
    assert gone == ["o"] and outbox.names() == ["offer_withdrawn", "chat_abandoned"]


def test_a_replica_sweeps_only_while_gateways_report(monkeypatch):
    state = service._presence
    monkeypatch.setitem(state, "started", 1000.0)
    monkeypatch.setitem(state, "report", None)
    assert not service.sweep_allowed(1100.0, 60, 5)  # nobody reported: gateways down
    monkeypatch.setitem(state, "report", 1095.0)
    assert not service.sweep_allowed(1030.0, 60, 5)  # just started: reports not in yet
    assert service.sweep_allowed(1100.0, 60, 5)
    assert not service.sweep_allowed(1200.0, 60, 5)  # reports stopped: abandon no one


# -- the flood tier ---------------------------------------------------------------


def test_suspect_chats_come_after_every_other_chat_whatever_their_risk(db):
    run(db, domain.enqueue, "flood-risky", iso(at(0)), source=SRC, suspect=True, now=at(0))
    run(db, domain.enqueue, "flood-plain", iso(at(1)), source=SRC, suspect=True, now=at(1))
    run(db, domain.raise_for_risk, "flood-risky", "high", "selvmord")
    run(db, domain.enqueue, "real-plain", iso(at(2)), source=OTHER_SRC, now=at(2))
    run(db, domain.enqueue, "real-risky", iso(at(3)), source=OTHER_SRC, now=at(3))
    run(db, domain.raise_for_risk, "real-risky", "medium", "vold")
    assert order(db) == ["real-risky", "real-plain", "flood-risky", "flood-plain"]
    # counted positions agree with the listed order
    for position, chat in enumerate(order(db), start=1):
        assert read(db, domain.position_of, chat, at(600))["position"] == position
    # the head of the queue, for a counsellor, is the real child at risk
    assert run(db, domain.take, "c1", "Kari", now=at(10))[0]["chat_id"] == "real-risky"


def test_a_suspect_chat_moves_its_sources_earlier_chats_to_the_suspect_tier(db):
    for i in range(10):  # the first ten of a flood look like anyone
        run(db, domain.enqueue, f"f{i}", iso(at(i)), source=SRC, now=at(i))
    run(db, domain.raise_for_risk, "f3", "high", "selvmord")
    run(db, domain.enqueue, "real", iso(at(20)), source=OTHER_SRC, now=at(20))
    assert order(db)[0] == "f3"
    run(db, domain.enqueue, "f10", iso(at(21)), source=SRC, suspect=True, now=at(21))
    assert order(db)[:2] == ["real", "f3"]  # f3 still first within its tier
    assert order(db)[-1] == "f10"
    flood = read(db, domain.snapshot, at(30))["flood"]
    assert flood == {"suspect_waiting": 11, "suspect_total": 11, "since": iso(at(0)), "sources": 1}
    # as the flood ages out, its notice stays the same flood (same since)
    run(db, domain.sweep_absent, 60, now=at(65))
    flood = read(db, domain.snapshot, at(66))["flood"]
    assert flood["since"] == iso(at(0)) and flood["suspect_total"] == 11
    assert flood["suspect_waiting"] == 6  # f5..f10 (seen at enqueue up to 21 s)


def test_an_earlier_chat_whose_start_arrives_late_joins_its_flood(db):
    run(db, domain.enqueue, "f10", iso(at(10)), source=SRC, suspect=True, now=at(10))
    run(db, domain.enqueue, "real", iso(at(11)), source=OTHER_SRC, now=at(11))
    run(db, domain.enqueue, "f3", iso(at(3)), source=SRC, now=at(12))  # overtaken event
    run(db, domain.enqueue, "f12", iso(at(30)), source=SRC, now=at(30))  # later: the gateway decides
    assert order(db, at(31)) == ["real", "f12", "f3", "f10"]


def test_the_second_enqueue_path_may_bring_the_flag_the_first_did_not(db):
    # the gateway's direct enqueue raced chat_started and won without the flag
    run(db, domain.enqueue, "f", iso(at(0)), now=at(0))
    run(db, domain.enqueue, "real", iso(at(1)), now=at(1))
    changed, outbox = run(db, domain.enqueue, "f", iso(at(0)), source=SRC, suspect=True, now=at(1))
    assert changed and outbox.events == []  # not queued twice
    assert order(db) == ["real", "f"]


def test_no_flood_no_notice_and_a_risk_before_start_keeps_the_tier(db):
    run(db, domain.enqueue, "a", iso(at(0)), now=at(0))
    assert read(db, domain.snapshot, at(1))["flood"] is None
    run(db, domain.raise_for_risk, "early", "high", "selvmord")  # before chat_started
    run(db, domain.enqueue, "early", iso(at(2)), source=SRC, suspect=True, now=at(2))
    assert order(db) == ["a", "early"]
    snap = read(db, domain.snapshot, at(3))
    assert snap["waiting"][1]["suspect"] is True and snap["waiting"][1]["risk"] is True
