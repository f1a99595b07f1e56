"""A client of the gateway as outside clients use it: HTTP and WebSocket."""

import itertools
import json
import secrets
import time

import eventlet
import requests
import websocket


class Api:
    def __init__(self, url, token=None):
        self.url = url
        self.token = token
        self.http = requests.Session()

    def call(self, method, path, json_body=None, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(
            method, self.url + path, json=json_body, headers=headers, timeout=kwargs.pop("timeout", 15), **kwargs
        )

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body if body is not None else {}, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body if body is not None else {}, **kw)

    def login(self, username, password="demo"):
        response = self.post("/api/v1/auth/login", {"username": username, "password": password})
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]
        return response.json()


def staff(stack, role="counsellor"):
    """A member of staff with a new account on `stack` (a tests.stack.Stack),
    signed in; `.id` is their counsellor id."""
    username = f"{role}-{secrets.token_hex(3)}"
    password = stack.add_account(username, f"Kari {username}", role)
    client = Api(stack.url)
    client.id = client.login(username, password)["counsellor"]["id"]
    return client


def start_chat(stack, **body):
    """A child starts a chat: (chat_id, the child's client)."""
    response = Api(stack.url).post("/api/v1/chats", body)
    assert response.status_code == 201, response.text
    chat = response.json()
    return chat["chat_id"], Api(stack.url, chat["token"])


def active_chat(stack, counsellor, message="hei", **body):
    """A chat `counsellor` has taken from the queue: (chat_id, the child's client)."""
    chat_id, child = start_chat(stack, message=message, **body)
    assert counsellor.put("/api/v1/presence", {"status": "available", "capacity": 10}).status_code == 200
    taken = counsellor.post("/api/v1/queue/take", {"chat_id": chat_id})
    assert taken.status_code == 200, taken.text
    return chat_id, child


def until(predicate, timeout=15, interval=0.05):
    """predicate()'s first true value within `timeout` seconds, else its last
    (false) one: for what another process or the broker does in its own time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        eventlet.sleep(interval)


def bytes_until_closed(ws, timeout=10):
    """Every byte a websocket-client socket receives until the other side closes
    it, read raw: nothing (such as a pong) is sent back meanwhile."""
    ws.sock.settimeout(timeout)
    raw = b""
    try:
        while True:
            data = ws.sock.recv(65536)
            if not data:
                break
            raw += data
    except OSError:
        pass
    return raw


def frames(ws, parse=True):
    """Each frame a websocket receives (parsed, or as text), with when it
    arrived (perf_counter), until it closes."""
    while True:
        try:
            raw = ws.recv()
        except Exception:  # noqa: BLE001 - closed
            return
        if not raw:
            return
        at = time.perf_counter()
        yield (json.loads(raw) if parse else raw), at


class Socket:
    """A websocket that records every pushed event in the background."""

    def __init__(self, url, token):
        self.ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=10)
        # The reader waits for pushes for as long as the socket lives.
        self.ws.settimeout(None)
        self.events = []
        self.results = {}
        self._ids = itertools.count(1)
        self._reader = eventlet.spawn(self._read)
        result = self.call("auth", {"token": token})
        assert result["success"], result

    def _read(self):
        for frame, _at in frames(self.ws):
            if frame.get("type") == "event":
                self.events.append(frame)
            elif frame.get("type") == "result":
                self.results[frame.get("correlation_id")] = frame

    def call(self, method, data, timeout=10):
        correlation = str(next(self._ids))
        self.ws.send(json.dumps({"method": method, "data": data, "correlation_id": correlation}))
        deadline = time.monotonic() + timeout
        while correlation not in self.results:
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            eventlet.sleep(0.01)
        return self.results.pop(correlation)

    def wait_for(self, name, predicate=lambda data: True, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.events:
                if frame["event"] == name and predicate(frame["data"]):
                    return frame["data"]
            eventlet.sleep(0.02)
        seen = [f["event"] for f in self.events]
        raise AssertionError(f"no {name} event within {timeout} s; saw {seen}")

    def close(self):
        try:
            self.ws.close()
        finally:
            self._reader.kill()
