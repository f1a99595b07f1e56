"""Bounded admission (gateway/admission.py) through the real request handler,
with nameko's container stubbed: no broker. Each "RPC" is a green thread the
test finishes by hand, with a result or an error."""

import json
import sys
import time

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
    monkeypatch.setenv("CHATVAKT_ADMISSION_WAIT_S", "0")  # the tests of the wait set their own
    monkeypatch.setattr(ApiHandler, "gate", None)
    return Container()


@pytest.fixture
def waiting(container, monkeypatch):
    """Two slots, and a request past them waits up to 0.3 s for one."""
    monkeypatch.setenv("CHATVAKT_ADMISSION_WAIT_S", "0.3")
    return container


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


def test_with_no_wait_the_request_past_the_limit_is_answered_503_at_once(container):
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


def settle():
    """Long enough for every green thread woken to run (each hand-over takes a turn of the hub)."""
    eventlet.sleep(0.01)


def test_a_request_past_the_limit_waits_and_takes_the_first_slot_given_back(waiting):
    results = []
    held = [post(waiting, results), post(waiting, results)]
    queued = []
    thread = post(waiting, queued)
    assert len(waiting.calls) == 2 and queued == []  # waiting, not shed, and no RPC yet
    waiting.calls[0][1].send((201, {"seq": 1}))
    finished(held[0])
    settle()
    assert len(waiting.calls) == 3  # the slot went to it, not back to the pool
    assert ApiHandler.gate.in_use == 2 and not ApiHandler.gate.waiting
    waiting.calls[2][1].send((201, {"seq": 2}))
    assert finished(thread) is None and queued[0].status_code == 201


def test_waiters_are_served_in_order_and_a_newcomer_queues_behind_them(waiting):
    results, first, second, late = [], [], [], []
    post(waiting, results), post(waiting, results)
    post(waiting, first), post(waiting, second)
    waiting.calls[0][1].send((201, {"seq": 1}))
    settle()
    # A slot freed: it is the first waiter's. A request arriving now finds it
    # already taken and waits behind the second.
    post(waiting, late)
    assert len(ApiHandler.gate.waiting) == 2 and len(waiting.calls) == 3
    for n in range(1, 5):
        waiting.calls[n][1].send((201, {"seq": n + 1}))
        settle()
    assert [r[0].status_code for r in (first, second, late)] == [201, 201, 201]
    assert [body(r[0])["seq"] for r in (first, second, late)] == [3, 4, 5]
    assert ApiHandler.gate.in_use == 0 and not ApiHandler.gate.waiting


def test_a_wait_that_runs_out_is_answered_503_without_an_rpc(waiting):
    results, shed = [], []
    post(waiting, results), post(waiting, results)
    started = time.monotonic()
    finished(post(waiting, shed))
    waited = time.monotonic() - started
    assert shed[0].status_code == 503 and body(shed[0])["error"]["code"] == "overloaded"
    assert shed[0].headers["Retry-After"] == "1"
    assert 0.25 <= waited < 1.0
    assert len(waiting.calls) == 2 and not ApiHandler.gate.waiting
    # The slots it did not get are still the two in flight, and free up as before.
    waiting.calls[0][1].send((201, {"seq": 1}))
    settle()
    assert ApiHandler.gate.in_use == 1


def test_no_more_wait_than_there_are_slots(waiting):
    results, queued, shed = [], [], []
    post(waiting, results), post(waiting, results)
    post(waiting, queued), post(waiting, queued)  # the line is as long as the slots (2)
    started = time.monotonic()
    finished(post(waiting, shed))
    assert time.monotonic() - started < 0.1  # past the line's length: 503 at once
    assert shed[0].status_code == 503 and len(ApiHandler.gate.waiting) == 2


def test_a_waiter_that_goes_away_leaves_the_line_and_its_slot_goes_on(waiting):
    results, gone, next_in_line = [], [], []
    post(waiting, results), post(waiting, results)
    leaver = post(waiting, gone)
    post(waiting, next_in_line)
    leaver.kill()  # the client closed its connection while it waited
    assert len(ApiHandler.gate.waiting) == 1
    waiting.calls[0][1].send((201, {"seq": 1}))
    settle()
    settle()
    assert len(waiting.calls) == 3 and gone == []  # the slot went to the one still there
    assert ApiHandler.gate.in_use == 2


def test_a_slot_handed_to_a_waiter_killed_before_it_woke_goes_on():
    gate = admission.Gate(1, wait_s=5, max_waiting=2)
    assert gate.take() == "main"
    got = []
    first = eventlet.spawn(lambda: got.append(gate.take()))
    second = eventlet.spawn(lambda: got.append(gate.take()))
    settle()
    gate.give("main")  # handed to the first, which has not run since
    first.kill()
    with eventlet.Timeout(1):
        second.wait()
    assert got == ["main"] and gate.in_use == 1 and not gate.waiting


def test_by_default_a_whole_line_is_served_while_slots_come_back_at_the_relays_rate(monkeypatch):
    """The default wait covers the line it allows: 75 requests wait behind 75
    in flight, the slots come back six every 10 ms (600 a second, a relay near
    its capacity on two cores), and every one of the 75 is admitted. A wait of
    0.1 s refused the back of the line, whom the relay served within 0.13 s."""
    monkeypatch.delenv("CHATVAKT_ADMISSION_WAIT_S", raising=False)
    monkeypatch.delenv("CHATVAKT_MAX_INFLIGHT", raising=False)
    gate = admission.gate_for(100)
    assert (gate.limit, gate.max_waiting) == (75, 75)
    for _ in range(75):
        assert gate.take() == "main"
    outcomes = []
    waiters = [eventlet.spawn(lambda: outcomes.append(gate.take())) for _ in range(75)]
    eventlet.sleep(0)
    assert len(gate.waiting) == 75
    while gate.waiting:
        eventlet.sleep(0.01)
        for _ in range(6):
            gate.give("main")  # straight to the first in line while there is one
    for waiter in waiters:
        waiter.wait()
    assert outcomes == ["main"] * 75
