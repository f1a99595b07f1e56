"""A rolling restart of every service while a chat runs loses no accepted
message: each process gets SIGTERM (it finishes its running workers and stops
taking new ones), the launcher starts it again, and the clients retry with
the same client_msg_id as a real client would."""

import signal
import time

import eventlet
import pytest
import requests

from tests.client import Api
from tests.stack import Stack

pytestmark = pytest.mark.e2e


def send_until_stored(api, path, text, client_msg_id, deadline):
    while time.monotonic() < deadline:
        try:
            response = api.post(path, {"text": text, "client_msg_id": client_msg_id}, timeout=10)
        except requests.RequestException:
            eventlet.sleep(0.2)
            continue
        if response.status_code == 201:
            return response.json()["seq"]
        assert response.status_code in (502, 503, 504), response.text
        eventlet.sleep(0.2)
    return None


def test_rolling_restart_loses_no_accepted_message(tmp_path):
    stack = Stack(tmp_path, env={"CHATVAKT_RPC_TIMEOUT": "3", "CHATVAKT_CHILD_MSGS_PER_MIN": "100000"}).start()
    try:
        child = Api(stack.url)
        chat = child.post("/api/v1/chats", {"message": "hei"}).json()
        child.token = chat["token"]
        counsellor = Api(stack.url)
        counsellor.login("demo-counsellor")
        assert counsellor.put("/api/v1/presence", {"status": "available"}).status_code == 200
        assert counsellor.post("/api/v1/queue/take", {"chat_id": chat["chat_id"]}).status_code == 200
        path = f"/api/v1/chats/{chat['chat_id']}/messages"
        accepted = {}
        running = [True]

        def talk(api, who):
            i = 0
            while running[0]:
                i += 1
                key = f"{who}-{i}"
                seq = send_until_stored(api, path, f"{who} melding {i}", key, time.monotonic() + 60)
                assert seq is not None, f"{key} was never stored"
                accepted[key] = seq
                eventlet.sleep(0.05)

        talkers = [eventlet.spawn(talk, child, "child"), eventlet.spawn(talk, counsellor, "counsellor")]
        for name in ("chat", "queue", "coding", "escalation", "gateway"):
            before = stack.pids(name)
            assert before, name
            for pid in before:
                import os

                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not stack.pids(name) or set(stack.pids(name)) & set(before)):
                eventlet.sleep(0.2)
            assert stack.wait_ready(60), f"not ready after restarting {name}"
            eventlet.sleep(1.0)
        running[0] = False
        for talker in talkers:
            talker.wait()

        stored = []
        while True:  # a page holds at most 500 messages
            page = child.get(f"{path}?after={stored[-1]['seq'] if stored else 0}").json()["messages"]
            if not page:
                break
            stored += page
        seqs = [m["seq"] for m in stored]
        assert seqs == list(range(1, len(seqs) + 1))
        by_text = {}
        for message in stored:
            by_text.setdefault(message["text"], []).append(message["seq"])
        assert len(accepted) > 20
        for key, seq in accepted.items():
            who, i = key.split("-")
            text = f"{who} melding {i}"
            assert by_text.get(text) == [seq], f"{key}: accepted as {seq}, stored as {by_text.get(text)}"
    finally:
        stack.stop()
