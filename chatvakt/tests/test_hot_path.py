"""What the relay's hot path leaves out (issue 16), tested without a broker:
the per-worker log line an HTTP request already has."""

import logging
from types import SimpleNamespace

from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler

from chatvakt.observability import Observed


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
