"""The intake queue with two replicas of every process (issue 3): never two
counsellors on one chat and never a chat lost under concurrent takes through
both gateways; presence grace across gateway replicas; the closed-hours
notice; the queue survives a restart of the queue service unchanged."""

import datetime as dt
import os
import secrets
import signal
import time
from zoneinfo import ZoneInfo

import eventlet
import pytest
from eventlet.event import Event

from tests.client import Api, Socket
from tests.stack import Stack
from tests.test_queue_e2e import RISKY, eventually, leave, new_chat

pytestmark = pytest.mark.e2e

COUNSELLORS = 20
CHATS = 22


def closed_now():
    """Opening hours that leave out the present moment in Oslo."""
    start = dt.datetime.now(ZoneInfo("Europe/Oslo")) + dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.fixture(scope="module")
def stack2(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("queue2"),
        replicas=2,
        env={
            # Two heartbeats of slack: with one, a report late by a second
            # (a clean-clone `make test` on two busy cores) flapped a
            # counsellor whose socket was still open to offline.
            "CHATVAKT_PRESENCE_GRACE_S": "3",
            "CHATVAKT_PRESENCE_HEARTBEAT_S": "1",
            "CHATVAKT_OPEN_HOURS": closed_now(),
            "CHATVAKT_RPC_TIMEOUT": "3",
            "CHATVAKT_TOKEN_RATE": "1000",
            "CHATVAKT_TOKEN_BURST": "1000",
        },
    ).start()
    stack.urls = [stack.url, f"http://127.0.0.1:{stack.port + 1}"]
    yield stack
    stack.stop()


def accounts(stack, count, role="counsellor"):
    # New accounts on every call: the module's tests share one stack, and an
    # account an earlier test left online or holding a chat is not a new one.
    batch = secrets.token_hex(3)

    def make(i):
        username = f"rep-{role}-{i}-{batch}"
        password = stack.add_account(username, f"Rådgiver {i}", role)
        client = Api(stack.urls[i % 2])
        client.id = client.login(username, password)["counsellor"]["id"]
        return client

    return list(eventlet.GreenPool(10).imap(make, range(count)))


def test_two_replicas_and_concurrent_takes_never_double_assign(stack2):
    supervisor = Api(stack2.url)
    supervisor.login("demo-supervisor")
    chats = []
    for i in range(CHATS):
        child = Api(stack2.urls[i % 2])
        response = child.post("/api/v1/chats", {"message": "hei"})
        assert response.status_code == 201
        chats.append(response.json()["chat_id"])
    eventually(lambda: set(chats) <= {w["chat_id"] for w in supervisor.get("/api/v1/queue").json()["waiting"]})
    counsellors = accounts(stack2, COUNSELLORS)
    for c in counsellors:
        assert c.put("/api/v1/presence", {"status": "available", "capacity": 1}).status_code == 200

    # Every counsellor takes twice at the same moment, once through each gateway.
    calls = [(c, stack2.urls[k]) for c in counsellors for k in (0, 1)]
    start = Event()

    def take(call):
        client, url = call
        start.wait()
        response = Api(url, client.token).post("/api/v1/queue/take", {})
        return client.id, response.status_code, response.json() if response.status_code == 200 else None

    pool = eventlet.GreenPool(len(calls))
    running = [pool.spawn(take, call) for call in calls]
    eventlet.sleep(0.2)
    start.send()
    results = [g.wait() for g in running]

    assert {code for _, code, _ in results} <= {200, 204, 409}, results
    got = [(cid, body["chat_id"]) for cid, code, body in results if code == 200]
    taken = [chat for _, chat in got]
    assert len(taken) == len(set(taken)), "a chat was given to two counsellors"
    assert len(got) == COUNSELLORS  # capacity 1 each, more chats than counsellors
    assert len({cid for cid, _ in got}) == COUNSELLORS  # nobody past capacity
    assert set(taken) <= set(chats)
    # Nothing lost: every chat is either with exactly its taker or still waiting.
    waiting = {w["chat_id"] for w in supervisor.get("/api/v1/queue").json()["waiting"]}
    assert waiting == set(chats) - set(taken)
    for cid, chat_id in got:
        seen = supervisor.get(f"/api/v1/chats/{chat_id}").json()
        assert seen["status"] == "active" and seen["counsellor"]["id"] == cid
    listed = {c["id"]: c for c in supervisor.get("/api/v1/queue/counsellors").json()["counsellors"]}
    assert all(listed[c.id]["active_chats"] == 1 for c in counsellors)
    for _, chat_id in got:
        supervisor.post(f"/api/v1/chats/{chat_id}/end", {})


def test_offline_once_every_socket_has_been_gone_for_the_grace(stack2):
    leaving, staying = accounts(stack2, 2)
    sockets = {}
    for client, url in ((leaving, stack2.urls[1]), (staying, stack2.urls[0])):
        sockets[client.id] = Socket(url, client.token)
        assert client.put("/api/v1/presence", {"status": "available"}).status_code == 200
    eventlet.sleep(1.5)  # reported by the gateway
    sockets[leaving.id].close()
    eventually(lambda: leaving.get("/api/v1/presence").json()["status"] == "offline", timeout=15)
    assert staying.get("/api/v1/presence").json()["status"] == "available"
    sockets[staying.id].close()


def test_the_closed_notice_with_emergency_numbers(stack2):
    ahead, me = new_chat(stack2), new_chat(stack2)
    socket = Socket(stack2.url, me.token)
    try:
        seen = me.get(f"/api/v1/chats/{me.chat_id}").json()
        assert seen["notice"]["code"] == "closed" and seen["estimated_wait_s"] is None
        assert [e["number"] for e in seen["notice"]["emergency"]] == ["112", "113", "110", "116 117"]
        assert "116 117" in seen["notice"]["message_nb"]
        leave(ahead)
        pushed = socket.wait_for(
            "queue.position", lambda d: d["chat_id"] == me.chat_id and d["position"] == seen["position"] - 1
        )
        assert pushed["notice"]["code"] == "closed" and pushed["notice"]["may_keep_waiting"]
    finally:
        socket.close()
        leave(me)


def test_the_queue_survives_a_restart_of_the_queue_service(stack2):
    supervisor = Api(stack2.url)
    supervisor.login("demo-supervisor")
    mine = [new_chat(stack2), new_chat(stack2, RISKY), new_chat(stack2)]
    ids = {c.chat_id for c in mine}

    def order():
        return [w["chat_id"] for w in supervisor.get("/api/v1/queue").json()["waiting"]]

    eventually(lambda: ids <= set(order()) and order().index(mine[1].chat_id) < order().index(mine[0].chat_id))
    before = supervisor.get("/api/v1/queue").json()["waiting"]
    pids = stack2.pids("queue")
    assert len(pids) == 2
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # A child arrives while no queue process runs: chat_started waits in the broker.
    late = new_chat(stack2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(stack2.pids("queue")) < 2 or set(stack2.pids("queue")) & set(pids)):
        eventlet.sleep(0.2)
    assert stack2.wait_ready(60)
    after = eventually(
        lambda: (lambda w: w if late.chat_id in [e["chat_id"] for e in w] else None)(
            supervisor.get("/api/v1/queue").json()["waiting"]
        ),
        timeout=30,
    )
    assert [(e["chat_id"], e["priority"], e["reason"]) for e in after[:-1]] == [
        (e["chat_id"], e["priority"], e["reason"]) for e in before
    ]
    assert after[-1]["chat_id"] == late.chat_id
    leave(*mine, late)
