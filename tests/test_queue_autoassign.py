"""Auto-assign (CHATVAKT_AUTO_ASSIGN=1) on the real stack: the head of the
queue is offered to the least-loaded available counsellor, who accepts in
time, or the chat goes back to the head and is offered again."""

import pytest

from tests.client import Socket
from tests.stack import Stack
from tests.test_queue_e2e import eventually, leave, new_chat, staff

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def auto_stack(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("autoassign"),
        env={
            "CHATVAKT_AUTO_ASSIGN": "1",
            "CHATVAKT_OFFER_TIMEOUT_S": "2",
            "CHATVAKT_QUEUE_TICK_S": "0.3",
        },
    ).start()
    yield stack
    stack.stop()


def test_offer_accept_and_expiry_back_to_the_head(auto_stack):
    first, second = staff(auto_stack), staff(auto_stack)
    sockets = {c.id: Socket(auto_stack.url, c.token) for c in (first, second)}
    child = new_chat(auto_stack)
    try:
        # Only `first` is available: the offer goes to them ...
        first.put("/api/v1/presence", {"status": "available", "capacity": 2})
        offer = sockets[first.id].wait_for("queue.offer", lambda d: d["chat_id"] == child.chat_id)
        assert offer["counsellor_id"] == first.id and offer["expires_at"]
        second.put("/api/v1/presence", {"status": "available", "capacity": 2})
        # ... who lets it pass: back at the head, it is offered to the other one.
        gone = sockets[first.id].wait_for("queue.offer_withdrawn", lambda d: d["chat_id"] == child.chat_id)
        assert gone["why"] == "expired"
        sockets[second.id].wait_for("queue.offer", lambda d: d["chat_id"] == child.chat_id)
        assert first.post(f"/api/v1/queue/offers/{child.chat_id}/accept").status_code == 409
        accepted = second.post(f"/api/v1/queue/offers/{child.chat_id}/accept")
        assert accepted.status_code == 200, accepted.text
        eventually(lambda: child.get(f"/api/v1/chats/{child.chat_id}").json()["status"] == "active")
        assert second.get("/api/v1/presence").json()["active_chats"] == 1
        # The least loaded gets the next offer; declined, it goes to the other at once.
        other = new_chat(auto_stack)
        sockets[first.id].wait_for("queue.offer", lambda d: d["chat_id"] == other.chat_id)
        assert first.post(f"/api/v1/queue/offers/{other.chat_id}/decline").json()["declined"] is True
        sockets[second.id].wait_for("queue.offer", lambda d: d["chat_id"] == other.chat_id)
        assert second.post(f"/api/v1/queue/offers/{other.chat_id}/accept").status_code == 200
        leave(other)
    finally:
        for socket in sockets.values():
            socket.close()
        leave(child)
