"""Faults under traffic: nothing that got a 201 is lost, nothing is doubled.

The stack runs on a RabbitMQ node of its own (tests/private_broker.py), so the
broker can be restarted without touching the shared one. Children and
counsellors chat through the gateway the whole time (tests/faults/ledger.py)
while each test breaks one thing:
- SIGKILL of the chat service mid-stream (the launcher restarts it);
- a restart of the broker;
- SIGKILL of the gateway (the launcher restarts it; sockets reconnect);
- SIGSTOP of the chat service past CHATVAKT_RPC_TIMEOUT, then SIGCONT.
Each scores the ledger (zero lost, zero duplicated, zero unexpected) and
checks that a message sent after the fault healed is relayed within 10 s.
"""

import os
import secrets
import signal
import time

import eventlet
import psutil
import pytest
import requests

from tests.client import Api
from tests.faults.ledger import Ledger, Receiver, Sender
from tests.private_broker import PrivateBroker, available
from tests.stack import Stack

pytestmark = [
    pytest.mark.faults,
    pytest.mark.e2e,
    pytest.mark.skipif(not available(), reason="rabbitmq-server is not installed"),
]

CHATS = int(os.environ.get("CHATVAKT_FAULT_CHATS", "3"))
RELAY_BACK_S = 10.0
TRAFFIC_ENV = {
    "CHATVAKT_RPC_TIMEOUT": "2",
    # The ledger's senders post faster than a person; the limits are not under test here.
    "CHATVAKT_CHILD_MSGS_PER_MIN": "100000",
    "CHATVAKT_TOKEN_RATE": "1000",
    "CHATVAKT_TOKEN_BURST": "1000",
    "CHATVAKT_DEMO": "0",
}


def booted(node):
    """For a fixture: a broker (or cluster) of the test's own, removed afterwards."""
    node.boot_seconds = node.start()
    yield node
    node.cleanup()


def stack_on(workdir, broker, **env):
    """For a fixture: a stack on `broker`, with the limits the traffic needs."""
    stack = Stack(workdir, broker_uri=broker.amqp_uri, env={**TRAFFIC_ENV, **env})
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from booted(PrivateBroker(tmp_path_factory.mktemp("broker")))


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory, broker):
    yield from stack_on(tmp_path_factory.mktemp("faultstack"), broker)


