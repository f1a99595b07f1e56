"""issue 12, outcome 9: queue.changed to counsellor sockets stays small."""

import datetime as dt
import json

import pytest

from chatvakt import config
from chatvakt import events as ev
from chatvakt.clock import iso
from chatvakt.testing import RecordingOutbox, read, sqlite_sessions
from gateway.push import queue_push
from services.queue import domain
from services.queue.models import metadata

T0 = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def snapshot_1000(tmp_path):
    engine, db = sqlite_sessions(tmp_path, "queue", metadata)
    outbox = RecordingOutbox()
    # One transaction: a commit (an fsync) for each of 1,333 steps took seconds.
    with db() as session, session.begin():
        for i in range(1000):
            domain.enqueue(
                session,
                outbox,
                f"{i:032x}",
                iso(T0 + dt.timedelta(seconds=i)),
                "girl",
                13,
                "0123456789abcdef" if i % 2 else None,
                bool(i % 2),
                now=T0,
            )
            if i % 3 == 0:
                domain.raise_for_risk(
                    session, outbox, f"{i:032x}", "high", "selvmord: «vil ikke leve lenger»; «tabletter»"
                )
    snap = read(db, domain.snapshot, T0 + dt.timedelta(hours=1))
    engine.dispose()
    # as the gateway receives it: through the event schema
    return ev.load(ev.QUEUE, ev.QUEUE_CHANGED, ev.dump(ev.QUEUE, ev.QUEUE_CHANGED, snap))


def test_a_push_with_1000_waiting_costs_a_few_kb(snapshot_1000):
    whole = len(json.dumps({"waiting": snapshot_1000["waiting"]}).encode())
    push = queue_push(snapshot_1000, config.queue_push_first())
    size = len(json.dumps({"type": "event", "event": "queue.changed", "data": push}).encode())
    print(f"\nqueue.changed with 1,000 waiting: {size} bytes per push (the whole list: {whole} bytes)")
    assert size < 16_000 and whole > 200_000
    assert len(push["waiting"]) == 25 and push["truncated"] is True
    assert push["waiting_count"] == 1000
    # real children at risk first: the counts say how many, the first entries who
    assert push["at_risk_count"] == sum(1 for w in snapshot_1000["waiting"] if w["risk"] and not w["suspect"])
    assert push["suspect_count"] == 500
    assert [w["chat_id"] for w in push["waiting"]] == [w["chat_id"] for w in snapshot_1000["waiting"][:25]]
    assert not any(w["suspect"] for w in push["waiting"])


def test_a_short_queue_is_pushed_whole():
    data = {"waiting": [{"chat_id": "a", "risk": True, "suspect": False}], "available_counsellors": 1}
    push = queue_push(data, 25)
    assert push["truncated"] is False and push["waiting_count"] == 1 and push["at_risk_count"] == 1
