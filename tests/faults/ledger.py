"""A ledger of every message sent and received, scored after a fault.

Senders post with a client_msg_id and retry on 503, 429, 5xx and connection
errors with the same id until they get a 201 (as the chat page does); every
201 is recorded with its seq. Receivers hold a websocket, record each pushed
message, reconnect when the socket drops, and fetch `?after=N` after a
reconnect or when a pushed seq leaves a gap (what a client does to fill in
what it missed). At the end each receiver fetches its whole chat once more.

Scored per chat and receiving side, over the messages the other side sent:
- lost: got a 201 but is not in the receiver's view;
- duplicated: one client_msg_id under more than one seq (stored twice);
- unexpected: a message in the view whose text no sender attempted, or whose
  seq differs from the seq its 201 said.
push_missed counts acked messages the receiver got only by fetching.
"""

import itertools
import json
import threading
import time

import eventlet
import requests
import websocket

RETRY_STATUSES = {429, 500, 502, 503, 504}


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = {}  # (chat_id, sender, cmid) -> {"text", "first_try"}
        self.acked = {}  # (chat_id, sender, cmid) -> {"seq", "acked_at"}
        self.views = {}  # (chat_id, receiver) -> {seq: message}
        self.pushed_at = {}  # (chat_id, receiver, seq) -> monotonic time of the push
        self.fetched = 0  # messages a receiver only got by fetching
        self.errors = []

    def attempt(self, chat_id, sender, cmid, text):
        self.attempted.setdefault((chat_id, sender, cmid), {"text": text, "first_try": time.monotonic()})

    def ack(self, chat_id, sender, cmid, seq):
        key = (chat_id, sender, cmid)
        previous = self.acked.get(key)
        if previous is not None and previous["seq"] != seq:
            self.errors.append(f"{cmid}: acked as seq {previous['seq']} and then {seq}")
        self.acked.setdefault(key, {"seq": seq, "acked_at": time.monotonic()})

    def see(self, chat_id, receiver, message, pushed):
        view = self.views.setdefault((chat_id, receiver), {})
        seq = message["seq"]
        old = view.get(seq)
        if old is not None and (old["text"] != message["text"] or old["sender"] != message["sender"]):
            self.errors.append(f"chat {chat_id[:8]} seq {seq} seen with two different contents")
        if old is None:
            view[seq] = {"seq": seq, "sender": message["sender"], "text": message["text"]}
            if pushed:
                self.pushed_at[(chat_id, receiver, seq)] = time.monotonic()
            else:
                self.fetched += 1

    def last_contiguous(self, chat_id, receiver):
        view = self.views.get((chat_id, receiver), {})
        n = 0
        while n + 1 in view:
            n += 1
        return n

    def score(self, pairs):
        """pairs: [(chat_id, sender_role, receiver_role)] to score."""
        lost = duplicated = unexpected = 0
        details = []
        texts = {(c, s): {} for c, s, _ in pairs}
        for (chat_id, sender, cmid), item in self.attempted.items():
            if (chat_id, sender) in texts:
                texts[(chat_id, sender)][item["text"]] = cmid
        for chat_id, sender, receiver in pairs:
            view = self.views.get((chat_id, receiver), {})
            ours = [m for m in view.values() if m["sender"] == sender]
            by_text = {}
            for message in ours:
                by_text.setdefault(message["text"], []).append(message["seq"])
            for text, seqs in by_text.items():
                cmid = texts[(chat_id, sender)].get(text)
                if cmid is None:
                    unexpected += 1
                    details.append(f"unexpected in {chat_id[:8]} seq {seqs}")
                    continue
                if len(seqs) > 1:
                    duplicated += len(seqs) - 1
                    details.append(f"duplicated {cmid} as seqs {seqs}")
                acked = self.acked.get((chat_id, sender, cmid))
                if acked is not None and acked["seq"] not in seqs:
                    unexpected += 1
                    details.append(f"{cmid} acked as {acked['seq']} but seen as {seqs}")
            for (c, s, cmid), acked in self.acked.items():
                if c == chat_id and s == sender:
                    message = view.get(acked["seq"])
                    if message is None or message["text"] != self.attempted[(c, s, cmid)]["text"]:
                        lost += 1
                        details.append(f"lost {cmid} (seq {acked['seq']})")
        receivers = {(c, s): r for c, s, r in pairs}
        push_missed = sum(
            1
            for (c, s, _), acked in self.acked.items()
            if (c, s) in receivers and (c, receivers[(c, s)], acked["seq"]) not in self.pushed_at
        )
        return {
            "attempted": sum(1 for c, s, _ in self.attempted if (c, s) in texts),
            "push_missed": push_missed,
            "acked": sum(1 for c, s, _ in self.acked if (c, s) in texts),
            "lost": lost,
            "duplicated": duplicated,
            "unexpected": unexpected,
            "errors": list(self.errors),
            "details": details[:20],
        }


