"""bench/load.py's plain-socket HTTP/1.1 client and websocket reader.

Against a server in this process that answers as the test says, so each
shape of answer the gateway (eventlet's wsgi and websocket) may give is read
right: the bench's figures rest on it.
"""

import json
import socket
import struct

import eventlet

from bench import load


class Server:
    """Answers each request on a connection with the next of `answers` (bytes);
    b"" closes the connection instead (after reading the request)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.connections = 0
        self.sock = eventlet.listen(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = eventlet.spawn(self._serve)

    def _serve(self):
        while True:
            conn, _ = self.sock.accept()
            self.connections += 1
            eventlet.spawn(self._connection, conn)

    def _connection(self, conn):
        buf = b""
        while self.answers:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                buf += conn.recv(4096)
            self.requests.append((head.decode(), buf[:length]))
            buf = buf[length:]
            answer = self.answers.pop(0)
            if not answer:
                conn.close()
                return
            conn.sendall(answer)
        conn.close()

    def close(self):
        self.thread.kill()
        self.sock.close()


def json_answer(status, payload, extra=b""):
    body = json.dumps(payload).encode()
    return (
        b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
        % (
            status,
            extra,
            len(body),
        )
        + body
    )


def test_requests_and_answers_on_one_kept_connection():
    server = Server([json_answer(201, {"seq": 1}), json_answer(200, {"ok": True})])
    http = load.Http(server.url)
    assert http.request("POST", "/api/v1/chats/c1/messages", {"text": "hei"}, "tok") == (201, {"seq": 1})
    assert http.request("GET", "/api/v1/chats") == (200, {"ok": True})
    assert server.connections == 1
    head, body = server.requests[0]
    assert head.startswith("POST /api/v1/chats/c1/messages HTTP/1.1\r\n")
    assert "Authorization: Bearer tok" in head and "Content-Type: application/json" in head
    assert json.loads(body) == {"text": "hei"}
    assert "Content-Length" not in server.requests[1][0] and "Authorization" not in server.requests[1][0]
    server.close()


def test_a_connection_the_gateway_closed_while_idle_is_replaced_once():
    server = Server([json_answer(201, {}), b"", json_answer(201, {"again": 1})])
    http = load.Http(server.url)
    http.request("POST", "/x", {})
    # The kept connection is closed by the server on the next request: sent again on a new one.
    assert http.request("POST", "/x", {"n": 2}) == (201, {"again": 1})
    assert server.connections == 2
    assert [json.loads(body) for _, body in server.requests] == [{}, {"n": 2}, {"n": 2}]
    server.close()


def test_chunked_answers_no_body_answers_and_connection_close():
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n4;x=1\r\n: 1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    no_body = b"HTTP/1.1 204 No Content\r\n\r\n"
    closing = json_answer(503, {"error": "overloaded"}, b"Connection: close\r\n")
    server = Server([chunked, no_body, closing, json_answer(200, [])])
    http = load.Http(server.url)
    assert http.request("GET", "/a") == (200, {"a": 1})
    assert http.request("DELETE", "/b") == (204, None)
    assert http.request("POST", "/c", {}) == (503, {"error": "overloaded"})
    assert not http.idle  # the gateway said close: not kept
    assert http.request("GET", "/d") == (200, [])
    assert server.connections == 2
    server.close()


def server_frame(opcode, payload, fin=True):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", (0x80 if fin else 0) | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", (0x80 if fin else 0) | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", (0x80 if fin else 0) | opcode, 127, n)
    return head + payload


def test_websocket_messages_of_every_length_and_fragments_pings_answered():
    ours, gateway = socket.socketpair()
    long = json.dumps({"text": "x" * 70000}).encode()
    middle = json.dumps({"text": "y" * 300}).encode()
    gateway.sendall(
        server_frame(1, b'{"a": 1}')
        + server_frame(1, middle)
        + server_frame(9, b"are you there")
        + server_frame(1, b'{"b": ', fin=False)
        + server_frame(0, b"2}")
        + server_frame(1, long)
        + server_frame(8, b"\x03\xe8")
        + server_frame(1, b'{"after": "close"}')
    )
    got = [json.loads(raw) for raw, _ in load.ws_messages(ours)]
    assert got == [{"a": 1}, json.loads(middle), {"b": 2}, json.loads(long)]
    # The ping's pong: a masked client frame carrying the ping's payload.
    pong = gateway.recv(100)
    assert pong[0] == 0x8A and pong[1] == 0x80 | len(b"are you there")
    mask, masked = pong[2:6], pong[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(masked)) == b"are you there"
    ours.close()
    gateway.close()


def test_websocket_messages_end_when_the_socket_closes_mid_frame():
    ours, gateway = socket.socketpair()
    gateway.sendall(server_frame(1, b'{"a": 1}') + server_frame(1, b'{"cut')[:5])
    gateway.close()
    assert [json.loads(raw) for raw, _ in load.ws_messages(ours)] == [{"a": 1}]
    ours.close()
