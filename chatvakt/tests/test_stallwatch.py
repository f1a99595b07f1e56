"""chatvakt/stallwatch.py: a pause of the event loop is logged with where it was, never a value."""

import logging

import eventlet
from eventlet import patcher

from chatvakt import stallwatch

real_time = patcher.original("time")
real_threading = patcher.original("threading")


def test_a_pause_is_caught_once_and_logged_when_the_loop_turns(caplog):
    now = [100.0]
    watch = stallwatch.Watch(0.05, lambda: now[0], real_threading.get_ident())
    watch.beat()
    now[0] += 0.03
    watch.look()
    assert watch.caught == []  # under the threshold
    now[0] += 0.05
    watch.look()
    watch.look()  # the same pause: taken once
    assert len(watch.caught) == 1
    now[0] += 0.02
    with caplog.at_level(logging.WARNING, logger="chatvakt.stallwatch"):
        watch.beat()
    (record,) = caplog.records
    assert "stopped for 100 ms (over 80 ms when caught)" in record.getMessage()
    assert "test_a_pause_is_caught_once_and_logged_when_the_loop_turns" in record.getMessage()
    assert watch.caught == []


def _a_call_that_blocks_the_loop(seconds):
    words = "jeg vil ikke leve lenger"  # what a frame may hold: never logged  # noqa: F841
    real_time.sleep(seconds)  # not green: the loop stops


def test_the_watch_names_the_blocking_call_from_a_real_thread_and_no_value(monkeypatch, caplog):
    monkeypatch.setenv("CHATVAKT_STALL_WATCH_MS", "50")
    with caplog.at_level(logging.WARNING, logger="chatvakt.stallwatch"):
        watch = stallwatch.start()
        try:
            eventlet.sleep(0.05)
            _a_call_that_blocks_the_loop(0.2)
            eventlet.sleep(0.05)
        finally:
            watch.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "chatvakt/tests/test_stallwatch.py:" in lines[0] and "_a_call_that_blocks_the_loop" in lines[0]
    assert "/work/" not in lines[0] and "site-packages" not in lines[0]
    assert "ikke leve" not in lines[0]


def test_off_unless_set(monkeypatch):
    monkeypatch.delenv("CHATVAKT_STALL_WATCH_MS", raising=False)
    assert stallwatch.start() is None


def test_paths_lose_the_machines_part():
    assert stallwatch._short(stallwatch._ROOT + "services/chat/domain.py") == "services/chat/domain.py"
    assert stallwatch._short("/x/.venv/lib/python3.11/site-packages/eventlet/hub.py") == "eventlet/hub.py"
    assert stallwatch._short("/usr/lib/python3.11/threading.py") == "threading.py"
