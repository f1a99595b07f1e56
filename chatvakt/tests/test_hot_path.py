"""What the relay's hot path leaves out (issue 16), tested without a broker:
the per-worker log line an HTTP request already has, and the one of a
worker that runs for every relayed message."""

import logging
from types import SimpleNamespace

from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler

from chatvakt.observability import Observed, per_message


def _worker(entrypoint, method):
    entrypoint.method_name = method
    return SimpleNamespace(entrypoint=entrypoint, data={"_started": 0.0})


def test_an_http_request_is_logged_once_by_its_access_line(caplog):
    observed = Observed()
    observed.container = SimpleNamespace(service_name="gateway")
    caplog.set_level(logging.INFO, logger="chatvakt.observability")
    observed.worker_result(_worker(HttpRequestHandler("POST", "/x"), "post_message"))
    assert not caplog.records
    observed.worker_result(_worker(Rpc(), "post_message"))
    assert [r.getMessage().split()[0] for r in caplog.records] == ["gateway.post_message"]


def test_a_per_message_entrypoint_writes_no_line_but_its_unexpected_failure(caplog):
    class Service:
        @per_message
        def post_message(self):
            pass

        def end_chat(self):
            pass

    observed = Observed()
    observed.container = SimpleNamespace(service_name="chat")
    caplog.set_level(logging.INFO, logger="chatvakt.observability")
    for method in ("post_message", "end_chat"):
        worker = _worker(Rpc(), method)
        worker.service = Service()
        observed.worker_result(worker)
    assert [r.getMessage().split()[0] for r in caplog.records] == ["chat.end_chat"]
    caplog.clear()
    worker = _worker(Rpc(), "post_message")
    worker.service = Service()
    observed.worker_result(worker, exc_info=(RuntimeError, RuntimeError(), None))
    assert [r.levelname for r in caplog.records] == ["ERROR"]
