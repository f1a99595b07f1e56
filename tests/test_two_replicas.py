"""Two processes of every service (`chatvakt run --replicas 2`) behave like one:
the whole chat works through either gateway, and no event is handled twice in
effect (one uncoded record, one coding version, one risk flag per message and
category, one alert, gap-free messages)."""

import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from tests.client import Api, Socket
from tests.stack import Stack
from tests.test_e2e_chat import staff, whole_chat

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("twin"), replicas=2).start()
    assert len(running.pids("chat")) == 2 and len(running.pids("gateway")) == 2
    yield running
    running.stop()


def test_the_whole_chat_with_two_of_everything(twin):
    whole_chat(twin)


def test_events_take_effect_once(twin):
    second = Api(f"http://127.0.0.1:{twin.port + 1}")  # the other gateway
    chat = second.post("/api/v1/chats", {"message": "jeg vil ta livet mitt"}).json()
    counsellor = staff(twin)
    watcher = Socket(twin.url, counsellor.token)
    assert counsellor.put("/api/v1/presence", {"status": "available"}).status_code == 200
    assert counsellor.post("/api/v1/queue/take", {"chat_id": chat["chat_id"]}).status_code == 200
    child = Api(twin.url, chat["token"])
    for i in range(10):
        assert (
            child.post(
                f"/api/v1/chats/{chat['chat_id']}/messages", {"text": f"melding {i}", "client_msg_id": f"m{i}"}
            ).status_code
            == 201
        )
    assert child.post(f"/api/v1/chats/{chat['chat_id']}/end").status_code == 200
    watcher.wait_for("coding.required", lambda d: d["chat_id"] == chat["chat_id"])
    time.sleep(2.5)  # let any second delivery (outbox sweeper, redelivery) arrive if it would

    # The child's token ended with the chat (issue 12); the counsellor reads it.
    messages = counsellor.get(f"/api/v1/chats/{chat['chat_id']}/messages?after=0").json()["messages"]
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert sum(1 for m in messages if m["kind"] == "connected") == 1
    uncoded = [c for c in counsellor.get("/api/v1/coding/uncoded").json()["chats"] if c["chat_id"] == chat["chat_id"]]
    assert len(uncoded) == 1
    pushed = [e for e in watcher.events if e["event"] == "chat.message" and e["data"]["chat_id"] == chat["chat_id"]]
    assert len(pushed) == len({e["data"]["seq"] for e in pushed})  # each seq pushed once
    with ClusterRpcProxy({"AMQP_URI": twin.amqp_uri}, timeout=10) as cluster:
        flags = cluster.escalation.flags(chat["chat_id"])
    assert len(flags) == len({(f["seq"], f["category"]) for f in flags}) >= 1
    watcher.close()
