"""Bad input at the edge: no 5xx, no answer outside the schema, no socket
harmed by another's garbage, and a flood from one token throttled.

schemathesis generates requests from /api/v1/openapi.json against a stack of
its own (it creates chats and takes them from the queue, which must not
disturb the other tests' queue); it runs as a subprocess, away from the
suite's eventlet monkey patching. CHATVAKT_ST_EXAMPLES sets its examples per
operation (default 10).
"""
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import eventlet
import pytest
import requests
import websocket

from gateway.sockets import origin_allowed
from tests.client import Api, Socket
from tests.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
ST = ROOT / ".venv" / "bin" / "st"


def ws_url(stack):
    return stack.url.replace("http", "ws", 1) + "/ws"


def child(stack):
    started = Api(stack.url).post("/api/v1/chats", {"gender": "boy", "age": 14})
    assert started.status_code == 201, started.text
    return started.json()


def raw_socket(stack, **kwargs):
    ws = websocket.create_connection(ws_url(stack), timeout=10, **kwargs)
    hello = json.loads(ws.recv())
    assert hello["event"] == "connected"
    return ws


def result_of(ws, correlation_id=None, timeout=10):
    ws.settimeout(timeout)
    while True:
        frame = json.loads(ws.recv())
        if frame.get("type") == "result" and (correlation_id is None
                                              or frame.get("correlation_id") == correlation_id):
            return frame


def _close(ws):
    try:
        ws.close()
    except OSError:  # the gateway closed it first
        pass


def still_serves(stack, chat):
    """A neighbour socket authenticates and is answered at once."""
    started = time.monotonic()
    socket = Socket(stack.url, chat["token"])
    try:
        assert socket.call("auth", {"token": chat["token"]})["success"]
    finally:
        socket.close()
    assert time.monotonic() - started < 3


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("fuzzstack"), env={
        # schemathesis sends hundreds of requests a second with one token.
        "CHATVAKT_TOKEN_RATE": "100000", "CHATVAKT_TOKEN_BURST": "100000",
        "CHATVAKT_CHILD_MSGS_PER_MIN": "100000"})
    stack.start()
    yield stack
    stack.stop()


@pytest.mark.e2e
@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_stack):
    password = fuzz_stack.add_account("fuzz-supervisor", "Siri Fuzz", "supervisor")
    token = Api(fuzz_stack.url).login("fuzz-supervisor", password)["token"]
    command = [
        str(ST), "run", f"{fuzz_stack.url}/api/v1/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--max-examples", os.environ.get("CHATVAKT_ST_EXAMPLES", "10"),
        "--phases", "examples,coverage,fuzzing", "--workers", "2",
        "--seed", os.environ.get("CHATVAKT_ST_SEED", "116111"),
        # Logging out would revoke the token the run uses.
        "--exclude-path", "/api/v1/auth/logout",
        # So would a password change (issue 12: it ends every session).
        "--exclude-path", "/api/v1/auth/password",
        "--generation-database", "none", "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert " 500 " not in output.split("SUMMARY")[-1]


@pytest.mark.parametrize("origin, host, allowed", [
    (None, "127.0.0.1:8000", True),
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
    ("https://chat.example.no", "chat.example.no", True),
    ("https://chat.example.no:443", "chat.example.no", True),
    ("http://evil.example", "127.0.0.1:8000", False),
    ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
    ("null", "127.0.0.1:8000", False),
    ("file://", "127.0.0.1:8000", False),
])
def test_origin_check(origin, host, allowed):
    headers = {"Host": host}
    if origin is not None:
        headers["Origin"] = origin
    assert origin_allowed(headers) is allowed


def test_allowed_origins_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHATVAKT_ALLOWED_ORIGINS", "https://app.example.no, https://b.example.no/")
    assert origin_allowed({"Host": "gw.internal:8000", "Origin": "https://b.example.no"})
    assert not origin_allowed({"Host": "gw.internal:8000", "Origin": "https://c.example.no"})


@pytest.mark.e2e
def test_a_foreign_origin_may_not_open_a_socket(stack):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(stack), timeout=10, origin="http://evil.example")
    assert refused.value.status_code == 403
    raw_socket(stack, origin=stack.url).close()


