"""The intake queue on the real stack and broker (issue 3): priority with its
reason, pushed positions, capacity, abandonment with its wait, cool-down.

The session stack is shared with other tests: every chat here is taken by name
and ended at the end, and orders are asserted relative to our own chats."""

import secrets
import time

import eventlet
import pytest

from tests.client import Api, Socket

pytestmark = pytest.mark.e2e

RISKY = "jeg vil ta livet mitt"


def new_chat(stack, message="hei", **extra):
    child = Api(stack.url)
    response = child.post("/api/v1/chats", {"message": message, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    child.token = body["token"]
    child.chat_id = body["chat_id"]
    return child


def staff(stack, role="counsellor", name=None):
    username = f"q-{role}-{secrets.token_hex(4)}"
    password = stack.add_account(username, name or f"Kari {username[-4:]}", role)
    client = Api(stack.url)
    client.id = client.login(username, password)["counsellor"]["id"]
    return client


def eventually(fn, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        eventlet.sleep(interval)
    raise AssertionError(f"not within {timeout} s (last: {last!r})")


def waiting_ids(supervisor):
    return [w["chat_id"] for w in supervisor.get("/api/v1/queue").json()["waiting"]]


def leave(*children):
    for child in children:
        child.post(f"/api/v1/chats/{child.chat_id}/end", {})


def test_risk_raises_a_chat_with_the_reason_and_a_supervisor_can_reorder(stack):
    supervisor = staff(stack, "supervisor")
    a, b = new_chat(stack), new_chat(stack)
    c = new_chat(stack, RISKY)  # risk on the first message
    try:

        def risky_first():
            waiting = supervisor.get("/api/v1/queue").json()["waiting"]
            mine = [w for w in waiting if w["chat_id"] in (a.chat_id, b.chat_id, c.chat_id)]
            return [w["chat_id"] for w in mine] == [c.chat_id, a.chat_id, b.chat_id] and mine[0]

        entry = eventually(risky_first)
        assert entry["risk"] is True and entry["priority"] > 0
        # the category in words and what matched, never a quote of the child (issue 13)
        assert "suicide" in entry["reason"] and "«" not in entry["reason"] and entry["priority_source"] == "risk_screen"
        # A later message while waiting raises b as well.
        assert b.post(f"/api/v1/chats/{b.chat_id}/messages", {"text": "pappa slår meg"}).status_code == 201
        eventually(
            lambda: [i for i in waiting_ids(supervisor) if i in (a.chat_id, b.chat_id)] == [b.chat_id, a.chat_id]
        )
        # By hand, with a reason; a counsellor may not.
        body = {"priority": 90, "reason": "Ringte også i går, svært urolig"}
        counsellor = staff(stack)
        assert counsellor.put(f"/api/v1/queue/{a.chat_id}/priority", body).status_code == 403
        assert supervisor.put(f"/api/v1/queue/{a.chat_id}/priority", {"priority": 5}).status_code == 422
        assert supervisor.put(f"/api/v1/queue/{a.chat_id}/priority", body).status_code == 200
        queue = supervisor.get("/api/v1/queue").json()["waiting"]
        mine = [w for w in queue if w["chat_id"] in (a.chat_id, b.chat_id, c.chat_id)]
        # b and c are both high now: then arrival decides.
        assert [w["chat_id"] for w in mine] == [a.chat_id, b.chat_id, c.chat_id]
        assert mine[0]["reason"] == body["reason"] and mine[0]["priority_source"] == "supervisor"
        # The child sees the same place the queue shows.
        place = {w["chat_id"]: w["position"] for w in queue}
        seen = a.get(f"/api/v1/chats/{a.chat_id}").json()
        assert seen["status"] == "waiting" and seen["position"] == place[a.chat_id]
        assert "estimated_wait_s" in seen and "notice" in seen
    finally:
        leave(a, b, c)


def test_a_waiting_child_is_pushed_its_new_place(stack):
    ahead, me = new_chat(stack), new_chat(stack)
    socket = Socket(stack.url, me.token)
    try:
        before = me.get(f"/api/v1/chats/{me.chat_id}").json()["position"]
        leave(ahead)
        pushed = socket.wait_for("queue.position", lambda d: d["chat_id"] == me.chat_id and d["position"] == before - 1)
        assert "estimated_wait_s" in pushed and "notice" in pushed
        # Its estimate is a number from real takes, or null: never made up.
        assert pushed["estimated_wait_s"] is None or pushed["estimated_wait_s"] >= 0
        assert me.get(f"/api/v1/chats/{me.chat_id}").json()["position"] == before - 1
    finally:
        socket.close()
        leave(me)


def test_capacity_409_and_empty_204(stack):
    counsellor = staff(stack)
    assert counsellor.put("/api/v1/presence", {"status": "available", "capacity": 11}).status_code == 422
    presence = counsellor.put("/api/v1/presence", {"status": "available", "capacity": 1}).json()
    assert presence["capacity"] == 1 and presence["active_chats"] == 0
    first, second = new_chat(stack), new_chat(stack)
    try:
        taken = counsellor.post("/api/v1/queue/take", {"chat_id": first.chat_id})
        assert taken.status_code == 200 and taken.json()["chat_id"] == first.chat_id
        refused = counsellor.post("/api/v1/queue/take", {"chat_id": second.chat_id})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
        assert counsellor.get("/api/v1/presence").json()["active_chats"] == 1
        # The refused chat kept its place; once the first ends, there is room again.
        assert second.get(f"/api/v1/chats/{second.chat_id}").json()["status"] == "waiting"
        leave(first)
        eventually(lambda: counsellor.get("/api/v1/presence").json()["active_chats"] == 0)
        assert counsellor.post("/api/v1/queue/take", {"chat_id": second.chat_id}).status_code == 200
        # Someone else asks for a chat that is no longer waiting.
        other = staff(stack)
        assert other.post("/api/v1/queue/take", {"chat_id": second.chat_id}).status_code == 409
        assert other.post("/api/v1/queue/take", {"chat_id": "nope"}).status_code == 404
    finally:
        leave(first, second)


def test_take_answers_204_when_nobody_waits(tmp_path):
    from tests.stack import Stack

    # Its own stack: the shared queue is never guaranteed empty.
    stack = Stack(tmp_path).start()
    try:
        counsellor = Api(stack.url)
        counsellor.login("demo-counsellor")
        assert counsellor.put("/api/v1/presence", {"status": "available"}).status_code == 200
        response = counsellor.post("/api/v1/queue/take", {})
        assert response.status_code == 204 and response.content == b""
        child = new_chat(stack)
        assert counsellor.post("/api/v1/queue/take", {}).json()["chat_id"] == child.chat_id
    finally:
        stack.stop()


def test_a_child_who_leaves_while_waiting_is_abandoned_with_the_wait(stack):
    supervisor = staff(stack, "supervisor")
    before = supervisor.get("/api/v1/queue/stats").json()
    child = new_chat(stack)
    eventlet.sleep(0.5)
    ended = child.post(f"/api/v1/chats/{child.chat_id}/end", {"reason": "quick_exit"})
    assert ended.status_code == 200 and ended.json()["status"] == "abandoned"
    # The child's token ended with the chat (issue 12): a supervisor looks.
    assert supervisor.get(f"/api/v1/chats/{child.chat_id}").json()["position"] is None

    def counted():
        stats = supervisor.get("/api/v1/queue/stats").json()
        return stats if stats["abandoned"] == before["abandoned"] + 1 else None

    stats = eventually(counted)
    assert stats["abandoned_wait_s"]["max"] >= 0.5
    assert child.chat_id not in waiting_ids(supervisor)
    assert staff(stack).get("/api/v1/queue/stats").status_code == 403
    assert supervisor.get("/api/v1/queue/stats?from=yesterday").status_code == 422


@pytest.mark.parametrize("found_by", ["risk_screen", "escalation"])
def test_cooldown_after_acute_danger_and_supervisors_are_told(stack, found_by):
    counsellor = staff(stack)
    supervisor = staff(stack, "supervisor")
    watch = Socket(stack.url, supervisor.token)
    mine = Socket(stack.url, counsellor.token)
    counsellor.put("/api/v1/presence", {"status": "available", "capacity": 3})
    child, later = new_chat(stack), new_chat(stack)
    try:
        assert counsellor.post("/api/v1/queue/take", {"chat_id": child.chat_id}).status_code == 200
        if found_by == "risk_screen":
            child.post(f"/api/v1/chats/{child.chat_id}/messages", {"text": RISKY})
            watch.wait_for("escalation.alert", lambda d: d["chat_id"] == child.chat_id)
        else:
            raised = counsellor.post(
                f"/api/v1/chats/{child.chat_id}/escalations",
                {"kind": "acute_danger", "details": {"note": "ringte 112"}},
            )
            assert raised.status_code == 201, raised.text
        eventlet.sleep(0.5)  # the fact reaches the queue by event
        counsellor.post(f"/api/v1/chats/{child.chat_id}/end", {})
        told = watch.wait_for("counsellor.cooldown", lambda d: d["counsellor_id"] == counsellor.id)
        assert told["state"] == "started" and told["chat_id"] == child.chat_id and told["until"]
        mine.wait_for("counsellor.cooldown", lambda d: d["counsellor_id"] == counsellor.id)
        refused = counsellor.post("/api/v1/queue/take", {"chat_id": later.chat_id})
        assert refused.status_code == 409 and "cool-down" in refused.json()["error"]["message"]
        assert counsellor.get("/api/v1/presence").json()["cooldown_until"] == told["until"]
        # The counsellor says they are ready; supervisors hear that too.
        view = counsellor.put("/api/v1/presence", {"status": "available", "opt_in": True}).json()
        assert view["cooldown_opt_in"] is True
        watch.wait_for(
            "counsellor.cooldown", lambda d: d["counsellor_id"] == counsellor.id and d["state"] == "opted_in"
        )
        assert counsellor.post("/api/v1/queue/take", {"chat_id": later.chat_id}).status_code == 200
        listed = {c["id"]: c for c in supervisor.get("/api/v1/queue/counsellors").json()["counsellors"]}
        assert listed[counsellor.id]["cooldown_until"] == told["until"]
    finally:
        watch.close()
        mine.close()
        leave(child, later)
