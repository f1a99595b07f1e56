"""Relay benchmark (issue 4): a child's HTTP send to the counsellor's socket,
beside raw pika publish -> consume on the same broker in the same run.

- maximum sustained rate: closed loop, several senders sending as fast as they
  can for a few seconds; the rate is what reached the socket(s) per second;
- latency p50/p99 at half that rate: open loop, sends paced at half the rate,
  each from the start of the HTTP request to the frame on the socket;
- the same two figures for raw pika: persistent messages to a durable queue,
  publisher confirms, a consumer acking each message.

Plain threads (no eventlet) so it runs with or without monkey patching.
`main()` prints and returns a dict; `python -m bench.relay_bench` runs it alone.
"""

import itertools
import json
import os
import queue
import secrets
import tempfile
import threading
import time

import pika
import requests
import websocket

from chatvakt.numbers import percentile
from tests.stack import Stack

SECONDS = float(os.environ.get("CHATVAKT_BENCH_SECONDS", "5"))
CHATS = 8
CONCURRENCY = (4, 16)
# After a saturating run the services still work off what the other consumers
# (e.g. the risk screen) queued; latency is measured once they are idle again.
SETTLE_S = float(os.environ.get("CHATVAKT_BENCH_SETTLE_S", "5"))


def ms(value):
    return None if value is None else round(value * 1000, 2)


class Receiver:
    """A counsellor's websocket, timing each message by its text."""

    def __init__(self, url, token):
        self.ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=30)
        self.ws.send(json.dumps({"method": "auth", "data": {"token": token}, "correlation_id": "1"}))
        self.arrived = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                frame = json.loads(self.ws.recv())
            except Exception:  # noqa: BLE001 - closed
                return
            if frame.get("type") == "event" and frame.get("event") == "chat.message":
                self.arrived.setdefault(frame["data"]["text"], time.monotonic())

    def close(self):
        self.ws.close()


def closed_loop(workers, seconds, send):
    """`workers` threads call send(key) back to back for `seconds`; returns the keys sent."""
    stop = time.monotonic() + seconds
    counter = itertools.count()
    sent = []

    def run():
        while time.monotonic() < stop:
            key = next(counter)
            send(key)
            sent.append(key)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def open_loop(rate, seconds, send, workers=64):
    """Start send(key) at `rate` per second for `seconds`, from a pool of threads."""
    jobs = queue.Queue()

    def run():
        while True:
            key = jobs.get()
            if key is None:
                return
            send(key)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        jobs.put(i)
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    return total


