"""Bounded admission (gateway/admission.py) through the real request handler,
with nameko's container stubbed: no broker. Each "RPC" is a green thread the
test finishes by hand, with a result or an error."""

import json
import sys

import eventlet
import pytest
from eventlet.event import Event
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from chatvakt import errors
from gateway import admission
from gateway.web import ApiHandler

MESSAGES = "/api/v1/chats/<string:chat_id>/messages"


class Service:
    def post_message(self, request, chat_id):
        pass

    def get_queue(self, request):
        pass

    def healthz(self, request):
        pass


class Container:
    """What the handler asks of nameko's container: the worker slots, and a worker per call."""

    service_cls = Service
    max_workers = 100

    def __init__(self):
        self.calls = []  # (handle_result, Event) for each worker spawned, in order

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        done = Event()
        self.calls.append((handle_result, done))

        def work():
            outcome = done.wait()
            if isinstance(outcome, BaseException):
                try:
                    raise outcome
                except BaseException:  # noqa: BLE001 - handed to nameko's result handler
                    handle_result(None, None, sys.exc_info())
            else:
                handle_result(None, outcome, None)

        eventlet.spawn_n(work)


def handler(container, method, url, name):
    entry = ApiHandler(method, url)
    entry.container = container
    entry.method_name = name
    return entry


def request(method, path, path_values=None):
    environ = EnvironBuilder(method=method, path=path, json={} if method == "POST" else None).get_environ()
    req = Request(environ)
    req.path_values = path_values or {}
    return req


@pytest.fixture
def container(monkeypatch):
    monkeypatch.setenv("CHATVAKT_MAX_INFLIGHT", "2")
    monkeypatch.setattr(ApiHandler, "gate", None)
    return Container()


def post(container, results):
    """A child's message in a green thread of its own; its response lands in results."""
    entry = handler(container, "POST", MESSAGES, "post_message")
    req = request("POST", "/api/v1/chats/c1/messages", {"chat_id": "c1"})
    thread = eventlet.spawn(lambda: results.append(entry.handle_request(req)))
    eventlet.sleep(0)  # let it reach its RPC
    return thread


def finished(thread):
    """The thread's end; a request that was not shed would wait for its RPC for good."""
    with eventlet.Timeout(5):
        return thread.wait()


def body(response):
    return json.loads(response.get_data())


def test_the_request_past_the_limit_is_answered_503_at_once(container):
    results = []
    held = [post(container, results), post(container, results)]
    assert len(container.calls) == 2 and results == []
    shed = []
    finished(post(container, shed))
    assert shed[0].status_code == 503
    assert shed[0].headers["Retry-After"] == "1"
    assert body(shed[0])["error"]["code"] == "overloaded"
    assert len(container.calls) == 2  # shed before it cost an RPC
    # A finished request frees its slot: the next one is taken.
    container.calls[0][1].send((201, {"seq": 1}))
    finished(held[0])
    assert results[0].status_code == 201
    post(container, results)
    assert len(container.calls) == 3


def test_a_request_whose_rpc_raised_frees_its_slot(container):
    results = []
    threads = [post(container, results), post(container, results)]
    container.calls[0][1].send(errors.Unavailable("The chat service did not answer."))
    container.calls[1][1].send(RuntimeError("a bug"))
    for thread in threads:
        finished(thread)
    assert sorted(r.status_code for r in results) == [500, 503]
    assert all(body(r)["error"]["code"] != "overloaded" for r in results)
    assert ApiHandler.gate.in_use == 0
    post(container, results), post(container, results)
    assert len(container.calls) == 4


def test_a_request_killed_in_flight_frees_its_slot(container):
    results = []
    first = post(container, results)
    post(container, results)
    first.kill()
    assert ApiHandler.gate.in_use == 1
    post(container, results)
    assert len(container.calls) == 3


def test_probes_are_never_shed_and_staff_reads_have_a_reserve(container):
    results = []
    post(container, results), post(container, results)
    health = handler(container, "GET", "/healthz", "healthz")
    probe = eventlet.spawn(health.handle_request, request("GET", "/healthz"))
    eventlet.sleep(0)
    assert len(container.calls) == 3  # taken, though every slot is in use
    container.calls[2][1].send({"status": "ok"})
    assert finished(probe).status_code == 200
    # The reserve (at least 2) serves staff reads of the waiting list, not a child's message.
    queue = handler(container, "GET", "/api/v1/queue", "get_queue")
    for _ in range(ApiHandler.gate.reserve):
        eventlet.spawn(queue.handle_request, request("GET", "/api/v1/queue"))
    eventlet.sleep(0)
    assert len(container.calls) == 3 + ApiHandler.gate.reserve
    assert queue.handle_request(request("GET", "/api/v1/queue")).status_code == 503
    shed = []
    finished(post(container, shed))
    assert shed[0].status_code == 503


def test_the_default_is_three_quarters_of_the_worker_slots(monkeypatch):
    monkeypatch.delenv("CHATVAKT_MAX_INFLIGHT", raising=False)
    gate = admission.gate_for(100)
    assert (gate.limit, gate.reserve) == (75, 9)
    monkeypatch.setenv("CHATVAKT_MAX_INFLIGHT", "8")
    assert (admission.gate_for(100).limit, admission.gate_for(100).reserve) == (8, 2)


def test_shedding_warns_now_and_then_not_once_a_request(caplog):
    gate = admission.Gate(1)
    with caplog.at_level("WARNING", logger="gateway.admission"):
        for second in range(25):
            gate.shed(now=1000.0 + second)
    assert len(caplog.records) == 3  # at 0, 10 and 20 s
    assert "10 requests" in caplog.records[1].getMessage()
