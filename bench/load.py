"""The load generator: many children and counsellors over HTTP and WebSocket.

Green threads (the bench runs under eventlet's monkey patching), keep-alive
HTTP/1.1 connections on plain sockets, and websockets opened by
websocket-client whose pushes are read off the socket here, each timed by an
id in its text. The generator shares the two cores with the stack it measures:
every millisecond it spends is one the stack does not get (requests cost more
CPU per call than the gateway did; http.client and websocket-client were 43 %
of its busy time at 200 messages a second).
"""

import itertools
import json
import os
import secrets
import socket
import time
import urllib.parse

import eventlet
import websocket
from eventlet.queue import LightQueue

from chatvakt.numbers import percentile

# Seconds at a level's rate before its measured part (see Cast.run).
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "2"))


class Http:
    """A pool of keep-alive connections to the gateway; JSON in and out.

    HTTP/1.1 on plain sockets (`Wire`): http.client parsed each answer's
    headers with the email package and built a request through six calls, 24 %
    of the generator's busy time at 200 messages a second, and the generator
    shares the two cores with the stack it measures (issue 16)."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.idle = []
        self._host = f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n".encode()

    def request(self, method, path, body=None, token=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._host]
        if token:
            head.append(f"Authorization: Bearer {token}\r\n".encode())
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: %d\r\n" % len(data))
        head.append(b"\r\n")
        raw_request = b"".join(head) + data
        answer = None
        if self.idle:
            conn = self.idle.pop()
            try:
                answer = conn.exchange(raw_request)
            except Stale:
                # A kept-alive connection the gateway closed meanwhile: once more on a new one.
                conn.close()
            except Exception:
                conn.close()
                raise
        if answer is None:
            conn = Wire(self.host, self.port, timeout)
            try:
                answer = conn.exchange(raw_request)
            except Exception:
                conn.close()
                raise
        status, raw, keep = answer
        if keep:
            self.idle.append(conn)
        else:
            conn.close()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return status, payload

    def ok(self, method, path, body=None, token=None, expect=(200, 201)):
        status, payload = self.request(method, path, body, token)
        if status not in expect:
            raise RuntimeError(f"{method} {path} answered {status}: {payload}")
        return payload


class Stale(ConnectionError):
    """The connection ended before any byte of the answer: the gateway closed it while idle."""


class Wire:
    """One keep-alive HTTP/1.1 connection: a request out, its answer in
    (status, body, whether the connection may be kept)."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _more(self, answered):
        chunk = self.sock.recv(16384)
        if not chunk:
            if not answered:
                raise Stale("closed before answering")
            raise ConnectionError("closed mid-answer")
        self.buf += chunk

    def exchange(self, raw_request):
        try:
            self.sock.sendall(raw_request)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise Stale(str(exc)) from None
        buf = self.buf
        try:
            while (end := buf.find(b"\r\n\r\n")) < 0:
                self._more(bool(buf))
        except ConnectionResetError as exc:
            if buf:
                raise
            raise Stale(str(exc)) from None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, keep = None, False, not lines[0].startswith("HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                keep = value != "close" if keep else value == "keep-alive"
        if chunked:
            body = self._chunked()
        elif length is not None:
            while len(buf) < length:
                self._more(True)
            body = bytes(buf[:length])
            del buf[:length]
        elif status in (204, 304) or status < 200:
            body = b""
        else:  # to the end of the connection
            while True:
                chunk = self.sock.recv(16384)
                if not chunk:
                    break
                buf += chunk
            body, keep = bytes(buf), False
            buf.clear()
        return status, body, keep

    def _chunked(self):
        buf, parts = self.buf, []
        while True:
            while (end := buf.find(b"\r\n")) < 0:
                self._more(True)
            size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
            del buf[: end + 2]
            while len(buf) < size + 2:
                self._more(True)
            parts.append(bytes(buf[:size]))
            del buf[: size + 2]
            if size == 0:
                while (end := buf.find(b"\r\n")) != 0:  # trailers, until the empty line
                    if end < 0:
                        self._more(True)
                    else:
                        del buf[: end + 2]
                del buf[:2]
                return b"".join(parts)


def ws_messages(sock):
    """Each text or binary message a websocket's raw socket receives, with
    when it arrived (perf_counter), until it closes; pings answered.

    websocket-client read a frame in some twenty Python calls: 19 % of the
    generator's busy time. The gateway's frames are unmasked and whole, but a
    masked or fragmented one is read right all the same (tests/test_bench_wire.py)."""
    buf, parts = bytearray(), []

    def need(n):
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buf.extend(chunk)

    try:
        while True:
            need(2)
            opcode, fin, length, pos = buf[0] & 0x0F, buf[0] & 0x80, buf[1] & 0x7F, 2
            if length == 126:
                need(4)
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                need(10)
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            mask = None
            if buf[1] & 0x80:
                need(pos + 4)
                mask, pos = bytes(buf[pos : pos + 4]), pos + 4
            need(pos + length)
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            at = time.perf_counter()
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 8:
                return
            if opcode == 9:
                sock.sendall(_client_frame(0xA, payload))
            elif opcode in (0, 1, 2):
                parts.append(payload)
                if fin:
                    yield b"".join(parts), at
                    parts = []
    except (EOFError, OSError):
        return


def _client_frame(opcode, payload):
    """A client's control frame (masked, as RFC 6455 asks of every client
    frame); a control frame's payload is at most 125 bytes, so one length byte."""
    mask = secrets.token_bytes(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


class Pushes:
    """One websocket; records when each chat.message (by its id in the text) arrived."""

    def __init__(self, url, token, arrived, events=None):
        # websocket-client opens it and reads the auth's answer; the pushes
        # are read from its socket by ws_messages.
        self.ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=60)
        self.ws.send(json.dumps({"method": "auth", "data": {"token": token}, "correlation_id": "a"}))
        while True:
            frame = json.loads(self.ws.recv())
            if frame.get("type") == "result":
                assert frame["success"], frame
                break
        self.ws.settimeout(None)  # pushes may pause for long between runs
        self.arrived = arrived
        self.events = events
        self.thread = eventlet.spawn(self._read)

    def _read(self):
        for raw, now in ws_messages(self.ws.sock):
            frame = json.loads(raw)
            if frame.get("type") != "event":
                continue
            if frame["event"] == "chat.message":
                text = frame["data"]["text"]
                if text.startswith("b#"):
                    self.arrived.setdefault(text.split(" ", 1)[0], now)
            elif self.events is not None:
                self.events.append((frame["event"], frame["data"], now))

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        self.thread.kill()


class Cast:
    """Chats in progress: children and counsellors with their sockets."""

    def __init__(self, stack, http, chats=40, capacity=10, urls=None):
        # Several gateway replicas: sockets and sends spread over them (urls).
        self.urls = urls or [stack.url]
        self.stack, self.http = stack, http
        self.https = [http] + [Http(url) for url in self.urls[1:]]
        self.arrived = {}
        self.children = []  # (chat_id, token)
        self.counsellors = []  # (token, [chat_id])
        self.sockets = []
        for n in range((chats + capacity - 1) // capacity):
            username = f"bench-{secrets.token_hex(3)}-{n}"
            password = stack.add_account(username, f"Kari Bench{n}", "counsellor")
            token = http.ok("POST", "/api/v1/auth/login", {"username": username, "password": password})["token"]
            http.ok("PUT", "/api/v1/presence", {"status": "available", "capacity": capacity}, token=token)
            self.counsellors.append((token, []))
        for n in range(chats):
            chat = http.ok("POST", "/api/v1/chats", {"gender": "girl", "age": 13})
            token, mine = self.counsellors[n % len(self.counsellors)]
            http.ok("POST", "/api/v1/queue/take", {"chat_id": chat["chat_id"]}, token=token)
            mine.append(chat["chat_id"])
            self.children.append((chat["chat_id"], chat["token"], token))
        for n, (token, _) in enumerate(self.counsellors):
            self.sockets.append(Pushes(self.urls[n % len(self.urls)], token, self.arrived))
        for n, (_, token, _) in enumerate(self.children):
            self.sockets.append(Pushes(self.urls[(n + 1) % len(self.urls)], token, self.arrived))
        self._ids = itertools.count(1)

    def close(self):
        for pushes in self.sockets:
            pushes.close()

    def run(self, rate, seconds, concurrency=400, drain=5.0, warmup=None, measuring=None):
        """Open loop at `rate` messages/s, alternating child and counsellor sends
        across the chats; returns what was offered, answered and relayed.

        The first `warmup` seconds (BENCH_WARMUP_S) are sent at the same rate
        but not measured: the measured part starts in the steady state, with no
        gap before it. After the pause between two levels every process of the
        stack starts cold (the gateway's tokens re-read at once, SQLite's page
        cache, the keep-alive connections), and at the high utilisation of
        "half load" on two cores that one burst of extra work took a whole
        second to drain: up to 198 of a level's first 200 messages were slow
        while the rest of it was not. A level's failures in its warm-up still
        count against it (`warmup_failed`). `measuring`, if given, is called as
        the measured part begins (bench/scale.py reads every process's CPU there).
        """
        warmup = WARMUP_S if warmup is None else warmup
        sent = {}  # id -> perf_counter at the start of the POST
        answered = {}  # id -> perf_counter when its answer came
        accepted = set()  # ids answered 201: the gateway took them
        failed = [0]
        statuses = {}
        warm_failed = [0]
        pool = eventlet.GreenPool(concurrency)
        senders = itertools.cycle(
            [(chat_id, who) for chat_id, child, counsellor in self.children for who in (child, counsellor)]
        )

        def send(mid, chat_id, token, http, measured=True):
            if measured:
                sent[mid] = time.perf_counter()
            try:
                status, _ = http.request(
                    "POST", f"/api/v1/chats/{chat_id}/messages", {"text": f"{mid} hei", "client_msg_id": mid}, token
                )
            except Exception:  # noqa: BLE001
                status = None
            if not measured:
                if status != 201:
                    warm_failed[0] += 1
                return
            answered[mid] = time.perf_counter()
            if status == 201:
                accepted.add(mid)
            else:
                failed[0] += 1
                statuses[str(status)] = statuses.get(str(status), 0) + 1

        warm = int(rate * warmup)
        total = int(rate * seconds)
        first = time.perf_counter()
        started = first + warm / rate
        behind = 0
        for n in range(warm + total):
            due = first + n / rate
            now = time.perf_counter()
            if due > now:
                eventlet.sleep(due - now)
            elif now - due > 0.25 and n >= warm:
                behind += 1
            if n == warm and measuring is not None:
                measuring()
            chat_id, token = next(senders)
            pool.spawn_n(send, f"b#{next(self._ids)}", chat_id, token, self.https[n % len(self.https)], n >= warm)
        offered_s = time.perf_counter() - started
        pool.waitall()
        deadline = time.perf_counter() + drain
        while time.perf_counter() < deadline and any(m not in self.arrived for m in sent):
            eventlet.sleep(0.05)
        latencies = [self.arrived[m] - t for m, t in sent.items() if m in self.arrived]
        # The sender's part alone: POST to 201 (gateway, RPC, the chat's commit).
        answers = [answered[m] - t for m, t in sent.items() if m in answered]
        relayed = len(latencies)
        # Relayed per second over the run: arrivals up to 1 s after the last send,
        # over the time from the first send to the last of those arrivals.
        window = [
            self.arrived[m] - started
            for m in sent
            if m in self.arrived and self.arrived[m] - started <= offered_s + 1.0
        ]
        in_window = len(window)
        duration = max([offered_s] + window)
        # Where in the run the slow ones were sent: a burst at its start is
        # another thing than a spread (issue 16's p99 at half load). The second
        # counts those whose POST was already slow: held on the request's path
        # (gateway, RPC, the chat's commit), not on the push.
        slow = _slow_by_second(sent, self.arrived, started)
        slow_answer = _slow_by_second(sent, answered, started)
        return {
            "slow_answer_by_second": slow_answer,
            "slow_by_second": slow,
            "offered_rate": rate,
            "sent": len(sent),
            "failed": failed[0],
            "failures": statuses,
            "warmup_s": warmup,
            "warmup_failed": warm_failed[0],
            "relayed": relayed,
            # A message refused (503 past saturation) is the child's to send
            # again and counts in "failed"; "lost" is only what the gateway
            # took (201) and never pushed, the loss a helpline cannot have.
            "lost": sum(1 for m in accepted if m not in self.arrived),
            "not_relayed": len(sent) - relayed,
            "achieved_rate": round(in_window / duration, 1) if duration else 0.0,
            "generator_behind": behind,
            "p50_ms": _ms(percentile(latencies, 50)),
            "p99_ms": _ms(percentile(latencies, 99)),
            "p999_ms": _ms(percentile(latencies, 99.9)),
            "max_ms": _ms(max(latencies, default=None)),
            "answer_p50_ms": _ms(percentile(answers, 50)),
            "answer_p99_ms": _ms(percentile(answers, 99)),
        }


def _ms(value):
    return None if value is None else round(value * 1000, 2)


def assignment(stack, http, count=60):
    """From a counsellor's take to the chat.assigned push on the child's socket."""
    username = f"bench-assign-{secrets.token_hex(3)}"
    password = stack.add_account(username, "Kari Assign", "counsellor")
    token = http.ok("POST", "/api/v1/auth/login", {"username": username, "password": password})["token"]
    http.ok("PUT", "/api/v1/presence", {"status": "available", "capacity": 10}, token=token)
    times = []
    for _ in range(count):
        chat = http.ok("POST", "/api/v1/chats", {"gender": "boy", "age": 15})
        events = []
        socket = Pushes(stack.url, chat["token"], {}, events)
        started = time.perf_counter()
        http.ok("POST", "/api/v1/queue/take", {"chat_id": chat["chat_id"]}, token=token)
        deadline = started + 10
        while time.perf_counter() < deadline and not any(e[0] == "chat.assigned" for e in events):
            eventlet.sleep(0.002)
        arrived = next((t for e, _, t in events if e == "chat.assigned"), None)
        if arrived is not None:
            times.append(arrived - started)
        socket.close()
        http.ok("POST", f"/api/v1/chats/{chat['chat_id']}/end", {}, token=token)
    return {
        "count": count,
        "assigned": len(times),
        "p50_ms": _ms(percentile(times, 50)),
        "p99_ms": _ms(percentile(times, 99)),
        "max_ms": _ms(max(times, default=None)),
    }


def hold_sockets(url, tokens, count, auth=True, concurrency=50):
    """Open `count` websockets (authenticated round-robin with `tokens`); returns them."""
    held = LightQueue()
    failures = [0]
    cycle = itertools.cycle(tokens or [None])

    def one(token):
        try:
            ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=60)
            ws.recv()  # connected
            if auth and token:
                ws.send(json.dumps({"method": "auth", "data": {"token": token}, "correlation_id": "a"}))
                frame = json.loads(ws.recv())
                if not frame.get("success"):
                    raise RuntimeError("auth failed")
            held.put(ws)
        except Exception:  # noqa: BLE001
            failures[0] += 1

    pool = eventlet.GreenPool(concurrency)
    for _ in range(count):
        pool.spawn_n(one, next(cycle))
    pool.waitall()
    sockets = []
    while not held.empty():
        sockets.append(held.get())
    return sockets, failures[0]


def echo_rtt(url, count=500, method="echo"):
    """Sequential websocket rpc round trips on one socket."""
    ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=30)
    ws.recv()
    times = []
    for n in range(count):
        started = time.perf_counter()
        ws.send(json.dumps({"method": method, "data": {"value": n}, "correlation_id": str(n)}))
        while True:
            frame = json.loads(ws.recv())
            if frame.get("correlation_id") == str(n):
                break
        times.append(time.perf_counter() - started)
    ws.close()
    return times


def close_all(sockets):
    """Close held websockets, whatever state each is in."""
    for ws in sockets:
        try:
            ws.close()
        except Exception:  # noqa: BLE001 - already gone
            pass


def _slow_by_second(sent, done, started, slow_s=0.025):
    """{second of the run it was sent in: how many took longer than slow_s to be done}."""
    out = {}
    for m, t in sent.items():
        if m in done and done[m] - t > slow_s:
            second = int(t - started)
            out[second] = out.get(second, 0) + 1
    return dict(sorted(out.items()))
