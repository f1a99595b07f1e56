"""One whole chat through the real processes, as API.md's clients see it.

Every service is in this flow: chat (relay), queue (intake), escalation (the
risk screen raises and alerts), coding (uncoded list, coding, statistics).
"""

import time

import pytest

from tests.client import Api, Socket, staff  # noqa: F401 - test_two_replicas takes staff from here

pytestmark = pytest.mark.e2e


def test_a_whole_chat_from_start_to_statistics(stack):
    whole_chat(stack)


def whole_chat(stack):
    child = Api(stack.url)
    started = child.post("/api/v1/chats", {"gender": "girl", "age": 13, "message": "Hei, jeg lurer på noe om venner"})
    assert started.status_code == 201, started.text
    chat = started.json()
    assert chat["status"] == "waiting" and chat["position"] >= 1
    assert chat["welcome"].startswith("Hei, velkommen til")
    child.token = chat["token"]
    child_socket = Socket(stack.url, chat["token"])

    counsellor = staff(stack)
    counsellor_socket = Socket(stack.url, counsellor.token)
    presence = counsellor.put("/api/v1/presence", {"status": "available", "capacity": 2})
    assert presence.status_code == 200, presence.text
    assert {k: presence.json()[k] for k in ("status", "capacity", "active_chats")} == {
        "status": "available",
        "capacity": 2,
        "active_chats": 0,
    }

    queue = counsellor.get("/api/v1/queue").json()
    entry = next(w for w in queue["waiting"] if w["chat_id"] == chat["chat_id"])
    assert entry["gender"] == "girl" and entry["age"] == 13
    assert queue["available_counsellors"] >= 1

    taken = counsellor.post("/api/v1/queue/take", {"chat_id": chat["chat_id"]})
    assert taken.status_code == 200, taken.text
    assert taken.json()["chat_id"] == chat["chat_id"]
    assigned = child_socket.wait_for("chat.assigned", lambda d: d["chat_id"] == chat["chat_id"])
    assert assigned["counsellor"]["name"] == "Kari"
    state = child.get(f"/api/v1/chats/{chat['chat_id']}").json()
    assert state["status"] == "active" and state["position"] is None
    assert state["counsellor"] == {"name": "Kari"}

    sent = counsellor.post(
        f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "Hei, jeg heter Kari. Hva har skjedd?"}
    )
    assert sent.status_code == 201, sent.text
    pushed = child_socket.wait_for("chat.message", lambda d: d["sender"] == "counsellor")
    assert pushed["text"] == "Hei, jeg heter Kari. Hva har skjedd?" and pushed["seq"] == sent.json()["seq"]

    reply = child.post(
        f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "Noen i klassen er slemme", "client_msg_id": "c-1"}
    )
    assert reply.status_code == 201
    again = child.post(
        f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "Noen i klassen er slemme", "client_msg_id": "c-1"}
    )
    assert again.status_code == 201 and again.json()["seq"] == reply.json()["seq"]
    counsellor_socket.wait_for("chat.message", lambda d: d["sender"] == "child" and d["seq"] == reply.json()["seq"])

    history = child.get(f"/api/v1/chats/{chat['chat_id']}/messages?after=0").json()["messages"]
    seqs = [m["seq"] for m in history]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [m["sender"] for m in history][:2] == ["system", "child"]
    assert sum(1 for m in history if m["text"] == "Noen i klassen er slemme") == 1
    tail = child.get(f"/api/v1/chats/{chat['chat_id']}/messages?after={seqs[-2]}").json()["messages"]
    assert [m["seq"] for m in tail] == [seqs[-1]]

    ended = child.post(f"/api/v1/chats/{chat['chat_id']}/end")
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    counsellor_socket.wait_for("chat.ended", lambda d: d["chat_id"] == chat["chat_id"])
    # The child's token dies with the chat (issue 12), and what it sends after
    # the end is 409 (API.md): from the gateway once this replica has seen
    # chat_ended, from the chat service in the instant before.
    late = child.post(f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "hallo?"})
    assert late.status_code == 409
    assert child.get(f"/api/v1/chats/{chat['chat_id']}/messages").status_code == 409  # no transcript

    counsellor_socket.wait_for("coding.required", lambda d: d["chat_id"] == chat["chat_id"])
    uncoded = counsellor.get("/api/v1/coding/uncoded").json()["chats"]
    assert chat["chat_id"] in [c["chat_id"] for c in uncoded]

    bad = counsellor.put(
        f"/api/v1/chats/{chat['chat_id']}/coding",
        {
            "gender": "girl",
            "age": 13,
            "categories": ["peer_relationships", "peer_relationships.bullying"],
            "acute_danger_assessed": True,
            "acute_danger": False,
        },
    )
    assert bad.status_code in (422,), bad.text
    assert "categories" in bad.json()["error"]["fields"]
    taxonomy = counsellor.get("/api/v1/taxonomy").json()
    sub = next(c for c in taxonomy["categories"] if c["code"] == "violence")["subcategories"][0]["code"]
    coded = counsellor.put(
        f"/api/v1/chats/{chat['chat_id']}/coding",
        {"gender": "girl", "age": 13, "categories": [sub], "acute_danger_assessed": True, "acute_danger": False},
    )
    assert coded.status_code == 200, coded.text
    assert coded.json()["categories"] == [sub]
    assert chat["chat_id"] not in [c["chat_id"] for c in counsellor.get("/api/v1/coding/uncoded").json()["chats"]]

    supervisor = staff(stack, "supervisor")
    stats = supervisor.get("/api/v1/stats").json()
    assert stats["by_primary_category"].get(sub, 0) >= 1
    assert counsellor.get("/api/v1/stats").status_code == 403
    child_socket.close()
    counsellor_socket.close()