@pytest.mark.e2e
def test_bad_frames_get_an_error_and_the_socket_lives_on(stack):
    chat = child(stack)
    ws = raw_socket(stack)
    try:
        cases = [
            ("binary", lambda: ws.send_binary(b"\x00\x01binary")),
            ("not json", lambda: ws.send("{not json")),
            ("not an object", lambda: ws.send("[1, 2, 3]")),
            ("no method", lambda: ws.send(json.dumps({"data": {}}))),
            ("method not a string", lambda: ws.send(json.dumps({"method": 7}))),
            ("data not an object", lambda: ws.send(json.dumps({"method": "auth", "data": [1]}))),
            ("unknown method", lambda: ws.send(json.dumps({"method": "nope", "correlation_id": "u"}))),
            ("wrong argument", lambda: ws.send(json.dumps({"method": "auth", "data": {"x": 1}}))),
            ("too large", lambda: ws.send(json.dumps({"method": "auth", "data": {"token": "x" * 20000}}))),
        ]
        for name, send in cases:
            send()
            frame = result_of(ws)
            assert frame["success"] is False, name
        # The same socket still works.
        ws.send(json.dumps({"method": "auth", "data": {"token": chat["token"]}, "correlation_id": "ok"}))
        assert result_of(ws, "ok")["success"] is True
    finally:
        ws.close()


@pytest.mark.e2e
def test_an_oversized_frame_closes_only_its_own_socket(stack):
    chat = child(stack)
    neighbour = Socket(stack.url, chat["token"])
    ws = raw_socket(stack)
    try:
        ws.send("x" * (200 * 1024))
        ws.settimeout(10)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            for _ in range(5):
                if not ws.recv():
                    raise ConnectionError("closed")
        assert neighbour.call("auth", {"token": chat["token"]})["success"]
        still_serves(stack, chat)
    finally:
        neighbour.close()
        _close(ws)


@pytest.mark.e2e
def test_a_flood_of_frames_is_throttled_and_harms_no_other_socket(stack):
    chat = child(stack)
    neighbour = Socket(stack.url, chat["token"])
    ws = raw_socket(stack)
    try:
        frame = json.dumps({"method": "nope", "correlation_id": "f"})
        limited = 0
        closed = False
        for _ in range(400):
            try:
                ws.send(frame)
            except Exception:  # noqa: BLE001 - the gateway closed the flooding socket
                closed = True
                break
        ws.settimeout(5)
        try:
            while True:
                raw = ws.recv()
                if not raw:
                    closed = True
                    break
                answer = json.loads(raw)
                if answer.get("error", {}).get("code") == "rate_limited":
                    limited += 1
        except websocket.WebSocketTimeoutException:
            pass
        except (websocket.WebSocketConnectionClosedException, OSError):
            closed = True
        assert limited > 0
        assert closed, "a socket that keeps flooding is closed"
        assert neighbour.call("auth", {"token": chat["token"]})["success"]
        still_serves(stack, chat)
    finally:
        neighbour.close()
        _close(ws)


@pytest.mark.e2e
def test_a_flood_of_requests_from_one_token_is_throttled(stack):
    flooder = Api(stack.url, "flood-" + secrets.token_hex(8))
    pool = eventlet.GreenPool(8)
    answers = list(pool.imap(lambda _: flooder.get("/api/v1/me"), range(300)))
    statuses = {a.status_code for a in answers}
    assert statuses <= {401, 429}
    limited = [a for a in answers if a.status_code == 429]
    assert limited, "300 requests at once from one token are throttled"
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"
    # Another token is not held back by the flood.
    assert Api(stack.url, "other-" + secrets.token_hex(8)).get("/api/v1/me").status_code == 401
    assert requests.get(stack.url + "/healthz", timeout=5).status_code == 200