def stack_process(stack, service):
    """The live process of one service, among the children of this stack's launcher only."""
    launcher = psutil.Process(stack.proc.pid)
    module = {"chat": "services.chat.service", "gateway": "gateway.service"}[service]
    for child in launcher.children():
        try:
            if any(module in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def gone(process, timeout=10):
    # psutil's wait() needs select.poll, which eventlet's patching removes.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        eventlet.sleep(0.05)
    raise AssertionError("the process did not die")


def wait_ready(stack, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(stack.url + "/readyz", timeout=2).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        eventlet.sleep(0.1)
    raise AssertionError(f"the stack did not heal within {timeout} s")


def open_chats(stack, count):
    username = f"fault-{secrets.token_hex(3)}"
    password = stack.add_account(username, f"Kari {username}", "counsellor")
    counsellor = Api(stack.url)
    counsellor.login(username, password)
    assert counsellor.put("/api/v1/presence", {"status": "available", "capacity": 10}).status_code == 200
    chats = []
    for _ in range(count):
        started = Api(stack.url).post("/api/v1/chats", {"gender": "girl", "age": 13})
        assert started.status_code == 201, started.text
        chat = started.json()
        taken = counsellor.post("/api/v1/queue/take", {"chat_id": chat["chat_id"]})
        assert taken.status_code == 200, taken.text
        chats.append(chat)
    return counsellor.token, chats


class Traffic:
    def __init__(self, stack, count=CHATS, interval=0.1):
        self.ledger = Ledger()
        token, chats = open_chats(stack, count)
        self.chats = chats
        ids = [c["chat_id"] for c in chats]
        self.receivers = [Receiver(stack.url, token, "counsellor", ids, self.ledger, Api(stack.url, token))]
        for chat in chats:
            self.receivers.append(
                Receiver(
                    stack.url, chat["token"], "child", [chat["chat_id"]], self.ledger, Api(stack.url, chat["token"])
                )
            )
        for receiver in self.receivers:
            receiver.connected.wait()
        self.senders = []
        for chat in chats:
            self.senders.append(Sender(Api(stack.url, chat["token"]), self.ledger, chat["chat_id"], "child", interval))
            self.senders.append(Sender(Api(stack.url, token), self.ledger, chat["chat_id"], "counsellor", interval))

    def relay_back(self, healed_at, timeout=30):
        """Seconds from healing until a message first tried after it was pushed to the other side."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            best = None
            for (chat_id, sender, cmid), item in list(self.ledger.attempted.items()):
                if item["first_try"] < healed_at:
                    continue
                acked = self.ledger.acked.get((chat_id, sender, cmid))
                if acked is None:
                    continue
                receiver = "counsellor" if sender == "child" else "child"
                pushed = self.ledger.pushed_at.get((chat_id, receiver, acked["seq"]))
                if pushed is not None:
                    best = pushed - healed_at if best is None else min(best, pushed - healed_at)
            if best is not None:
                return best
            eventlet.sleep(0.1)
        return None

    def finish(self):
        for sender in self.senders:
            sender.stop()
        # Let late pushes land (the outbox sweeper republishes within its claim of 10 s).
        eventlet.sleep(1.0)
        for receiver in self.receivers:
            receiver.stop()
        for receiver in self.receivers:
            for chat_id in receiver.chat_ids:
                assert receiver.catch_up(chat_id), "the final fetch failed"
        pairs = [
            (c["chat_id"], s, r) for c in self.chats for s, r in (("child", "counsellor"), ("counsellor", "child"))
        ]
        score = self.ledger.score(pairs)
        score["reconnects"] = sum(r.reconnects for r in self.receivers)
        return score


def check(score, relay_back, name, outage=None):
    outage = f"{outage:.1f} s" if outage is not None else "?"
    back = f"{relay_back:.2f} s" if relay_back is not None else "never"
    print(f"\n{name}: {score}; outage {outage}; relay back {back} after healing")
    assert score["acked"] > 0
    assert score["lost"] == 0, score
    assert score["duplicated"] == 0, score
    assert score["unexpected"] == 0, score
    assert not score["errors"], score
    assert relay_back is not None and relay_back < RELAY_BACK_S, relay_back


def survives(stack, name, fault):
    """Traffic through `stack` while `fault()` breaks one thing, scored once
    the stack is ready again; (traffic, score)."""
    traffic = Traffic(stack)
    eventlet.sleep(2)
    began = time.monotonic()
    fault()
    healed = wait_ready(stack)
    relay_back = traffic.relay_back(healed)
    eventlet.sleep(2)
    score = traffic.finish()
    check(score, relay_back, name, healed - began)
    return traffic, score


def kill(stack, service):
    victim = stack_process(stack, service)
    victim.send_signal(signal.SIGKILL)
    gone(victim)


def restart(broker):
    broker.stop()
    eventlet.sleep(1)
    broker.start()


def test_sigkill_of_the_chat_service_mid_stream(fault_stack):
    survives(fault_stack, "SIGKILL chat", lambda: kill(fault_stack, "chat"))


def test_broker_restart(fault_stack, broker):
    survives(fault_stack, "broker restart", lambda: restart(broker))


def test_sigkill_of_the_gateway(fault_stack):
    traffic, score = survives(fault_stack, "SIGKILL gateway", lambda: kill(fault_stack, "gateway"))
    assert score["reconnects"] >= len(traffic.receivers)


def test_sigstop_of_the_chat_service_past_the_rpc_timeout(fault_stack):
    def stop_past_the_rpc_timeout():
        victim = stack_process(fault_stack, "chat")
        victim.send_signal(signal.SIGSTOP)
        try:
            eventlet.sleep(4)  # twice CHATVAKT_RPC_TIMEOUT: the gateway answers 503 meanwhile
            assert requests.get(fault_stack.url + "/readyz", timeout=5).status_code == 503
        finally:
            victim.send_signal(signal.SIGCONT)

    survives(fault_stack, "SIGSTOP chat", stop_past_the_rpc_timeout)


def test_the_queue_survives_a_broker_restart(fault_stack, broker):
    """Nothing waiting is lost or reordered when the broker restarts (issue 3):
    the queue lives in the queue service's database, not in the broker."""
    password = fault_stack.add_account("queue-watch", "Siri Queue", "supervisor")
    supervisor = Api(fault_stack.url)
    supervisor.login("queue-watch", password)
    chats = [
        Api(fault_stack.url).post("/api/v1/chats", {"message": text}).json()
        for text in ("hei", "jeg lurer på noe", "jeg vil ta livet mitt", "hallo?")
    ]
    ours = {c["chat_id"] for c in chats}

    def order():
        waiting = supervisor.get("/api/v1/queue").json()["waiting"]
        return [(w["chat_id"], w["priority"], w["reason"]) for w in waiting if w["chat_id"] in ours]

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        before = order()
        if len(before) == len(chats) and before[0][0] == chats[2]["chat_id"]:
            break  # all queued, and the child at risk raised to the head
        eventlet.sleep(0.2)
    assert len(before) == len(chats) and before[0][0] == chats[2]["chat_id"], before

    restart(broker)
    wait_ready(fault_stack)
    after = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            after = order()
            break
        except (requests.RequestException, ValueError):
            eventlet.sleep(0.3)
    assert after == before
    for chat in chats:
        Api(fault_stack.url, chat["token"]).post(f"/api/v1/chats/{chat['chat_id']}/end")
