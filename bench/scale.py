"""Issue 16's figures for `make bench`: many sockets on one gateway, the relay
on PostgreSQL, and the relay with two chat and two gateway processes.

Runs under the bench's eventlet monkey patching (bench/__main__.py).
"""

import itertools
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import eventlet
import psutil
import websocket

from bench import canary
from chatvakt.numbers import percentile
from tests.client import frames
from tests.stack import ROOT


def _ms(value):
    return None if value is None else round(value * 1000, 2)


# -- processes -----------------------------------------------------------------


def service_processes(stack):
    """Every process of the stack by label (chat-1, chat-2, gateway-1, ...)."""
    from launcher.stack import MODULES

    found = {}
    for child in psutil.Process(stack.proc.pid).children():
        try:
            cmdline = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        for name, module in MODULES.items():
            if module in cmdline:
                count = sum(1 for label in found if label.startswith(name + "-"))
                found[f"{name}-{count + 1}"] = child
    return found


def cpu_run(stack, cast, rate, seconds):
    """cast.run with the CPU of every process meanwhile: per process, and per
    service (its replicas summed), as a share of a core and in ms per message."""
    processes = service_processes(stack)
    # The two cores are shared with the load generator (this process) and the
    # broker: their share is printed beside the stack's, not added to it.
    outside = {"load generator": psutil.Process()}
    broker = broker_process()
    if broker is not None:
        outside["rabbitmq"] = broker
    # The sleeper starts before the warm-up: forking it must not pause the
    # generator inside the measured part. The CPU is read from the measured
    # part's first send (Cast.run's warm-up is not in it).
    watch = subprocess.Popen(
        [sys.executable, "-m", "bench.canary"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    mark: dict = {}

    def measuring():
        mark["before"] = {n: sum(p.cpu_times()[:2]) for n, p in {**processes, **outside}.items()}
        mark["started"] = time.time()
        mark["wall"] = time.perf_counter()

    step = cast.run(rate, seconds, measuring=measuring)
    wall = time.perf_counter() - mark["wall"]
    before = mark["before"]
    step["machine_late_by_second"] = _canary_findings(watch, mark["started"])
    used = {}
    for name, proc in {**processes, **outside}.items():
        try:
            used[name] = sum(proc.cpu_times()[:2]) - before[name]
        except psutil.NoSuchProcess:
            used[name] = 0.0
    relayed = max(1, step["relayed"])
    step["cpu_ms_per_message_outside"] = {n: round(used.pop(n) * 1000 / relayed, 2) for n in outside}
    step["cpu_share_per_process"] = {n: round(v / wall, 2) for n, v in used.items()}
    step["cpu_ms_per_message_per_process"] = {n: round(v * 1000 / relayed, 2) for n, v in used.items()}
    services = {}
    for name, value in used.items():
        service = name.rsplit("-", 1)[0]
        services[service] = services.get(service, 0.0) + value
    step["cpu_ms_per_message"] = {n: round(v * 1000 / relayed, 2) for n, v in services.items()}
    step["cpu_share"] = {n: round(v / wall, 2) for n, v in services.items()}
    step["cpu_ms_per_message_total"] = round(sum(used.values()) * 1000 / relayed, 2)
    return step


def _canary_findings(watch, started):
    """bench/canary.py's late wake-ups by second of the run; None if it said nothing."""
    watch.send_signal(signal.SIGINT)
    try:
        out, _ = watch.communicate(timeout=10)
        return canary.by_second(json.loads(out or b"[]"), started)
    except (subprocess.TimeoutExpired, ValueError):
        watch.kill()
        return None


def broker_process():
    """RabbitMQ's Erlang VM on this machine, if it is here and ours to see."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] == "beam.smp" and any("rabbit" in part for part in proc.info["cmdline"] or ()):
                return proc
        except psutil.Error:
            continue
    return None


# -- 10,000 sockets ------------------------------------------------------------


def _source_addresses(count, per_address):
    """Loopback source addresses 127.0.1.1, 127.0.1.2, ... (Linux routes all of
    127/8 to lo), enough that no address holds more than `per_address`."""
    needed = (count + per_address - 1) // per_address
    return [f"127.0.{1 + n // 250}.{1 + n % 250}" for n in range(needed)]


def open_socket(url, token, source):
    parts = urllib.parse.urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=60, source_address=(source, 0))
    ws = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=60, socket=raw)
    ws.recv()  # connected
    ws.send(json.dumps({"method": "auth", "data": {"token": token}, "correlation_id": "a"}))
    frame = json.loads(ws.recv())
    if not frame.get("success"):
        ws.close()
        raise RuntimeError("auth failed")
    return ws


def many_sockets(stack, http, gateway_proc, count=10_000, per_address=180, concurrency=100, limit_s=180.0):
    """Open `count` authenticated counsellor sockets on one gateway process from
    several loopback addresses (each under the per-address cap), measure the
    gateway's RSS per socket, then push one queue change (a child opens a chat)
    to all of them: the first and the last arrival after the request began."""
    tokens = []
    for n in range(5):
        username = f"bench-sock-{secrets.token_hex(3)}-{n}"
        password = stack.add_account(username, f"Kari Sock{n}", "counsellor")
        tokens.append(http.ok("POST", "/api/v1/auth/login", {"username": username, "password": password})["token"])
    sources = _source_addresses(count, per_address)
    eventlet.sleep(1)
    rss_before = gateway_proc.memory_info().rss
    held, failures = [], [0]
    deadline = time.monotonic() + limit_s
    plan = [(tokens[n % len(tokens)], sources[n // per_address]) for n in range(count)]

    def one(job):
        if time.monotonic() > deadline:
            failures[0] += 1
            return
        try:
            held.append(open_socket(stack.url, *job))
        except Exception:  # noqa: BLE001
            failures[0] += 1

    started = time.perf_counter()
    pool = eventlet.GreenPool(concurrency)
    for job in plan:
        pool.spawn_n(one, job)
    pool.waitall()
    open_s = time.perf_counter() - started
    eventlet.sleep(2)
    rss_after = gateway_proc.memory_info().rss

    arrivals = []
    armed = [None]

    def reader(ws):
        ws.settimeout(None)
        for raw, at in frames(ws, parse=False):  # unparsed: 10,000 readers
            if armed[0] is not None and '"queue.changed"' in raw:
                arrivals.append(at)
                return

    readers = [eventlet.spawn(reader, ws) for ws in held]
    eventlet.sleep(2)  # anything queued before (presence changes) goes by unarmed
    armed[0] = trigger = time.perf_counter()
    http.ok("POST", "/api/v1/chats", {"gender": "girl", "age": 14})
    wait_until = time.perf_counter() + 60
    while len(arrivals) < len(held) and time.perf_counter() < wait_until:
        eventlet.sleep(0.05)
    for thread in readers:
        thread.kill()
    for ws in held:
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass
    got = sorted(arrivals)
    return {
        "sockets": len(held),
        "failures": failures[0],
        "authenticated": True,
        "source_addresses": len(sources),
        "per_address": per_address,
        "open_s": round(open_s, 1),
        "kib_per_socket": round((rss_after - rss_before) / 1024 / max(1, len(held)), 1),
        "rss_mib_before": round(rss_before / 2**20, 1),
        "rss_mib_after": round(rss_after / 2**20, 1),
        "push_reached": len(got),
        "push_first_ms": _ms(got[0] - trigger) if got else None,
        "push_p50_ms": _ms(percentile([g - trigger for g in got], 50)) if got else None,
        "push_last_ms": _ms(got[-1] - trigger) if got else None,
    }


def chunks(items, size):
    it = iter(items)
    while True:
        block = list(itertools.islice(it, size))
        if not block:
            return
        yield block