def wait_all(arrived, keys, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(k in arrived for k in keys):
        time.sleep(0.05)
    return sum(1 for k in keys if k in arrived)


# --- the relay through the real stack


class Timed:
    """The rate and latency of whatever a subclass sends (`send`): which keys
    of the current run are its own (`mine`) and when each arrived (`arrivals`)."""

    def max_rate(self):
        best = 0.0
        for workers in CONCURRENCY:
            self.run_id += 1
            began = time.monotonic()
            closed_loop(workers, SECONDS, self.send)
            mine, arrived = self.mine(), self.arrivals()
            wait_all(arrived, mine)
            ended = max(arrived[k] for k in mine if k in arrived)
            best = max(best, sum(1 for k in mine if k in arrived) / (ended - began))
        return best

    def latency(self, rate):
        self.run_id += 1
        open_loop(rate, SECONDS, self.send)
        mine, arrived = self.mine(), self.arrivals()
        wait_all(arrived, mine)
        return [arrived[k] - self.started[k] for k in mine if k in arrived]


class Relay(Timed):
    def __init__(self, stack):
        self.stack = stack
        username = f"bench-{secrets.token_hex(3)}"
        password = stack.add_account(username, "Bench Counsellor", "counsellor")
        login = requests.post(
            f"{stack.url}/api/v1/auth/login", json={"username": username, "password": password}, timeout=15
        ).json()
        self.staff = {"Authorization": f"Bearer {login['token']}"}
        requests.put(
            f"{stack.url}/api/v1/presence", json={"status": "available", "capacity": 10}, headers=self.staff, timeout=15
        ).raise_for_status()
        self.chats = []
        for _ in range(CHATS):
            chat = requests.post(f"{stack.url}/api/v1/chats", json={}, timeout=15).json()
            requests.post(
                f"{stack.url}/api/v1/queue/take", json={"chat_id": chat["chat_id"]}, headers=self.staff, timeout=15
            ).raise_for_status()
            self.chats.append((chat["chat_id"], {"Authorization": f"Bearer {chat['token']}"}))
        self.receiver = Receiver(stack.url, login["token"])
        self.local = threading.local()
        self.started = {}
        self.run_id = 0

    def send(self, key):
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        chat_id, headers = self.chats[key % len(self.chats)]
        text = f"r{self.run_id}-{key}"
        self.started[text] = time.monotonic()
        response = session.post(
            f"{self.stack.url}/api/v1/chats/{chat_id}/messages",
            json={"text": text, "client_msg_id": text},
            headers=headers,
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(f"relay send answered {response.status_code}")

    def arrivals(self):
        return self.receiver.arrived

    def mine(self):
        return [t for t in self.started if t.startswith(f"r{self.run_id}-")]


# --- raw pika on the same broker


class Raw(Timed):
    def __init__(self, amqp_uri):
        self.params = pika.URLParameters(amqp_uri)
        self.queue = f"bench.raw.{secrets.token_hex(3)}"
        setup = pika.BlockingConnection(self.params)
        setup.channel().queue_declare(self.queue, durable=True)
        setup.close()
        self.arrived = {}
        self.started = {}
        self.local = threading.local()
        self.run_id = 0
        self._stop = threading.Event()
        self.consumer = threading.Thread(target=self._consume, daemon=True)
        self.consumer.start()

    def _consume(self):
        connection = pika.BlockingConnection(self.params)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=100)
        for method, _props, body in channel.consume(self.queue, auto_ack=False, inactivity_timeout=0.2):
            if self._stop.is_set():
                break
            if method is None:
                continue
            self.arrived.setdefault(body.decode(), time.monotonic())
            channel.basic_ack(method.delivery_tag)
        channel.cancel()
        connection.close()

    def send(self, key):
        channel = getattr(self.local, "channel", None)
        if channel is None:
            self.local.connection = pika.BlockingConnection(self.params)
            channel = self.local.channel = self.local.connection.channel()
            channel.confirm_delivery()
        body = f"p{self.run_id}-{key}"
        self.started[body] = time.monotonic()
        channel.basic_publish(
            "",
            self.queue,
            body.encode(),
            pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
            mandatory=True,
        )

    def arrivals(self):
        return self.arrived

    def mine(self):
        return [b for b in self.started if b.startswith(f"p{self.run_id}-")]

    def close(self):
        self._stop.set()
        self.consumer.join(timeout=5)
        try:
            connection = pika.BlockingConnection(self.params)
            connection.channel().queue_delete(self.queue)
            connection.close()
        except Exception:  # noqa: BLE001 - the vhost goes with the stack anyway
            pass


def _ratio(a, b):
    return None if not a or not b else round(a / b, 2)


def main():
    workdir = tempfile.mkdtemp(prefix="chatvakt-relay-bench-")
    stack = Stack(
        workdir,
        env={
            "CHATVAKT_CHILD_MSGS_PER_MIN": str(10**7),
            "LOG_LEVEL": "WARNING",
            "CHATVAKT_INACTIVITY_PROMPT_S": "3600",
            "CHATVAKT_INACTIVITY_END_S": "7200",
        },
    ).start()
    raw = None
    try:
        relay = Relay(stack)
        relay_max = relay.max_rate()
        time.sleep(SETTLE_S)
        relay_lat = relay.latency(relay_max / 2)
        raw = Raw(stack.amqp_uri)
        raw_max = raw.max_rate()
        time.sleep(SETTLE_S)
        raw_lat = raw.latency(raw_max / 2)
        relay.receiver.close()
    finally:
        if raw is not None:
            raw.close()
        stack.stop()
    result = {
        "relay_max_msgs_per_s": round(relay_max, 1),
        "relay_p50_ms_at_half_rate": ms(percentile(relay_lat, 50)),
        "relay_p99_ms_at_half_rate": ms(percentile(relay_lat, 99)),
        "relay_samples": len(relay_lat),
        "raw_max_msgs_per_s": round(raw_max, 1),
        "raw_p50_ms_at_half_rate": ms(percentile(raw_lat, 50)),
        "raw_p99_ms_at_half_rate": ms(percentile(raw_lat, 99)),
        "raw_samples": len(raw_lat),
    }
    result["ratio_max_rate_relay_over_raw"] = _ratio(result["relay_max_msgs_per_s"], result["raw_max_msgs_per_s"])
    result["ratio_p50_relay_over_raw"] = _ratio(result["relay_p50_ms_at_half_rate"], result["raw_p50_ms_at_half_rate"])
    result["ratio_p99_relay_over_raw"] = _ratio(result["relay_p99_ms_at_half_rate"], result["raw_p99_ms_at_half_rate"])
    print(
        "relay benchmark (child HTTP send -> counsellor socket) vs raw pika "
        "(persistent, confirms, acks), same broker, same run"
    )
    for key, value in result.items():
        print(f"  {key:34} {value}")
    return result


if __name__ == "__main__":
    main()
