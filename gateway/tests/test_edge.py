"""The hardened edge without a broker: deadlines, the per-address cap, the
JSON checks and the websocket watchdog's decisions."""

import json
import socket
import time

import eventlet
import pytest

from chatvakt import errors
from gateway import server as edge
from gateway import sockets
from gateway.server import ConnectionCounter, HardenedWebServer
from gateway.web import check_json


class _Container:
    def __init__(self):
        self.config = {"WEB_SERVER_ADDRESS": "127.0.0.1:0"}
        self.threads = []

    def spawn_managed_thread(self, fn):
        thread = eventlet.spawn(fn)
        self.threads.append(thread)
        return thread


class _EchoServer(HardenedWebServer):
    """Our server with a WSGI app that answers the body it was given."""

    def get_wsgi_app(self):
        def app(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]

        return app


@pytest.fixture
def server(monkeypatch, request):
    monkeypatch.setenv("CHATVAKT_HEADER_TIMEOUT_S", "0.5")
    monkeypatch.setenv("CHATVAKT_BODY_TIMEOUT_S", "0.5")
    monkeypatch.setenv("CHATVAKT_MAX_CONN_PER_ADDR", "5")
    # the limits are read once per process: read these, and later the defaults again
    edge.limits.cache_clear()
    request.addfinalizer(edge.limits.cache_clear)
    running = _EchoServer()
    running.container = _Container()
    running.start()
    running.port = running._sock.getsockname()[1]
    yield running
    running.stop()


def _connect(srv, source="127.0.0.1"):
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", srv.port))
    return sock


def _read_all(sock):
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_the_defaults():
    edge.limits.cache_clear()
    sockets.limits.cache_clear()
    lim = edge.limits()
    assert lim["header_timeout"] == 10.0 and lim["body_timeout"] == 10.0
    assert lim["max_conn_per_addr"] == 200 and lim["max_json_depth"] == 64
    assert lim["max_body"] == 64 * 1024
    ws = sockets.limits()
    assert ws["auth_timeout"] == 10.0 and ws["ping"] == 20.0 and ws["read_timeout"] == 60.0


def test_a_whole_request_is_served(server):
    sock = _connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello")


def test_a_chunked_body_is_read_not_dropped(server):
    sock = _connect(server)
    sock.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert _read_all(sock).endswith(b"hello world")


def test_a_drip_fed_header_is_cut_at_the_deadline(server):
    sock = _connect(server)
    started = time.monotonic()
    sock.sendall(b"GET / HTTP/1.1\r\n")
    # One header byte every 0.1 s resets a per-recv timeout, not ours.
    try:
        for _ in range(30):
            sock.sendall(b"X")
            eventlet.sleep(0.1)
    except OSError:
        pass
    _read_all(sock)
    assert time.monotonic() - started < 2.0


def test_an_idle_connection_is_closed(server):
    sock = _connect(server)
    started = time.monotonic()
    assert _read_all(sock) == b""
    assert time.monotonic() - started < 2.0


def test_a_slow_body_gets_408_and_holds_nothing(server):
    sock = _connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    started = time.monotonic()
    answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"no-store" in answer
    assert time.monotonic() - started < 2.0


def test_a_large_body_is_refused_before_it_is_read(server):
    sock = _connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
    assert _read_all(sock).startswith(b"HTTP/1.1 413")
    sock = _connect(server)
    sock.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"ffff\r\n"
        + b"a" * 0xFFFF
        + b"\r\n"
        + b"ffff\r\n"
        + b"a" * 0xFFFF
        + b"\r\n"
    )
    assert _read_all(sock).startswith(b"HTTP/1.1 413")


def test_a_garbled_chunk_is_a_400(server):
    sock = _connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert _read_all(sock).startswith(b"HTTP/1.1 400")


def test_one_address_holds_at_most_its_cap(server):
    held = [_connect(server, "127.0.0.3") for _ in range(5)]
    eventlet.sleep(0.1)
    extra = _connect(server, "127.0.0.3")
    assert _read_all(extra).startswith(b"HTTP/1.1 429")
    # Another address is not held back by the first one's connections.
    other = _connect(server, "127.0.0.4")
    other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert _read_all(other).startswith(b"HTTP/1.1 200")
    for sock in held:
        sock.close()
    # Closed (or timed out) connections give their places back.
    deadline = time.monotonic() + 3
    while server.connections.open("127.0.0.3") and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert server.connections.open("127.0.0.3") == 0


def test_the_counter_exempts_a_trusted_proxy(monkeypatch):
    monkeypatch.setenv("CHATVAKT_TRUSTED_PROXIES", "10.0.0.0/8")
    counter = ConnectionCounter()
    assert all(counter.acquire("10.1.2.3", 2) for _ in range(10))
    assert counter.acquire("192.0.2.1", 2) and counter.acquire("192.0.2.1", 2)
    assert not counter.acquire("192.0.2.1", 2)
    counter.release("192.0.2.1")
    assert counter.acquire("192.0.2.1", 2)
    counter.release("198.51.100.9")  # never acquired: no negative counts
    assert counter.open("198.51.100.9") == 0


def test_every_web_entrypoint_shares_our_server():
    from nameko.web.server import WebServer

    from gateway.web import ApiHandler

    assert isinstance(ApiHandler.server, HardenedWebServer)
    assert isinstance(sockets.GuardedWebSocketServer.wsgi_server, HardenedWebServer)
    assert HardenedWebServer().sharing_key is WebServer


def test_deep_json_is_malformed():
    deep = json.loads("[" * 65 + "]" * 65)
    with pytest.raises(errors.Malformed):
        check_json({"a": deep})
    check_json({"a": json.loads("[" * 62 + "]" * 62)})


def test_a_lone_surrogate_is_invalid_and_named():
    with pytest.raises(errors.Invalid) as caught:
        check_json(json.loads('{"message": "hei \\ud800"}'))
    assert "message" in caught.value.fields
    with pytest.raises(errors.Invalid) as caught:
        check_json(json.loads('{"details": {"x": ["\\udfff"]}}'))
    assert "details" in caught.value.fields
    # A proper pair is an emoji, not a surrogate.
    check_json(json.loads('{"message": "\\ud83d\\ude00"}'))


LIM = {"auth_timeout": 10.0, "ping": 20.0, "read_timeout": 60.0}


def test_an_unauthenticated_socket_closes_at_the_deadline():
    assert sockets.verdict(9.9, 0.0, 9.0, False, LIM) is None
    assert sockets.verdict(10.0, 0.0, 9.0, False, LIM) == sockets.AUTH_TIMEOUT
    assert sockets.verdict(300.0, 0.0, 299.0, True, LIM) is None


def test_a_socket_that_answers_no_pings_closes():
    assert sockets.verdict(59.0, 0.0, 0.0, True, LIM) is None
    assert sockets.verdict(60.0, 0.0, 0.0, True, LIM) == sockets.NO_ANSWER


def test_the_watchdog_wakes_for_the_nearest_deadline():
    assert sockets.next_check(0.0, 0.0, 0.0, 0.0, False, LIM) == pytest.approx(10.0)
    assert sockets.next_check(15.0, 0.0, 14.0, 0.0, True, LIM) == pytest.approx(5.0)
    assert sockets.next_check(100.0, 0.0, 0.0, 100.0, True, LIM) == 0.05
