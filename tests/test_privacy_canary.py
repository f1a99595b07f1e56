"""No child text, nickname, token, password or IP address in any log line.

Canary strings go in through every child-facing endpoint (and the staff ones
that carry what a child said); then every line every process wrote is read.
"""

import json
import secrets

import pytest

from tests.client import Api, Socket

pytestmark = pytest.mark.e2e


def test_canaries_never_reach_the_logs(stack):
    canary = f"kanari{secrets.token_hex(6)}"
    ip = "203.0.113.77"
    forwarded = {"X-Forwarded-For": ip, "X-Real-IP": ip}
    child = Api(stack.url)
    started = child.post(
        "/api/v1/chats",
        {"nickname": f"{canary}-nick", "age": 14, "gender": "boy", "message": f"{canary}-first jeg vil ta livet mitt"},
        headers=dict(forwarded),
    )
    assert started.status_code == 201
    chat = started.json()
    child.token = chat["token"]
    sock = Socket(stack.url, chat["token"])
    username = f"canary-{secrets.token_hex(3)}"
    password = stack.add_account(username, f"Canary {username}", "counsellor", password=f"{canary}-password")
    counsellor = Api(stack.url)
    assert (
        counsellor.post("/api/v1/auth/login", {"username": username, "password": "wrong" + canary}).status_code == 401
    )
    counsellor.login(username, password)
    counsellor.put("/api/v1/presence", {"status": "available"})
    assert counsellor.post("/api/v1/queue/take", {"chat_id": chat["chat_id"]}).status_code == 200
    for text in (f"{canary}-second", "x" * 4001 + canary, f"{canary}-third"):
        child.post(
            f"/api/v1/chats/{chat['chat_id']}/messages",
            {"text": text, "client_msg_id": f"{canary}-id-{len(text)}"},
            headers=dict(forwarded),
        )
    child.call(
        "POST",
        f"/api/v1/chats/{chat['chat_id']}/messages",
        None,
        data=f'{{"text": "{canary}-broken'.encode(),
        headers={"Content-Type": "application/json"},
    )
    child.post(f"/api/v1/chats/{chat['chat_id']}/messages", {"text": f"{canary}-x", f"{canary}-field": 1})
    child.post(f"/api/v1/chats/{chat['chat_id']}/typing")
    counsellor.post(f"/api/v1/chats/{chat['chat_id']}/messages", {"text": f"{canary}-reply"})
    sock.wait_for("chat.message", lambda d: d["text"] == f"{canary}-reply")
    raised = counsellor.post(
        f"/api/v1/chats/{chat['chat_id']}/escalations",
        {"kind": "acute_danger", "details": {"person": {"name": f"{canary}-name", "address": f"{canary}-address"}}},
    )
    assert raised.status_code == 201, raised.text
    child.post(f"/api/v1/chats/{chat['chat_id']}/end", {"reason": "quick_exit"})
    counsellor.put(
        f"/api/v1/chats/{chat['chat_id']}/coding",
        {
            "gender": "boy",
            "age": 14,
            "categories": ["mental_health"],
            "acute_danger_assessed": True,
            "acute_danger": True,
            "notes": f"{canary}-notes",
        },
    )
    Api(stack.url).get(f"/api/v1/chats/{chat['chat_id']}", token=chat["token"] + canary)
    sock.close()

    logs = stack.logs()
    assert canary not in logs, [line for line in logs.splitlines() if canary in line][:3]
    assert chat["token"] not in logs and counsellor.token not in logs
    assert ip not in logs
    # Every JSON line from our processes, and none with a client's address
    # (the broker's own address in kombu's connection lines is not a client's).
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gateway.web" for line in lines)
    assert all("127.0.0.1" not in line["msg"] for line in lines if not line["logger"].startswith("kombu"))


def test_a_request_id_follows_a_call_across_services(stack):
    request_id = f"trace-{secrets.token_hex(8)}"
    started = Api(stack.url).post("/api/v1/chats", {"message": "hei"}, headers={"X-Request-Id": request_id})
    assert started.status_code == 201 and started.headers["X-Request-Id"] == request_id
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = {
            json.loads(line)["service"]
            for line in stack.logs().splitlines()
            if line.startswith("{") and request_id in line
        }
        if {"gateway", "chat", "queue"} <= seen:
            break
        time.sleep(0.2)
    assert {"gateway", "chat", "queue"} <= seen