def test_a_child_at_risk_is_raised_and_alerted(stack):
    supervisor = staff(stack, "supervisor")
    watcher = Socket(stack.url, supervisor.token)
    calm = Api(stack.url).post("/api/v1/chats", {"message": "hei, jeg har et spørsmål om skolen"}).json()
    risky = Api(stack.url).post("/api/v1/chats", {"message": "jeg vil ta livet mitt i kveld"}).json()
    alert = watcher.wait_for("escalation.alert", lambda d: d["chat_id"] == risky["chat_id"])
    assert alert["category"] == "suicide" and alert["reason"]
    assert "i kveld" not in alert["reason"]  # the reason is the lexicon's words, not the message
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = supervisor.get("/api/v1/queue").json()["waiting"]
        order = [w["chat_id"] for w in waiting]
        if order.index(risky["chat_id"]) < order.index(calm["chat_id"]):
            break
        time.sleep(0.1)
    entry = next(w for w in waiting if w["chat_id"] == risky["chat_id"])
    assert entry["risk"] is True and entry["reason"]
    assert order.index(risky["chat_id"]) < order.index(calm["chat_id"])
    # Leave the queue as we found it for the other tests.
    for chat in (calm, risky):
        assert (
            Api(stack.url, chat["token"]).post(f"/api/v1/chats/{chat['chat_id']}/end").json()["status"] == "abandoned"
        )
    watcher.close()


def test_pages_health_and_contract(stack, api):
    assert api.get("/").status_code == 200 and "Alarmtelefonen" in api.get("/").text
    assert api.get("/console/").status_code == 200
    assert api.get("/healthz").json() == {"ok": True}
    ready = api.get("/readyz").json()
    assert ready["ready"] and set(ready["services"]) == {"queue", "chat", "coding", "escalation"}
    # /metrics answers this machine (API.md names it) and nobody else; in a
    # cluster Prometheus scrapes METRICS_PORT (below).
    local = api.get("/metrics")
    assert local.status_code == 200 and "chatvakt_http_requests_total" in local.text
    from tests.abuse.source import session_from

    stranger = session_from("127.0.0.31")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_PROXY", "*")
        assert stranger.get(api.url + "/metrics", timeout=10).status_code in (200, 404)
    spec = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/chats/{chat_id}/messages" in spec["paths"]
    assert api.get("/api/v1/services").status_code == 200


def test_bad_input_gets_clear_4xx(stack, api):
    assert api.post("/api/v1/chats", {"age": 99}).status_code == 422
    raw = api.call("POST", "/api/v1/chats", None, data=b"{not json", headers={"Content-Type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "malformed"
    assert api.get("/api/v1/chats/nope").status_code == 401
    assert api.get("/api/v1/chats/nope", token="forged").status_code == 401
    chat = api.post("/api/v1/chats", {}).json()
    other = api.post("/api/v1/chats", {}).json()
    # A child's token opens that one chat only.
    assert api.get(f"/api/v1/chats/{other['chat_id']}", token=chat["token"]).status_code == 404
    too_long = api.post(f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "x" * 4001}, token=chat["token"])
    assert too_long.status_code == 422 and "text" in too_long.json()["error"]["fields"]
    assert (
        api.post(f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "   "}, token=chat["token"]).status_code == 422
    )
    assert api.post("/api/v1/auth/login", {"username": "demo-counsellor", "password": "nope"}).status_code == 401
    for c in (chat, other):
        api.post(f"/api/v1/chats/{c['chat_id']}/end", token=c["token"])


def test_every_service_serves_its_metrics(tmp_path):
    """Each service process answers /metrics on its own METRICS_PORT."""
    import requests

    from tests.stack import Stack, free_port

    ports = {name: free_port() for name in ("queue", "chat", "escalation", "gateway")}
    # One METRICS_PORT for all would collide: the launcher gives each its own.
    stack = Stack(
        tmp_path, env={"CHATVAKT_METRICS_PORTS": ",".join(f"{name}={port}" for name, port in ports.items())}
    ).start()
    try:
        Api(stack.url).post("/api/v1/chats", {"message": "hei"})
        expected = {
            "queue": "chatvakt_queue_waiting",
            "chat": "chatvakt_chats_active",
            "escalation": "chatvakt_escalations_open",
            "gateway": "chatvakt_http_requests_total",
        }
        deadline = time.monotonic() + 15
        for name, port in ports.items():
            while True:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                if f"{expected[name]} " in text or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert expected[name] in text, name
            assert "chatvakt_rpc_latency_seconds" in text
    finally:
        stack.stop()


def test_unknown_paths_answer_in_the_error_shape(api):
    for method in ("GET", "POST", "DELETE"):
        response = api.call(method, "/api/v1/no-such-thing")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert api.get("/static/../../etc/passwd").status_code == 404
