"""Slow and idle connections: one address (127.0.0.2) holds 1,000 unfinished
requests and idle sockets while real children and the health check are
served from 127.0.0.1; sockets that never authenticate go, and long quiet
chats stay up thanks to ping/pong.

The stack runs with the default header and body deadlines (10 s) and the
default cap of open connections per address (200); only the websocket
timers are shortened so the test takes seconds, not minutes (their defaults
are checked in gateway/tests/test_edge.py).
"""

import json
import socket
import statistics
import time

import eventlet
import pytest
import requests
import websocket

from tests.abuse.source import raw_socket_from
from tests.client import Api, Socket, bytes_until_closed
from tests.stack import Stack

pytestmark = pytest.mark.e2e

ATTACKER = "127.0.0.2"
FLOOD = 1000
WS_AUTH_S = 3.0
WS_PING_S = 1.0  # read timeout: 3 pings


@pytest.fixture(scope="module")
def edge_stack(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("edgestack"),
        env={"CHATVAKT_WS_AUTH_TIMEOUT_S": str(WS_AUTH_S), "CHATVAKT_WS_PING_S": str(WS_PING_S)},
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def uncapped_stack(tmp_path_factory):
    """The cap lifted: the deadlines and the body read alone must hold 1,000."""
    stack = Stack(tmp_path_factory.mktemp("edgeuncapped"), env={"CHATVAKT_MAX_CONN_PER_ADDR": "5000"})
    stack.start()
    yield stack
    stack.stop()


def _open(port, kind):
    """One attacker connection; None when the gateway refused it at once."""
    try:
        sock = raw_socket_from(ATTACKER, port, timeout=5)
        if kind == "partial_header":
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        elif kind == "unfinished_body":
            sock.sendall(
                b"POST /api/v1/chats HTTP/1.1\r\nHost: gateway\r\n"
                b'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"mess'
            )
        return sock
    except OSError:
        return None


_answers = {}


def _closed_by_server(sock):
    """True once the gateway has answered (408, 429) or closed; notes which."""
    if sock in _answers:
        return True
    try:
        sock.settimeout(0)
        data = sock.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        data = b""
    _answers[sock] = data[9:12].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
    return True


def _p95(values):
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


@pytest.mark.parametrize("which", ["default cap", "no cap"])
def test_one_address_with_1000_unfinished_requests_cannot_stop_real_children(request, which):
    edge_stack = request.getfixturevalue("edge_stack" if which == "default cap" else "uncapped_stack")
    before = len(edge_stack.error_lines())
    started = time.monotonic()
    kinds = ["partial_header", "unfinished_body", "nothing"]
    pool = eventlet.GreenPool(100)
    socks = list(pool.imap(lambda i: _open(edge_stack.port, kinds[i % 3]), range(FLOOD)))
    opened = time.monotonic() - started
    held = [s for s in socks if s is not None]

    health, failures = [], 0
    api = Api(edge_stack.url)
    try:
        for _ in range(60):
            t0 = time.monotonic()
            try:
                ok = requests.get(edge_stack.url + "/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            health.append(time.monotonic() - t0)
            failures += not ok
            eventlet.sleep(0.05)
        t0 = time.monotonic()
        chat = api.post("/api/v1/chats", {"gender": "girl", "age": 13, "message": "hei, er det noen der?"})
        new_chat_s = time.monotonic() - t0
        assert chat.status_code == 201, chat.text
        chat = chat.json()
        t0 = time.monotonic()
        sent = api.post(f"/api/v1/chats/{chat['chat_id']}/messages", {"text": "jeg trenger hjelp"}, token=chat["token"])
        message_s = time.monotonic() - t0
        assert sent.status_code == 201, sent.text
        t0 = time.monotonic()
        child_socket = Socket(edge_stack.url, chat["token"])
        socket_s = time.monotonic() - t0
        child_socket.close()
        # The attacker's connections end at the header and body deadlines (10 s).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(_closed_by_server(s) for s in held):
            eventlet.sleep(0.5)
        closed = sum(_closed_by_server(s) for s in held)
        elapsed = time.monotonic() - started
        outcomes = {}
        for sock in held:
            outcomes[_answers.get(sock, "open")] = outcomes.get(_answers.get(sock, "open"), 0) + 1
    finally:
        for sock in held:
            sock.close()
    print(
        f"\nedge flood ({which}): {FLOOD} connections from {ATTACKER} opened in {opened:.1f} s "
        f"({FLOOD - len(held)} failed to connect); {closed} of {len(held)} ended by the gateway {outcomes} "
        f"(429: over the per-address cap at once; 408: the body deadline; closed: the header deadline); "
        f"whole test {elapsed:.1f} s"
    )
    print(
        f"healthz from 127.0.0.1 under the flood: p50 {statistics.median(health) * 1000:.1f} ms, "
        f"p95 {_p95(health) * 1000:.1f} ms, max {max(health) * 1000:.1f} ms, {failures} failed; "
        f"new chat {new_chat_s * 1000:.0f} ms, child's message {message_s * 1000:.0f} ms, "
        f"socket auth {socket_s * 1000:.0f} ms"
    )
    assert failures == 0
    assert _p95(health) < 0.5
    assert new_chat_s < 2 and message_s < 2 and socket_s < 3
    assert closed == len(held), "every unfinished request ends at a deadline"
    assert elapsed < 40
    # After the flood the gateway serves as before.
    assert requests.get(edge_stack.url + "/healthz", timeout=5).status_code == 200
    assert edge_stack.error_lines()[before:] == []


def _close_frame(ws, timeout):
    """(code, reason) of the close frame the gateway sent, waiting up to timeout."""
    ws.settimeout(timeout)
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data
            return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


def test_a_socket_that_never_authenticates_is_closed_with_a_reason(edge_stack):
    started = time.monotonic()
    ws = websocket.create_connection(edge_stack.url.replace("http", "ws", 1) + "/ws", timeout=10)
    try:
        code, reason = _close_frame(ws, WS_AUTH_S + 5)
    finally:
        ws.close()
    waited = time.monotonic() - started
    print(f"\nunauthenticated socket closed after {waited:.1f} s ({code} {reason})")
    assert code == 1008 and "auth" in reason
    assert waited < WS_AUTH_S + 2


def test_a_quiet_authenticated_chat_stays_up_and_a_dead_socket_goes(edge_stack):
    api = Api(edge_stack.url)
    chat = api.post("/api/v1/chats", {"message": "hei"}).json()
    # tests.client.Socket reads all the time, so it answers pings as a browser does.
    live = Socket(edge_stack.url, chat["token"])
    # This one authenticates, then never reads again: no pongs, as a vanished phone.
    dead = websocket.create_connection(edge_stack.url.replace("http", "ws", 1) + "/ws", timeout=10)
    dead.recv()
    dead.send(json.dumps({"method": "auth", "data": {"token": chat["token"]}, "correlation_id": "a"}))
    try:
        quiet = 3 * WS_PING_S * 2 + 1  # twice the read timeout, and more
        eventlet.sleep(quiet)
        assert live.call("auth", {"token": chat["token"]})["success"], "a quiet chat stays up"
        # Its buffer holds the auth result, pings, then the close frame; read the
        # raw bytes so that no pong goes back now.
        raw = bytes_until_closed(dead, 5)
        got_close = b"\x03\xe9No answer to pings." in raw  # 1001 and its reason
        assert got_close, "a socket that answers no pings is closed (1001)"
    finally:
        live.close()
        try:
            dead.close()
        except (OSError, websocket.WebSocketException):
            pass


def test_raw_sockets_from_one_address_are_capped(edge_stack):
    held = []
    try:
        for _ in range(260):
            sock = raw_socket_from(ATTACKER, edge_stack.port, timeout=5)
            held.append(sock)
        eventlet.sleep(0.5)
        refused = 0
        for sock in held:
            sock.settimeout(0)
            try:
                data = sock.recv(200)
            except BlockingIOError:
                continue
            except OSError:
                refused += 1
                continue
            refused += data.startswith(b"HTTP/1.1 429") or data == b""
        print(f"\n260 idle sockets from {ATTACKER}: {refused} refused at once (cap 200)")
        assert refused >= 60
        # 127.0.0.1 is another address: not held back.
        assert requests.get(edge_stack.url + "/healthz", timeout=5).status_code == 200
    finally:
        for sock in held:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
