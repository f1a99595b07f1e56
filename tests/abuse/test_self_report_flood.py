"""issue 14: a flood of "yes, I am in danger now" is held back like any flood.

One script at 127.0.0.3 opens chats with in_danger=true as fast as it can for
10 s, then says yes again on each through POST /api/v1/chats/{id}/danger. With
the real limits most of it answers 429; the gateway marks the source suspect
from its 11th chat on, and the queue moves the source's earlier chats to the
flood tier too. A real child from 127.0.0.1 who says yes afterwards must be
first, and supervisors get no alert for any suspect chat: at most one for each
of the first, not-yet-suspect chats.
"""

import time

import pytest

from tests.abuse.source import REAL_CHILD, flood_of_chats, session_from
from tests.client import Api, Socket
from tests.stack import Stack
from tests.test_queue_e2e import eventually

pytestmark = pytest.mark.e2e

ATTACKER = "127.0.0.3"
FLOOD_MAX, FLOOD_S = 60, 10.0
SUSPECT_AFTER = 10  # CHATVAKT_FLOOD_SUSPECT's default


@pytest.fixture(scope="module")
def limited_stack(tmp_path_factory):
    running = Stack(
        tmp_path_factory.mktemp("selfreport-flood"),
        real_limits=True,
        env={"CHATVAKT_ABSENT_GRACE_S": "120", "CHATVAKT_SEEN_REPORT_S": "2"},
    ).start()
    yield running
    running.stop()


def test_a_flood_of_yeses_stays_behind_a_real_childs_yes(limited_stack):
    stack = limited_stack
    supervisor = Api(stack.url)
    supervisor.login("demo-supervisor")
    watch = Socket(stack.url, supervisor.token)
    attacker = session_from(ATTACKER)
    flood, statuses = flood_of_chats(
        attacker, stack.url, lambda _: {"message": "hei", "in_danger": True}, FLOOD_MAX, FLOOD_S
    )
    print(f"\nflood of yeses: {statuses}")
    assert len(flood) > SUSPECT_AFTER, "the flood must pass the suspect threshold"
    # the same yes again on every flood chat: idempotent, and no alert either way
    again = {
        attacker.post(
            f"{stack.url}/api/v1/chats/{c['chat_id']}/danger",
            json={"in_danger": True},
            headers={"Authorization": f"Bearer {c['token']}"},
            timeout=10,
        ).json()["changed"]
        for c in flood
    }
    assert again == {False}

    child = Api(stack.url)  # a real child: 127.0.0.1
    response = child.post("/api/v1/chats", {"message": "hjelp", "in_danger": True})
    assert response.status_code == 201, response.text
    child.token, child.chat_id = response.json()["token"], response.json()["chat_id"]
    plain = Api(stack.url)
    response = plain.post("/api/v1/chats", {"message": "hei"})
    plain.token, plain.chat_id = response.json()["token"], response.json()["chat_id"]
    flood_ids = {c["chat_id"] for c in flood}
    try:

        def order():
            waiting = supervisor.get("/api/v1/queue").json()["waiting"]
            ids = [w["chat_id"] for w in waiting]
            return (
                ids[:2] == [child.chat_id, plain.chat_id]
                and all(w["suspect"] for w in waiting if w["chat_id"] in flood_ids)
                and len([i for i in ids if i in flood_ids]) == len(flood_ids)
            ) and waiting

        waiting = eventually(order, timeout=30)
        ours = next(w for w in waiting if w["chat_id"] == child.chat_id)
        assert ours["risk"] and ours["priority_source"] == "self_report" and not ours["suspect"]
        flooded = [w for w in waiting if w["chat_id"] in flood_ids]
        # the flood's yeses still order it within its own tier, behind both real children
        assert all(w["risk"] for w in flooded)
        assert child.get(f"/api/v1/chats/{child.chat_id}").json()["position"] == 1

        watch.wait_for("escalation.alert", lambda d: d["chat_id"] == child.chat_id, timeout=10)
        time.sleep(2)  # give any (wrong) late alert for the flood the time to arrive
        pushed = {e["data"]["chat_id"] for e in watch.events if e["event"] == "escalation.alert"}
        stored = {a["chat_id"] for a in supervisor.get("/api/v1/alerts").json()["alerts"]}
        flood_order = [c["chat_id"] for c in flood]
        rest = set(flood_order[SUSPECT_AFTER:])
        print(
            f"alerts for flood chats: {len(pushed & flood_ids)} pushed, {len(stored & flood_ids)} stored "
            f"(of {len(flood)} flood chats, the first {SUSPECT_AFTER} not yet suspect when they came)"
        )
        assert not pushed & rest and not stored & rest, "a suspect chat's yes alerted supervisors"
        assert len(pushed & flood_ids) <= SUSPECT_AFTER and len(stored & flood_ids) <= SUSPECT_AFTER
        assert child.chat_id in stored
        assert ATTACKER not in str(watch.events)
    finally:
        watch.close()
        for client in (child, plain):
            client.post(f"/api/v1/chats/{client.chat_id}/end", {})
    assert REAL_CHILD == "127.0.0.1"