def post_until_acked(api, ledger, chat_id, sender, cmid, text, give_up=60.0):
    """Post one message, retrying with the same client_msg_id; True once it has a 201."""
    ledger.attempt(chat_id, sender, cmid, text)
    deadline = time.monotonic() + give_up
    delay = 0.1
    while time.monotonic() < deadline:
        try:
            response = api.post(f"/api/v1/chats/{chat_id}/messages", {"text": text, "client_msg_id": cmid}, timeout=5)
        except requests.RequestException:
            response = None
        if response is not None and response.status_code == 201:
            ledger.ack(chat_id, sender, cmid, response.json()["seq"])
            return True
        if response is not None and response.status_code not in RETRY_STATUSES:
            ledger.errors.append(f"{cmid}: answered {response.status_code}")
            return False
        eventlet.sleep(delay)
        delay = min(1.0, delay * 1.5)
    ledger.errors.append(f"{cmid}: no 201 within {give_up:.0f} s")
    return False


class Sender:
    """Posts numbered messages into one chat until stopped."""

    def __init__(self, api, ledger, chat_id, role, interval=0.1):
        self.api, self.ledger, self.chat_id, self.role = api, ledger, chat_id, role
        self.interval = interval
        self.running = True
        self.count = 0
        self.thread = eventlet.spawn(self._run)

    def _run(self):
        for n in itertools.count(1):
            if not self.running:
                return
            cmid = f"{self.role[:2]}-{self.chat_id[:8]}-{n}"
            post_until_acked(self.api, self.ledger, self.chat_id, self.role, cmid, f"{cmid} ledger")
            self.count = n
            eventlet.sleep(self.interval)

    def stop(self):
        self.running = False
        self.thread.wait()


class Receiver:
    """A websocket that records pushed messages for the chats it sees, and
    reconnects and catches up as a client does."""

    def __init__(self, url, token, role, chat_ids, ledger, api):
        self.url = url.replace("http", "ws", 1) + "/ws"
        self.token, self.role, self.chat_ids = token, role, set(chat_ids)
        self.ledger, self.api = ledger, api
        self.running = True
        self.connected = eventlet.event.Event()
        self.reconnects = 0
        self.thread = eventlet.spawn(self._run)

    def _connect(self):
        ws = websocket.create_connection(self.url, timeout=5)
        ws.send(json.dumps({"method": "auth", "data": {"token": self.token}, "correlation_id": "a"}))
        while True:
            frame = json.loads(ws.recv())
            if frame.get("type") == "result" and frame.get("correlation_id") == "a":
                if not frame.get("success"):
                    ws.close()
                    raise ConnectionError("auth refused")
                return ws

    def _run(self):
        first = True
        while self.running:
            try:
                ws = self._connect()
            except Exception:  # noqa: BLE001 - gateway away: try again
                eventlet.sleep(0.3)
                continue
            if not first:
                self.reconnects += 1
            for chat_id in self.chat_ids:
                self.catch_up(chat_id)
            first = False
            if not self.connected.ready():
                self.connected.send(True)
            ws.settimeout(1.0)
            try:
                while self.running:
                    try:
                        raw = ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not raw:
                        break
                    frame = json.loads(raw)
                    if frame.get("type") == "event" and frame.get("event") == "chat.message":
                        self._pushed(frame["data"])
            except Exception:  # noqa: BLE001 - dropped: reconnect and catch up
                pass
            finally:
                try:
                    ws.close()
                except Exception:  # noqa: BLE001
                    pass

    def _pushed(self, data):
        chat_id = data["chat_id"]
        if chat_id not in self.chat_ids:
            return
        before = self.ledger.last_contiguous(chat_id, self.role)
        self.ledger.see(chat_id, self.role, data, pushed=True)
        if data["seq"] > before + 1:
            self.catch_up(chat_id)

    def catch_up(self, chat_id, tries=20):
        for _ in range(tries):
            after = self.ledger.last_contiguous(chat_id, self.role)
            try:
                response = self.api.get(f"/api/v1/chats/{chat_id}/messages?after={after}", timeout=5)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 200:
                for message in response.json()["messages"]:
                    self.ledger.see(chat_id, self.role, message, pushed=False)
                return True
            eventlet.sleep(0.3)
        return False

    def stop(self):
        self.running = False
        self.thread.wait()
