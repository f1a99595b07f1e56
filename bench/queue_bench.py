"""Assignment under load: 1,000 waiting children, 50 counsellors taking at once.

Runs the queue service as `make run` does (`nameko run`, its own SQLite file
unless BENCH_QUEUE_DB_URL is given) on a vhost of its own on the shared broker,
and measures in the same run, with the same 50-way concurrency:
- `queue.take` (an assignment: the conditional UPDATEs, the outbox row, the
  chat_assigned event) from the call to its answer;
- a bare nameko RPC round trip to the same process (`queue.ping`).
50 counsellors of capacity 10 take 10 chats each, all at once; their chats are
then ended (chat_ended events, as the chat service sends them) and they take
the other 500. Prints the figures; `main()` returns them as a dict.

    python -m bench.queue_bench [AMQP_URI]
"""

import eventlet
import eventlet.event

eventlet.monkey_patch()

import logging  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from nameko.standalone.events import event_dispatcher  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

import chatvakt.errors  # noqa: E402,F401 - registers our errors for deserialisation

# py-amqp warns about late frames on channels the proxies are closing: noise.
logging.getLogger("amqp").setLevel(logging.ERROR)
from chatvakt import events as ev  # noqa: E402
from chatvakt.clock import iso, utcnow  # noqa: E402
from chatvakt.numbers import percentile  # noqa: E402
from launcher.stack import NAMEKO_CONFIG  # noqa: E402
from tests.stack import amqp_uri as vhost_uri  # noqa: E402
from tests.stack import create_vhost, delete_vhost  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHILDREN = int(os.environ.get("BENCH_QUEUE_CHILDREN", "1000"))
COUNSELLORS = int(os.environ.get("BENCH_QUEUE_COUNSELLORS", "50"))
CAPACITY = 10


def nameko_run(target):
    """The command that runs one nameko service class as `make run` does."""
    return [sys.executable, "-m", "nameko", "run", "--config", NAMEKO_CONFIG, target]


def _start_queue(uri, data, replicas, db_url):
    env = dict(
        os.environ,
        AMQP_URI=uri,
        CHATVAKT_DATA=str(data),
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
        NAMEKO_MAX_WORKERS="100",
    )
    env.pop("CHATVAKT_DB_URL", None)
    if db_url:
        env["CHATVAKT_DB_URL"] = db_url
    log = open(Path(data) / "queue.log", "ab")
    cmd = nameko_run("services.queue.service:QueueService")
    return [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT) for _ in range(replicas)]


