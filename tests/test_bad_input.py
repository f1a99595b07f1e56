"""Bad input at the edge: no 5xx, no answer outside the schema, no socket
harmed by another's garbage, and a flood from one token throttled.

schemathesis generates requests from /api/v1/openapi.json against a stack of
its own (it creates chats and takes them from the queue, which must not
disturb the other tests' queue); it runs as a subprocess, away from the
suite's eventlet monkey patching. CHATVAKT_ST_EXAMPLES sets its examples per
operation (default 10).
"""

import contextlib
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
from tests.client import Api, Socket, bytes_until_closed
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
        if frame.get("type") == "result" and (correlation_id is None or frame.get("correlation_id") == correlation_id):
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


@contextlib.contextmanager
def beside_a_neighbour(stack):
    """A raw socket to misbehave on, beside a child's socket: once the
    misbehaviour is over, the neighbour and a new socket are served at once."""
    chat = child(stack)
    neighbour = Socket(stack.url, chat["token"])
    ws = raw_socket(stack)
    try:
        yield ws
        assert neighbour.call("auth", {"token": chat["token"]})["success"]
        still_serves(stack, chat)
    finally:
        neighbour.close()
        _close(ws)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("fuzzstack"),
        env={
            # schemathesis sends hundreds of requests a second with one token.
            "CHATVAKT_TOKEN_RATE": "100000",
            "CHATVAKT_TOKEN_BURST": "100000",
            "CHATVAKT_CHILD_MSGS_PER_MIN": "100000",
        },
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.mark.e2e
@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_stack):
    password = fuzz_stack.add_account("fuzz-supervisor", "Siri Fuzz", "supervisor")
    token = Api(fuzz_stack.url).login("fuzz-supervisor", password)["token"]
    command = [
        str(ST),
        "run",
        f"{fuzz_stack.url}/api/v1/openapi.json",
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        os.environ.get("CHATVAKT_ST_EXAMPLES", "10"),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--seed",
        os.environ.get("CHATVAKT_ST_SEED", "116111"),
        # Logging out would revoke the token the run uses.
        "--exclude-path",
        "/api/v1/auth/logout",
        # So would a password change (issue 12: it ends every session).
        "--exclude-path",
        "/api/v1/auth/password",
        "--generation-database",
        "none",
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert " 500 " not in output.split("SUMMARY")[-1]


@pytest.mark.parametrize(
    "origin, host, allowed",
    [
        (None, "127.0.0.1:8000", True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://chat.example.no", "chat.example.no", True),
        ("https://chat.example.no:443", "chat.example.no", True),
        ("http://evil.example", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("null", "127.0.0.1:8000", False),
        ("file://", "127.0.0.1:8000", False),
    ],
)
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
    with beside_a_neighbour(stack) as ws:
        ws.send("x" * (200 * 1024))
        ws.settimeout(10)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            for _ in range(5):
                if not ws.recv():
                    raise ConnectionError("closed")


@pytest.mark.e2e
def test_a_flood_of_frames_is_throttled_and_harms_no_other_socket(stack):
    with beside_a_neighbour(stack) as ws:
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


def _post_raw(stack, path, data, **headers):
    return requests.post(
        stack.url + path, data=data, timeout=15, headers={"Content-Type": "application/json", **headers}
    )


@pytest.mark.e2e
def test_hostile_bodies_get_a_4xx_never_a_500(stack):
    before = len(stack.error_lines())
    deep = _post_raw(stack, "/api/v1/chats", '{"message": ' + "[" * 5000 + "]" * 5000 + "}")
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "malformed"
    deep65 = _post_raw(stack, "/api/v1/chats", '{"nickname": ' + "[" * 65 + "]" * 65 + "}")
    assert deep65.status_code == 400
    lone = _post_raw(stack, "/api/v1/chats", '{"message": "hei \\ud800"}')
    assert lone.status_code == 422 and "message" in lone.json()["error"]["fields"]
    chat = child(stack)
    lone_msg = _post_raw(
        stack,
        f"/api/v1/chats/{chat['chat_id']}/messages",
        '{"text": "\\udfff"}',
        Authorization=f"Bearer {chat['token']}",
    )
    assert lone_msg.status_code == 422 and "text" in lone_msg.json()["error"]["fields"]
    big = _post_raw(stack, "/api/v1/chats", b'{"message": "' + b"a" * 70_000 + b'"}')
    assert big.status_code == 413
    for response in (deep, lone, lone_msg, big):
        assert response.headers["Cache-Control"] == "no-store"
    assert stack.error_lines()[before:] == []


@pytest.mark.e2e
def test_a_chunked_first_message_is_stored(stack):
    body = json.dumps({"gender": "girl", "age": 12, "message": "hei, jeg skriver i biter"}).encode()
    started = requests.post(
        stack.url + "/api/v1/chats",
        data=iter([body[:20], body[20:]]),
        headers={"Content-Type": "application/json"},
        timeout=15,
    )
    assert started.status_code == 201, started.text
    chat = started.json()
    deadline = time.monotonic() + 10
    while True:
        messages = (
            Api(stack.url, chat["token"]).get(f"/api/v1/chats/{chat['chat_id']}/messages?after=0").json()["messages"]
        )
        if any(m["sender"] == "child" for m in messages) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [m["text"] for m in messages if m["sender"] == "child"] == ["hei, jeg skriver i biter"]


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/api/v1/stats", "/api/v1/queue/stats"])
def test_dates_out_of_range_are_422(stack, supervisor, path):
    before = len(stack.error_lines())
    for query in ("from=0001-01-01&to=9999-12-31", "from=9999-12-31", "to=0001-01-01T00:00:00Z", "from=not-a-date"):
        response = supervisor.get(f"{path}?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.headers["Cache-Control"] == "no-store"
    assert supervisor.get(f"{path}?from=2026-01-01&to=2026-12-31").status_code == 200
    assert stack.error_lines()[before:] == []


@pytest.mark.e2e
def test_every_api_answer_is_no_store(stack, api):
    chat = child(stack)
    for response in (
        api.get(f"/api/v1/chats/{chat['chat_id']}/messages?after=0", token=chat["token"]),
        api.get(f"/api/v1/chats/{chat['chat_id']}", token=chat["token"]),
        api.get("/api/v1/chats/nope"),
        api.get("/api/v1/no-such-thing"),
        api.post("/api/v1/chats", {"age": 99}),
    ):
        assert response.headers.get("Cache-Control") == "no-store", response.request.url


def _close_reason(ws):
    """The (code, reason) of the gateway's close frame, from the raw bytes."""
    raw = bytes_until_closed(ws)
    at = raw.find(b"\x88")
    assert at >= 0, raw[:200]
    length = raw[at + 1] & 0x7F
    payload = raw[at + 2 : at + 2 + length]
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace")


@pytest.mark.e2e
@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        b"\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x81\x05hello",  # an unmasked client frame
        b"\x89\xfe\x00\x00",  # a ping longer than 125 bytes
    ],
)
def test_ws_protocol_errors_close_the_socket_with_a_reason(stack, garbage):
    before = len(stack.error_lines())
    ws = raw_socket(stack)
    try:
        ws.sock.sendall(garbage)
        code, reason = _close_reason(ws)
    finally:
        _close(ws)
    assert code in (1002, 1007, 1009) and reason
    assert requests.get(stack.url + "/healthz", timeout=5).status_code == 200
    assert stack.error_lines()[before:] == []


@pytest.mark.e2e
def test_a_bad_upgrade_is_a_4xx(stack):
    before = len(stack.error_lines())
    plain = requests.get(stack.url + "/ws", timeout=5)
    assert 400 <= plain.status_code < 500
    old = requests.get(
        stack.url + "/ws",
        timeout=5,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "7",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert 400 <= old.status_code < 500
    nokey = requests.get(
        stack.url + "/ws",
        timeout=5,
        headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"},
    )
    assert 400 <= nokey.status_code < 500
    assert stack.error_lines()[before:] == []
