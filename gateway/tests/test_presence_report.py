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
    reporter.sent(reporter.counts(hub()))
    reporter.joined_socket("c1")  # authenticated, then closed before the next report
    counts = reporter.counts(hub())
    assert counts == {"c1": 0} and reporter.due(counts)
    reporter.sent(counts)
    assert reporter.counts(hub()) == {}


def test_a_counsellor_last_reported_with_sockets_is_reported_once_with_none():
    reporter = Reporter()
    reporter.joined_socket("c1")
    first = reporter.counts(hub("c1", "c1"))
    assert first == {"c1": 2}
    reporter.sent(first)
    assert reporter.counts(hub()) == {"c1": 0}


def test_a_socket_that_joins_while_a_report_is_sent_is_kept_for_the_next():
    reporter = Reporter()
    reporter.joined_socket("c1")
    counts = reporter.counts(hub("c1"))
    reporter.joined_socket("c2")  # during the RPC
    reporter.sent(counts)
    assert reporter.counts(hub()) == {"c1": 0, "c2": 0}