def _wait_ping(config, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with ClusterRpcProxy(config, timeout=2) as rpc:
                rpc.queue.ping()
                return
        except Exception:  # noqa: BLE001 - not up yet
            eventlet.sleep(0.3)
    raise RuntimeError("the queue service did not answer")


def _concurrently(config, count, fn):
    """Run fn(rpc, i) in `count` green threads at once, each with its own proxy."""
    gate = eventlet.event.Event()

    def worker(i):
        with ClusterRpcProxy(config, timeout=60) as rpc:
            gate.wait()
            return fn(rpc, i)

    pool = eventlet.GreenPool(count)
    threads = [pool.spawn(worker, i) for i in range(count)]
    eventlet.sleep(1.0)  # every proxy connected before the gate opens
    gate.send()
    return [t.wait() for t in threads]


def run(amqp_uri=None, children=CHILDREN, counsellors=COUNSELLORS, replicas=1, db_url=None):
    vhost = None
    if amqp_uri is None:
        vhost = create_vhost("chatvakt_qbench")
        amqp_uri = vhost_uri(vhost)
    config = {"AMQP_URI": amqp_uri, "serializer": "json"}
    data = Path(tempfile.mkdtemp(prefix="chatvakt-qbench-"))
    procs = _start_queue(amqp_uri, data, replicas, db_url or os.environ.get("BENCH_QUEUE_DB_URL"))
    try:
        _wait_ping(config)
        started = iso(utcnow())
        chats = [f"bench{i:05d}{secrets.token_hex(3)}" for i in range(children)]
        per = max(1, counsellors)

        def enqueue(rpc, i):
            for chat_id in chats[i::per]:
                rpc.queue.enqueue(chat_id, started)

        _concurrently(config, per, enqueue)

        def presence(rpc, i):
            rpc.queue.set_presence(f"bench-c{i}", f"Rådgiver {i}", "available", CAPACITY)

        _concurrently(config, counsellors, presence)
        with ClusterRpcProxy(config) as rpc:
            waiting = len(rpc.queue.snapshot()["waiting"])
        assert waiting == children, f"{waiting} waiting, expected {children}"

        def ping(rpc, i):
            out = []
            for _ in range(max(1, children // counsellors)):
                t0 = time.perf_counter()
                rpc.queue.ping()
                out.append(time.perf_counter() - t0)
            return out

        rpc_lat = [x for xs in _concurrently(config, counsellors, ping) for x in xs]

        assign_lat, taken = [], []
        rounds = -(-children // (counsellors * CAPACITY))
        for _ in range(rounds):

            def take(rpc, i):
                out = []
                for _ in range(CAPACITY):
                    t0 = time.perf_counter()
                    got = rpc.queue.take(f"bench-c{i}", f"Rådgiver {i}")
                    elapsed = time.perf_counter() - t0
                    if got is None:
                        break
                    out.append((elapsed, got["chat_id"], f"bench-c{i}"))
                return out

            batch = [x for xs in _concurrently(config, counsellors, take) for x in xs]
            assign_lat += [x[0] for x in batch]
            taken += [x[1] for x in batch]
            # The chats end, as the chat service would say; places free up.
            dispatch = event_dispatcher(config)
            now = iso(utcnow())
            for _, chat_id, counsellor_id in batch:
                dispatch(
                    ev.CHAT,
                    ev.CHAT_ENDED,
                    ev.dump(
                        ev.CHAT,
                        ev.CHAT_ENDED,
                        {
                            "chat_id": chat_id,
                            "status": "ended",
                            "ended_by": "counsellor",
                            "started_at": started,
                            "ended_at": now,
                            "counsellor_id": counsellor_id,
                        },
                    ),
                )
            deadline = time.monotonic() + 120
            with ClusterRpcProxy(config) as rpc:
                while time.monotonic() < deadline:
                    if all(c["active_chats"] == 0 for c in rpc.queue.counsellors()):
                        break
                    eventlet.sleep(0.2)
        assert len(taken) == len(set(taken)) == children, "double or missing assignment"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if vhost:
            delete_vhost(vhost)

    def ms(v):
        return round(v * 1000, 2)

    result = {
        "children": children,
        "counsellors": counsellors,
        "assignments": len(assign_lat),
        "replicas": replicas,
        "assign_p50_ms": ms(percentile(assign_lat, 50)),
        "assign_p99_ms": ms(percentile(assign_lat, 99)),
        "rpc_p50_ms": ms(percentile(rpc_lat, 50)),
        "rpc_p99_ms": ms(percentile(rpc_lat, 99)),
    }
    result["ratio_p50"] = round(result["assign_p50_ms"] / result["rpc_p50_ms"], 2)
    result["ratio_p99"] = round(result["assign_p99_ms"] / result["rpc_p99_ms"], 2)
    return result


def report(result):
    print(
        f"queue: {result['children']} waiting, {result['counsellors']} counsellors taking at once "
        f"({result['assignments']} assignments, {result['replicas']} queue process(es))"
    )
    print(f"  assignment (queue.take)   p50 {result['assign_p50_ms']:8.2f} ms   p99 {result['assign_p99_ms']:8.2f} ms")
    print(f"  bare nameko RPC (ping)    p50 {result['rpc_p50_ms']:8.2f} ms   p99 {result['rpc_p99_ms']:8.2f} ms")
    print(
        f"  ratio                     p50 {result['ratio_p50']:8.2f} x    p99 {result['ratio_p99']:8.2f} x", flush=True
    )


def main(amqp_uri=None, **kwargs):
    result = run(amqp_uri, **kwargs)
    report(result)
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
