"""What a gateway process tells the queue about counsellors' sockets."""

from types import SimpleNamespace

from gateway.presence import Reporter


def hub(*ids):
    return SimpleNamespace(
        connections={
            n: SimpleNamespace(context_data={"actor": {"id": cid, "role": "counsellor"}}) for n, cid in enumerate(ids)
        }
    )


def test_a_socket_that_came_and_went_between_reports_is_reported_as_none():
    reporter = Reporter()
    reporter.sent(reporter.counts(hub()), 10.0)
    reporter.joined_socket("c1")  # authenticated, then closed before the next report
    counts = reporter.counts(hub())
    assert counts == {"c1": 0} and reporter.due(counts, 10.5)
    reporter.sent(counts, 10.5)
    assert reporter.counts(hub()) == {}


def test_a_counsellor_last_reported_with_sockets_is_reported_once_with_none():
    reporter = Reporter()
    reporter.joined_socket("c1")
    first = reporter.counts(hub("c1", "c1"))
    assert first == {"c1": 2}
    reporter.sent(first, 1.0)
    assert reporter.counts(hub()) == {"c1": 0}


def test_a_socket_that_joins_while_a_report_is_sent_is_kept_for_the_next():
    reporter = Reporter()
    reporter.joined_socket("c1")
    counts = reporter.counts(hub("c1"))
    reporter.joined_socket("c2")  # during the RPC
    reporter.sent(counts, 1.0)
    assert reporter.counts(hub()) == {"c1": 0, "c2": 0}


def test_the_heartbeat_goes_out_on_the_tick_it_is_due_however_long_the_last_rpc_took(monkeypatch):
    # Ticks every REPORT_S (1 s); counted from the end of the last report's
    # RPC, a heartbeat of 1 s went out every other tick, so a report slowed
    # by a second left the queue 3 s without one and a counsellor whose
    # socket was open went offline (tests/test_queue_replicas.py).
    from gateway.presence import REPORT_S

    assert REPORT_S == 1.0
    reporter = Reporter()
    same = reporter.counts(hub("c1"))
    monkeypatch.setenv("CHATVAKT_PRESENCE_HEARTBEAT_S", "1")
    reporter.sent(same, 100.0)  # its RPC answered at 100.3
    assert reporter.due(same, 101.0)
    monkeypatch.setenv("CHATVAKT_PRESENCE_HEARTBEAT_S", "15")
    assert not reporter.due(same, 114.0) and reporter.due(same, 115.0)
    assert reporter.due({"c1": 2}, 100.5)  # a change goes out at once
