"""`make bench`: the whole stack under load, every figure beside its baseline.

On a Stack of its own (tests/stack.py: every process as `make run` starts
them, on a vhost of the shared broker), in one run:
- baselines on the same broker: raw pika publish -> consume (persistent,
  confirms, acks; one at a time, and at half its own maximum rate as
  bench/relay_bench.py measures it), an empty RPC on nameko as it ships
  (bench/rpc_service.py, the goal's baseline) and chatvakt's own (`chat.ping`,
  on the RPC publishing chatvakt/broker.py makes cheaper), and a
  bare websocket echo on the gateway's own server type (bench/echo_service.py);
- BENCH_RUNS (3) relay runs, each against baselines measured just before it:
  the maximum sustained relay rate (open loop, children and counsellors
  alternating, each message from the start of its POST to the push on the
  other side's socket), then p50/p99 at half of it with every process's CPU
  per relayed message; the first run also at 25 and 75 %, and a py-spy
  profile of each process at saturation;
- assignment latency (take -> chat.assigned on the child's socket);
- BENCH_MANY_SOCKETS (10,000) authenticated sockets on one gateway process
  from several loopback addresses: memory per socket, and the time one queue
  change takes to reach them all (bench/scale.py);
- the relay again with every service on PostgreSQL (BENCH_PG_URL;
  BENCH_POSTGRES=0 skips it) and with BENCH_REPLICAS (chat=2,gateway=2; 0
  skips it), with the CPU of every process.
Writes results/bench.json, results/bench.md (the README tables) and
results/bench.png. Every measured step is preceded by BENCH_WARMUP_S (2) seconds
at its rate that are not measured (bench/load.py's Cast.run), so that it
measures the steady state and not the stack waking up after the pause
between steps. Settings: BENCH_SECONDS (per rate step, default 6),
BENCH_CHATS (40), BENCH_SOCKETS (2000, the echo baseline), BENCH_RATES (a comma
list), BENCH_OTHERS=1 to run the other benches (bench/queue_bench.py,
bench/relay_bench.py) after ours. BENCH_ONLY=relay measures only the pika and
RPC baselines, the relay runs and the saturation profile (a few minutes, for
comparing a change before and after it); it writes results/bench-relay.json.
BENCH_ONLY=cpu only runs the relay at BENCH_CPU_RATE (30/s) BENCH_RUNS times
and prints every process's CPU per message: the figure least moved by other
work on the machine (BENCH_PROFILE=1: with py-spy's profile of the last run).
"""

import eventlet

eventlet.monkey_patch()

import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import urllib.parse  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402
import requests  # noqa: E402

from bench import load  # noqa: E402
from bench.queue_bench import nameko_run  # noqa: E402
from chatvakt.numbers import percentile  # noqa: E402
from tests.stack import MANAGEMENT, RABBIT_AUTH, ROOT, Stack, free_port  # noqa: E402

RESULTS = ROOT / "results"
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
CHATS = int(os.environ.get("BENCH_CHATS", "40"))
SOCKETS = int(os.environ.get("BENCH_SOCKETS", "2000"))  # the bare echo server's
MANY_SOCKETS = int(os.environ.get("BENCH_MANY_SOCKETS", "10000"))  # on one gateway process
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "50,100,150,200,250,300,400,500,650,800").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/chatvakt_bench_{service}")
REPLICAS = os.environ.get("BENCH_REPLICAS", "chat=2,gateway=2")
RELAY_ONLY = os.environ.get("BENCH_ONLY", "") == "relay"
CPU_ONLY = os.environ.get("BENCH_ONLY", "") == "cpu"
CPU_RATE = float(os.environ.get("BENCH_CPU_RATE", "30"))
# issue 16: ratios against the baselines of the same run.
GOALS = {"rate_over_rpc": 0.5, "p50_over_pika": 8.0, "p99_half_ms": 25, "sockets": 10_000, "kib_per_socket": 40}
# Limits that guard against floods from one person; a load generator is many
# people behind few tokens.
STACK_ENV = {
    "CHATVAKT_CHILD_MSGS_PER_MIN": "1000000",
    "CHATVAKT_TOKEN_RATE": "1000000",
    # one load generator on 127.0.0.1 opens thousands of chats (issue 12 limits)
    "CHATVAKT_CHAT_OPEN_BURST": "1000000",
    "CHATVAKT_CHAT_OPEN_PER_MIN": "1000000",
    "CHATVAKT_FLOOD_SUSPECT": "1000000",
    "CHATVAKT_TOKEN_BURST": "1000000",
    "CHATVAKT_WS_RATE": "1000000",
    "CHATVAKT_WS_BURST": "1000000",
    "CHATVAKT_DEMO": "0",
    # The load generator is one host: the per-address connection cap
    # (200 in a deployment) is raised for the bench stack only.
    "CHATVAKT_MAX_CONN_PER_ADDR": "100000",
}


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ms(value):
    return None if value is None else round(value * 1000, 3)


def child_process(stack, module):
    for child in psutil.Process(stack.proc.pid).children():
        try:
            if any(module in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            pass
    raise RuntimeError(f"no {module} process")


def quiet(stack, timeout=60):
    """Wait until no queue of the stack's vhost holds messages (work left from a run)."""
    vhost = urllib.parse.quote(stack.vhost, safe="")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            queues = requests.get(f"{MANAGEMENT}/api/queues/{vhost}", auth=RABBIT_AUTH, timeout=5).json()
            # Queues nobody consumes (dead letters, retries) do not count.
            if sum(q.get("messages", 0) or 0 for q in queues if q.get("consumers")) == 0:
                eventlet.sleep(0.5)
                return True
        except Exception:  # noqa: BLE001
            pass
        eventlet.sleep(0.5)
    return False


# -- baselines ---------------------------------------------------------------


def _baseline(stack, kind, env=None):
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bench.baselines", kind, stack.amqp_uri],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        env=env,
    )
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def pika_baseline(stack):
    return _baseline(stack, "pika")


def pika_half_baseline(stack):
    """Raw pika p50/p99 at half of its own maximum rate (bench/relay_bench.py's way)."""
    env = dict(
        os.environ,
        CHATVAKT_BENCH_SECONDS=os.environ.get("CHATVAKT_BENCH_SECONDS", "3"),
        CHATVAKT_BENCH_SETTLE_S=os.environ.get("CHATVAKT_BENCH_SETTLE_S", "2"),
    )
    return _baseline(stack, "pika-half", env)


def rpc_baseline(stack):
    """The empty RPC on nameko as it ships (bench/rpc_service.py), the goal's
    baseline, and chatvakt's own: `chat.ping` on the chat service, whose
    replies chatvakt/broker.py makes transient and unconfirmed."""
    proc = subprocess.Popen(
        nameko_run("bench.rpc_service:RpcBaseline"),
        cwd=ROOT,
        env=dict(os.environ, AMQP_URI=stack.amqp_uri, LOG_LEVEL="WARNING", PYTHONWARNINGS="ignore"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stock = _rpc_rate(stack, "bench_rpc", wait=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {**stock, "ours": _rpc_rate(stack, "chat")}


def _rpc_rate(stack, service, count=500, seconds=3.0, concurrency=20, wait=0):
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}) as cluster:
        deadline = time.monotonic() + wait
        while True:
            try:
                getattr(cluster, service).ping()
                break
            except Exception:  # noqa: BLE001 - UnknownService until the process is up
                if time.monotonic() > deadline:
                    raise
                eventlet.sleep(0.2)
        for _ in range(20):
            getattr(cluster, service).ping()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            getattr(cluster, service).ping()
            times.append(time.perf_counter() - started)
        done = [0]
        ready = [0]
        go = eventlet.event.Event()
        window = {}

        def worker():
            # A standalone proxy is not safe to share between green threads:
            # each worker has its own, as each gateway worker has its own call.
            with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}) as own:
                getattr(own, service).ping()
                ready[0] += 1
                if ready[0] == concurrency:
                    window["started"] = time.perf_counter()
                    window["stop"] = window["started"] + seconds
                    go.send()
                go.wait()
                while time.perf_counter() < window["stop"]:
                    getattr(own, service).ping()
                    done[0] += 1

        pool = eventlet.GreenPool(concurrency)
        for _ in range(concurrency):
            pool.spawn_n(worker)
        pool.waitall()
        # Timed from when every worker's proxy is connected: until 2026-12-06
        # 15:50 the window also held the 20 proxies' connections and reply
        # queues being made, which no relay run pays (its clients are up).
        rate = done[0] / (time.perf_counter() - window["started"])
    return {
        "service": service,
        "count": count,
        "p50_ms": ms(percentile(times, 50)),
        "p99_ms": ms(percentile(times, 99)),
        "p999_ms": ms(percentile(times, 99.9)),
        "rate_per_s": round(rate, 1),
    }


def start_echo(stack):
    port = free_port()
    env = dict(
        os.environ,
        AMQP_URI=stack.amqp_uri,
        GATEWAY_PORT=str(port),
        LOG_LEVEL="WARNING",
        PYTHONWARNINGS="ignore",
        **STACK_ENV,
    )
    proc = subprocess.Popen(
        nameko_run("bench.echo_service:EchoService"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            load.echo_rtt(url, count=1)
            return proc, url
        except Exception:  # noqa: BLE001 - not up yet
            eventlet.sleep(0.2)
    proc.kill()
    raise RuntimeError("the echo service did not start")


def echo_baseline(url, proc, count=1000, sockets=SOCKETS):
    times = load.echo_rtt(url, count=count)
    rss = psutil.Process(proc.pid).memory_info().rss
    held, failures = load.hold_sockets(url, [], sockets, auth=False)
    eventlet.sleep(1)
    after = psutil.Process(proc.pid).memory_info().rss
    answers = load.echo_rtt(url, count=20)  # still answers with them all open
    load.close_all(held)
    return {
        "p50_ms": ms(percentile(times, 50)),
        "p99_ms": ms(percentile(times, 99)),
        "p999_ms": ms(percentile(times, 99.9)),
        "sockets": len(held),
        "socket_failures": failures,
        "kib_per_socket": round((after - rss) / 1024 / max(1, len(held)), 1),
        "rss_mib_before": round(rss / 2**20, 1),
        "rss_mib_after": round(after / 2**20, 1),
        "echo_p50_ms_while_held": ms(percentile(answers, 50)),
    }


# -- the relay ---------------------------------------------------------------


def sustained(step):
    return (
        step["failed"] == 0
        and step.get("warmup_failed", 0) == 0
        and step["lost"] == 0
        and step["generator_behind"] <= step["sent"] * 0.01
        and step["achieved_rate"] >= 0.95 * step["offered_rate"]
        and step["p99_ms"] is not None
        and step["p99_ms"] < 1000
    )


def rate_search(stack, cast):
    steps = []

    def probe(rate):
        quiet(stack)
        step = cast.run(rate, SECONDS)
        step["sustained"] = sustained(step)
        steps.append(step)
        log(
            f"rate {rate}/s: relayed {step['achieved_rate']}/s, p99 {step['p99_ms']} ms, "
            f"refused or failed {step['failed']}, lost (201, never pushed) {step['lost']} "
            f"-> {'ok' if step['sustained'] else 'NOT sustained'}"
        )
        return step["sustained"]

    best, failed_at = None, None
    for rate in RATES:
        if probe(rate):
            best = rate
        else:
            failed_at = rate
            break
    if best and failed_at:
        for _ in range(2):
            mid = int((best + failed_at) / 2)
            if failed_at - best < max(20, best * 0.1):
                break
            if probe(mid):
                best = mid
            else:
                failed_at = mid
    return best or 0, failed_at, steps


def profile(processes, seconds, out):
    """py-spy on each process meanwhile; returns the running recorders."""
    spy = Path(sys.executable).parent / "py-spy"
    recorders = {}
    for name, proc in processes.items():
        path = out / f"profile-{name}.txt"
        recorders[name] = (
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "-p",
                    str(proc.pid),
                    "-d",
                    str(int(seconds)),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(path),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            path,
        )
    return recorders


def summarise_profile(path, top=12):
    """Self time by function, and inclusive time of our own code, from py-spy's raw stacks."""
    own, inclusive, layers, total = {}, {}, {}, 0
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        total += count
        frames = stack.split(";")
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        leaf = _short(frames[-1])
        own[leaf] = own.get(leaf, 0) + count
        layer = _layer(frames)
        layers[layer] = layers.get(layer, 0) + count
        seen = set()
        for frame in frames:
            short = _short(frame)
            if short in seen:
                continue
            seen.add(short)
            if any(part in frame for part in ("(chatvakt/", "(gateway/", "(services/")):
                inclusive[short] = inclusive.get(short, 0) + count

    def table(counts):
        return [
            {"where": k, "share": round(v / total, 3)} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        ]

    idle = sum(
        v for k, v in own.items() if any(w in k for w in ("epoll", "select", "wait (", "poll (", "sleep (", "switch ("))
    )
    return {
        "samples": total,
        "idle_share": round(idle / total, 3) if total else None,
        "layers": table(layers),
        "self": table(own),
        "our_code_inclusive": table(inclusive),
    }


LAYERS = (
    ("logging", ("logging/", "chatvakt/logs.py")),
    ("metrics", ("prometheus_client/",)),
    ("database", ("sqlalchemy/", "sqlite3/", "pg8000/")),
    ("json", ("json/",)),
    ("amqp", ("kombu/", "amqp/")),
    ("websocket", ("eventlet/websocket.py",)),
    ("http", ("eventlet/wsgi.py", "werkzeug/", "http/")),
    ("eventlet hub and socket i/o", ("eventlet/", "greenlet")),
    ("nameko", ("nameko/",)),
    ("marshmallow", ("marshmallow/",)),
    ("our code", ("chatvakt/", "gateway/", "services/")),
)


def _layer(frames):
    """The layer a sample was spent in: the innermost frame that belongs to a known one."""
    for frame in reversed(frames):
        where = frame.rpartition(" (")[2]
        for name, prefixes in LAYERS:
            if where.startswith(prefixes):
                return name
    return "other"


def _short(frame):
    # "function (path/to/file.py:123)" -> "function (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit("/", 1)[-1].split(":")[0]
    folder = where.rsplit("/", 2)[-2] if where.count("/") >= 2 else ""
    return f"{name} ({folder}/{file})" if folder else f"{name} ({file})"


def stack_processes(stack):
    return {
        "gateway": child_process(stack, "gateway.service"),
        "chat": child_process(stack, "services.chat.service"),
        "escalation": child_process(stack, "services.escalation.service"),
        "queue": child_process(stack, "services.queue.service"),
    }


def measured_run(stack, cast, rate, seconds):
    """One open-loop run, with the CPU each process used meanwhile (1.0 = one core)."""
    processes = stack_processes(stack)
    mark: dict = {}

    def measuring():  # the measured part begins (after Cast.run's warm-up)
        mark["cpu"] = {n: sum(p.cpu_times()[:2]) for n, p in processes.items()}
        mark["wall"] = time.perf_counter()

    step = cast.run(rate, seconds, measuring=measuring)
    wall = time.perf_counter() - mark["wall"]
    used = {n: sum(p.cpu_times()[:2]) - mark["cpu"][n] for n, p in processes.items()}
    step["cpu_share"] = {n: round(v / wall, 2) for n, v in used.items()}
    # What one relayed message costs each process, whatever else the machine is doing.
    step["cpu_ms_per_message"] = {n: round(v * 1000 / max(1, step["relayed"]), 2) for n, v in used.items()}
    return step


def latencies(stack, cast, best):
    levels = {}
    for share in (25, 50, 75):
        rate = max(1, round(best * share / 100))
        quiet(stack)
        step = measured_run(stack, cast, rate, max(SECONDS * 1.5, 60 / rate if rate < 10 else 0))
        levels[share] = step
        log(
            f"{share}% = {rate}/s: p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, "
            f"p99.9 {step['p999_ms']} ms, cpu {step['cpu_share']}"
        )
    return levels


def saturation_profile(stack, cast, rate, out):
    """py-spy on the gateway, chat, escalation and queue processes while the relay is saturated."""
    quiet(stack)
    processes = stack_processes(stack)
    recorders = profile(processes, SECONDS, out)
    step = measured_run(stack, cast, rate, SECONDS)
    log(
        f"profiled at {rate}/s (saturation): relayed {step['achieved_rate']}/s, cpu {step['cpu_share']}, "
        f"cpu ms per message {step['cpu_ms_per_message']}"
    )
    profiles = {"rate": rate, "cpu_share": step["cpu_share"], "cpu_ms_per_message": step["cpu_ms_per_message"]}
    for name, (proc, path) in recorders.items():
        try:
            proc.wait(timeout=SECONDS + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
        profiles[name] = summarise_profile(path)
    return profiles


def sockets(stack, http, count=SOCKETS):
    tokens = [http.ok("POST", "/api/v1/chats", {"gender": "other"})["token"] for _ in range(max(1, count // 20))]
    gateway = child_process(stack, "gateway.service")
    eventlet.sleep(1)
    rss = gateway.memory_info().rss
    held, failures = load.hold_sockets(stack.url, tokens, count)
    eventlet.sleep(1)
    after = gateway.memory_info().rss
    # With every socket open, the gateway still answers.
    started = time.perf_counter()
    ready = requests.get(stack.url + "/readyz", timeout=30).status_code
    answer_s = time.perf_counter() - started
    load.close_all(held)
    return {
        "sockets": len(held),
        "failures": failures,
        "authenticated": True,
        "kib_per_socket": round((after - rss) / 1024 / max(1, len(held)), 1),
        "rss_mib_before": round(rss / 2**20, 1),
        "rss_mib_after": round(after / 2**20, 1),
        "readyz_while_held": ready,
        "readyz_ms_while_held": round(answer_s * 1000, 1),
    }


def slow_seconds(step):
    """Where a run's slow messages were sent (all, and those whose POST was
    already slow), and when a process that only slept beside it woke late."""
    return (
        f"over 25 ms by second of the run {step['slow_by_second']} (POST to 201 {step['slow_answer_by_second']}); "
        f"a process that only sleeps woke over 25 ms late (ms, by second) {step['machine_late_by_second']}"
    )


def relay_pass(stack, cast, label, levels=(50,)):
    """One relay measurement: the sustained rate, then the given load levels
    with every process's CPU per message."""
    from bench import scale

    best, failed_at, steps = rate_search(stack, cast)
    out = {"label": label, "max_rate": best, "failed_at": failed_at, "search": steps, "levels": {}}
    # The search ended past saturation: let the backlog (the risk screen's) clear first.
    quiet(stack)
    eventlet.sleep(3)
    for share in levels:
        rate = max(1, round(best * share / 100))
        quiet(stack)
        step = scale.cpu_run(stack, cast, rate, SECONDS * 1.5)
        out["levels"][share] = step
        log(
            f"[{label}] {share}% = {rate}/s: p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms "
            f"(POST to 201: p50 {step['answer_p50_ms']}, p99 {step['answer_p99_ms']} ms), "
            f"cpu ms per message {step['cpu_ms_per_message_per_process']} "
            f"(total {step['cpu_ms_per_message_total']}); {slow_seconds(step)}"
        )
    return out


def other_stack(r, label, kind):
    """The relay on a stack of its own: every service on PostgreSQL, or two chat
    and two gateway processes. Baselines again on the same broker first."""
    workdir = Path(tempfile.mkdtemp(prefix=f"chatvakt-bench-{kind}-"))
    env = dict(STACK_ENV)
    saved = os.environ.get("CHATVAKT_DB_URL")
    replicas = 1
    if kind == "postgres":
        # tests/stack.py gives the stack databases of its own and drops them at stop.
        os.environ["CHATVAKT_DB_URL"] = PG_URL
    else:
        replicas = REPLICAS
    log(f"[{label}] starting a stack in {workdir}")
    try:
        stack = Stack(workdir, replicas=replicas, env=env).start()
    finally:
        if saved is None:
            os.environ.pop("CHATVAKT_DB_URL", None)
        else:
            os.environ["CHATVAKT_DB_URL"] = saved
    try:
        http = load.Http(stack.url)
        from launcher.stack import parse_replicas

        gateways = parse_replicas(replicas)["gateway"]
        urls = [f"http://127.0.0.1:{stack.port + i}" for i in range(gateways)]
        pika, rpc, pika_half = pika_baseline(stack), rpc_baseline(stack), pika_half_baseline(stack)
        log(f"[{label}] baselines: pika {pika}, rpc {rpc}, pika at half rate {pika_half}")
        cast = load.Cast(stack, http, chats=CHATS, urls=urls)
        cast.run(20, 2, warmup=0)
        run = relay_pass(stack, cast, label)
        cast.close()
        row = run_row(run, pika, rpc, pika_half)
        row["processes"] = sorted(run["levels"][50].get("cpu_ms_per_message_per_process", {}))
        r["runs_table"].append(row)
        log(f"[{label}] {row}")
        return {"run": run, "row": row, "baselines": {"pika": pika, "rpc": rpc, "pika_half": pika_half}}
    finally:
        stack.stop()


def run_row(run, pika, rpc, pika_half=None):
    half = run["levels"].get(50, {})
    pika_half = pika_half or {}
    return {
        "pika_half_p50_ms": pika_half.get("p50_ms"),
        "p50_over_pika_half": ratio(half.get("p50_ms"), pika_half.get("p50_ms")),
        "label": run["label"],
        "max_rate": run["max_rate"],
        "rpc_rate": rpc["rate_per_s"],
        "rate_over_rpc": ratio(run["max_rate"], rpc["rate_per_s"]),
        "our_rpc_rate": (rpc.get("ours") or {}).get("rate_per_s"),
        "rate_over_our_rpc": ratio(run["max_rate"], (rpc.get("ours") or {}).get("rate_per_s")),
        "rate_over_pika": ratio(run["max_rate"], pika["rate_per_s"]),
        "p50_half_ms": half.get("p50_ms"),
        "pika_p50_ms": pika["p50_ms"],
        "p50_over_pika": ratio(half.get("p50_ms"), pika["p50_ms"]),
        "rpc_p50_ms": rpc["p50_ms"],
        "p50_over_rpc": ratio(half.get("p50_ms"), rpc["p50_ms"]),
        "p99_half_ms": half.get("p99_ms"),
        "cpu_ms_per_message": half.get("cpu_ms_per_message_per_process"),
        "cpu_ms_total": half.get("cpu_ms_per_message_total"),
    }


def render_runs(r):
    lines = [
        "| run | max sustained relay (msg/s) | empty RPC, nameko as it ships (calls/s) | ratio (goal >= 0.5) | "
        "chatvakt's own empty RPC, chat.ping (calls/s) | ratio | "
        "p50 at half load (ms) | raw pika p50 at half its max rate (ms) | ratio (goal <= 8) | "
        "raw pika one-at-a-time round trip p50 (ms) | ratio | "
        "p99 at half load (ms, goal <= 25) | CPU ms per message at half load, per process |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in r.get("runs_table", []):
        cpu = ", ".join(f"{k} {v}" for k, v in (row["cpu_ms_per_message"] or {}).items())
        lines.append(
            f"| {row['label']} | {row['max_rate']} | {row['rpc_rate']} | {row['rate_over_rpc']} | "
            f"{row.get('our_rpc_rate')} | {row.get('rate_over_our_rpc')} | "
            f"{row['p50_half_ms']} | {row['pika_half_p50_ms']} | {row['p50_over_pika_half']} | "
            f"{row['pika_p50_ms']} | {row['p50_over_pika']} | "
            f"{row['p99_half_ms']} | {cpu} (total {row['cpu_ms_total']}) |"
        )
    many = r.get("many_sockets")
    if many:
        lines += [
            "",
            "| sockets on one gateway process | failed | RSS per socket (KiB, goal <= 40) | "
            "bare echo server (KiB) | queue change pushed: first / p50 / last arrival (ms) | reached |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {many['sockets']} from {many['source_addresses']} loopback addresses | {many['failures']} | "
            f"{many['kib_per_socket']} | {r['baselines']['ws_echo']['kib_per_socket']} | "
            f"{many['push_first_ms']} / {many['push_p50_ms']} / {many['push_last_ms']} | "
            f"{many['push_reached']} |",
        ]
    return "\n".join(lines)


# -- report ------------------------------------------------------------------


def ratio(a, b):
    return None if not a or not b else round(a / b, 2)


def rows(r):
    # Run 1 against the baselines measured just before it, as in the runs' table.
    first = r.get("relay_baselines") or r["baselines"]
    pika, rpc, echo = first["pika"], first["rpc"], r["baselines"]["ws_echo"]
    out = [
        (
            "max sustained relay rate (msg/s)",
            r["relay"]["max_rate"],
            "pika publish->consume (msg/s)",
            pika["rate_per_s"],
        ),
        (
            "max sustained relay rate (msg/s)",
            r["relay"]["max_rate"],
            "empty RPC, nameko as it ships (calls/s)",
            rpc["rate_per_s"],
        ),
    ]
    for share, step in r["relay"]["levels"].items():
        for q, key in (("p50", "p50_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms")):
            floor = sum(x[key] or 0 for x in (pika, rpc, echo))
            out.append(
                (
                    f"relay {q} at {share}% = {step['offered_rate']}/s (ms)",
                    step[key],
                    f"floor {q}: pika + RPC + ws echo (ms)",
                    round(floor, 2),
                )
            )
    a = r["assignment"]
    for q, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
        floor = sum(x[key] or 0 for x in (pika, rpc, echo))
        out.append(
            (
                f"assignment {q}: take -> chat.assigned (ms)",
                a[key],
                f"floor {q}: pika + RPC + ws echo (ms)",
                round(floor, 2),
            )
        )
    s = r["sockets"]
    out.append(("sockets held by one gateway process", s["sockets"], "bare echo server", echo["sockets"]))
    out.append(("memory per socket (KiB)", s["kib_per_socket"], "bare echo server (KiB)", echo["kib_per_socket"]))
    return [(name, value, base, bval, ratio(value, bval)) for name, value, base, bval in out]


def goals(r):
    rows = r.get("runs_table", [])
    many = r.get("many_sockets") or {}
    out = []
    for row in rows:
        out.append(
            (
                f"{row['label']}: relay rate >= 0.5 of an empty RPC's",
                row["rate_over_rpc"],
                (row["rate_over_rpc"] or 0) >= GOALS["rate_over_rpc"],
            )
        )
        out.append(
            (
                f"{row['label']}: p50 at half load <= 8 x raw pika's (at half its rate)",
                row["p50_over_pika_half"],
                row["p50_over_pika_half"] is not None and row["p50_over_pika_half"] <= GOALS["p50_over_pika"],
            )
        )
        out.append(
            (
                f"{row['label']}: p99 at half load <= 25 ms",
                row["p99_half_ms"],
                row["p99_half_ms"] is not None and row["p99_half_ms"] <= GOALS["p99_half_ms"],
            )
        )
    out.append(("10,000 sockets on one gateway", many.get("sockets"), (many.get("sockets") or 0) >= GOALS["sockets"]))
    out.append(
        (
            "<= 40 KiB per socket",
            many.get("kib_per_socket"),
            many.get("kib_per_socket") is not None and many["kib_per_socket"] <= GOALS["kib_per_socket"],
        )
    )
    return out


def render(r):
    lines = ["| figure | value | baseline | baseline value | ratio |", "| --- | ---: | --- | ---: | ---: |"]
    for name, value, base, bval, rat in rows(r):
        lines.append(f"| {name} | {value} | {base} | {bval} | {rat if rat is not None else '-'} |")
    lines += ["", render_runs(r)]
    lines += ["", "| goal | reached | met |", "| --- | ---: | :---: |"]
    for name, value, met in goals(r):
        lines.append(f"| {name} | {value} | {'yes' if met else 'no'} |")
    lines += [
        "",
        f"Measured by `make bench` on {r['machine']['cpus']} CPUs ({r['machine']['cpu']}), "
        f"{r['finished_at']}, in {r['seconds']} s; load average before/after "
        f"{r['machine']['load_average_before'][0]}/{r['machine']['load_average_after'][0]}.",
    ]
    return "\n".join(lines)


def plot(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    steps = r["relay"]["search"]
    ax = axes[0][0]
    ax.plot([s["offered_rate"] for s in steps], [s["achieved_rate"] for s in steps], "o-", label="relayed")
    ax.plot([s["offered_rate"] for s in steps], [s["offered_rate"] for s in steps], ":", color="grey", label="offered")
    ax.axhline(r["baselines"]["pika"]["rate_per_s"], color="tab:green", ls="--", label="pika baseline")
    ax.axhline(
        GOALS["rate_over_rpc"] * r["baselines"]["rpc"]["rate_per_s"],
        color="tab:red",
        ls=":",
        label="goal (0.5 x empty RPC)",
    )
    ax.set(title="Relay rate search", xlabel="offered msg/s", ylabel="msg/s")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    levels = r["relay"]["levels"]
    labels = [f"{k}% ({v['offered_rate']}/s)" for k, v in levels.items()]
    for i, (q, key) in enumerate((("p50", "p50_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms"))):
        ax.bar([x + i * 0.27 for x in range(len(labels))], [v[key] or 0 for v in levels.values()], width=0.27, label=q)
    floor = sum((r["baselines"][b]["p99_ms"] or 0) for b in ("pika", "rpc", "ws_echo"))
    ax.axhline(floor, color="tab:green", ls="--", label="floor p99 (pika+RPC+echo)")
    ax.axhline(GOALS["p99_half_ms"], color="tab:red", ls=":", label="goal p99 at 50% (25 ms)")
    ax.set_xticks([x + 0.27 for x in range(len(labels))], labels)
    ax.set(title="Relay latency", ylabel="ms")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    ax.bar(
        ["gateway", "bare echo"],
        [r["sockets"]["kib_per_socket"], r["baselines"]["ws_echo"]["kib_per_socket"]],
        color=["tab:blue", "tab:green"],
    )
    ax.axhline(GOALS["kib_per_socket"], color="tab:red", ls=":", label="goal")
    ax.set(title=f"Memory per socket ({r['sockets']['sockets']} sockets)", ylabel="KiB")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    prof = (r.get("profile") or {}).get("chat") or {}
    entries = prof.get("self", [])[:10]
    ax.barh([e["where"][:60] for e in entries][::-1], [e["share"] for e in entries][::-1])
    ax.set(title="Chat service at saturation: self time by function (py-spy)", xlabel="share of samples")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def print_report(r):
    print("\n" + render(r))
    print_profiles(r)


def print_profiles(r):
    profiles = r.get("profile") or {}
    if profiles:
        print(
            f"\nAt saturation ({profiles.get('rate')}/s) each process used this share of a core: "
            f"{profiles.get('cpu_share')}; CPU ms per relayed message: {profiles.get('cpu_ms_per_message')}"
        )
    for name, prof in profiles.items():
        if not isinstance(prof, dict) or "samples" not in prof:
            continue
        print(
            f"\nWhere the time goes in {name} at saturation (py-spy, {prof['samples']} samples, "
            f"idle {prof['idle_share']}):"
        )
        for entry in prof["layers"][:8]:
            print(f"  {entry['share']:6.1%}  layer {entry['where']}")
        for entry in prof["our_code_inclusive"][:8]:
            print(f"  {entry['share']:6.1%}  incl. {entry['where']}")
        for entry in prof["self"][:8]:
            print(f"  {entry['share']:6.1%}  self  {entry['where']}")


def others():
    """Other benches (queue, relay) add their own figures when present."""
    found = {}
    for module in ("bench.queue_bench", "bench.relay_bench"):
        try:
            mod = __import__(module, fromlist=["main"])
        except ImportError:
            continue
        if not hasattr(mod, "main"):
            continue
        log(f"running {module}.main()")
        try:
            found[module] = mod.main()
        except Exception:  # noqa: BLE001 - theirs must not lose ours
            traceback.print_exc()
            found[module] = {"error": "failed; see the output above"}
    return found


def cpu_only(stack, http):
    """BENCH_ONLY=cpu: CPU per relayed message of every process, at one rate."""
    from bench import scale

    cast = load.Cast(stack, http, chats=CHATS)
    cast.run(20, 2, warmup=0)  # warm up
    steps = []
    for n in range(1, RUNS + 1):
        quiet(stack)
        # BENCH_PROFILE=1: py-spy on every process during the last run.
        spying = (
            profile(stack_processes(stack), SECONDS, RESULTS)
            if n == RUNS and os.environ.get("BENCH_PROFILE") == "1"
            else {}
        )
        step = scale.cpu_run(stack, cast, CPU_RATE, SECONDS)
        steps.append(step)
        for name, (proc, path) in spying.items():
            proc.wait(timeout=SECONDS + 30)
            print_profiles({"profile": {name: summarise_profile(path)}})
        log(
            f"cpu run {n} at {CPU_RATE}/s: relayed {step['relayed']}/{step['sent']}, p50 {step['p50_ms']} ms, "
            f"p99 {step['p99_ms']} ms (POST to 201: p50 {step['answer_p50_ms']}, p99 {step['answer_p99_ms']} ms), "
            f"cpu ms per message {step['cpu_ms_per_message_per_process']} "
            f"(total {step['cpu_ms_per_message_total']}; outside the stack "
            f"{step['cpu_ms_per_message_outside']}); load average {os.getloadavg()[0]:.1f}; "
            f"{slow_seconds(step)}"
        )
    cast.close()
    return steps


def relay_report(r, started):
    """BENCH_ONLY=relay: the runs' table, the goals they reach and the profiles."""
    r["seconds"] = round(time.monotonic() - started)
    r["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    (RESULTS / "bench-relay.json").write_text(json.dumps(r, indent=2, default=str))
    print("\n" + render_runs(r))
    for name, value, met in goals(r)[:-2]:  # the last two are the sockets'
        print(f"  {'met' if met else 'NOT met'}: {name}: {value}")
    print_profiles(r)
    print(
        f"\nWrote {RESULTS / 'bench-relay.json'}; load average before/after "
        f"{r['machine']['load_average_before'][0]}/{r['machine']['load_average_after'][0]}."
    )
    return r


def main():
    started = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    RESULTS.mkdir(exist_ok=True)
    r = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            # Other work on the machine skews every figure: say how much there was.
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {"seconds_per_step": SECONDS, "chats": CHATS, "rates": RATES},
    }
    workdir = Path(tempfile.mkdtemp(prefix="chatvakt-bench-"))
    log(f"starting the stack in {workdir}")
    stack = Stack(workdir, env=STACK_ENV).start()
    echo_proc = None
    try:
        http = load.Http(stack.url)
        if CPU_ONLY:
            return cpu_only(stack, http)
        log("baseline: raw pika publish -> consume")
        r["baselines"] = {"pika": pika_baseline(stack)}
        log(f"  {r['baselines']['pika']}")
        log("baseline: empty RPC, nameko as it ships (bench_rpc.ping), and chatvakt's (chat.ping)")
        r["baselines"]["rpc"] = rpc_baseline(stack)
        log(f"  {r['baselines']['rpc']}")
        if not RELAY_ONLY:
            log("baseline: bare websocket echo on the gateway's server type")
            echo_proc, echo_url = start_echo(stack)
            r["baselines"]["ws_echo"] = echo_baseline(echo_url, echo_proc)
            log(f"  {r['baselines']['ws_echo']}")
            echo_proc.terminate()
        log(f"opening {CHATS} chats")
        cast = load.Cast(stack, http, chats=CHATS)
        cast.run(20, 2, warmup=0)  # warm up
        r["runs"], r["runs_table"] = [], []
        for n in range(1, RUNS + 1):
            if n > 1:
                # Each run against baselines measured just before it.
                r["baselines"]["pika"] = pika_baseline(stack)
                r["baselines"]["rpc"] = rpc_baseline(stack)
                log(f"  baselines again: pika {r['baselines']['pika']}, rpc {r['baselines']['rpc']}")
            r["baselines"]["pika_half"] = pika_half_baseline(stack)
            log(f"  raw pika at half its max rate: {r['baselines']['pika_half']}")
            run = relay_pass(stack, cast, f"SQLite run {n}", levels=(25, 50, 75) if n == 1 else (50,))
            r["runs"].append(run)
            row = run_row(run, r["baselines"]["pika"], r["baselines"]["rpc"], r["baselines"]["pika_half"])
            r["runs_table"].append(row)
            log(f"RUN {n}: {row}")
            if n == 1:
                r["relay"] = run
                r["relay_baselines"] = {"pika": r["baselines"]["pika"], "rpc": r["baselines"]["rpc"]}
                r["profile"] = saturation_profile(
                    stack, cast, run["failed_at"] or int(run["max_rate"] * 1.2) or 20, RESULTS
                )
        cast.close()
        if RELAY_ONLY:
            return relay_report(r, started)
        quiet(stack)
        log("assignment latency")
        r["assignment"] = load.assignment(stack, http)
        log(f"  {r['assignment']}")
        log(f"holding {MANY_SOCKETS} authenticated sockets on one gateway process")
        from bench import scale

        r["many_sockets"] = r["sockets"] = scale.many_sockets(
            stack, http, child_process(stack, "gateway.service"), count=MANY_SOCKETS
        )
        log(f"  {r['many_sockets']}")
    finally:
        if echo_proc is not None and echo_proc.poll() is None:
            echo_proc.kill()
        stack.stop()
    for label, kind in (("PostgreSQL", "postgres"), (f"SQLite, replicas {REPLICAS}", "replicas")):
        if os.environ.get(f"BENCH_{kind.upper()}", "1") == "0":
            continue
        try:
            r[kind] = other_stack(r, label, kind)
        except Exception:  # noqa: BLE001 - one stack's trouble must not lose the others' figures
            traceback.print_exc()
    r["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    r["seconds"] = round(time.monotonic() - started)
    r["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    r["goals"] = [{"goal": g, "reached": v, "met": m} for g, v, m in goals(r)]
    (RESULTS / "bench.json").write_text(json.dumps(r, indent=2, default=str))
    (RESULTS / "bench.md").write_text(render(r) + "\n")
    plot(r, RESULTS / "bench.png")
    print_report(r)
    print(f"\nWrote {RESULTS / 'bench.json'}, {RESULTS / 'bench.md'} and {RESULTS / 'bench.png'}.")
    # The older queue and relay benches add minutes: BENCH_OTHERS=1 runs them too.
    extra = others() if os.environ.get("BENCH_OTHERS", "0") != "0" else {}
    if extra:
        r["others"] = extra
        (RESULTS / "bench.json").write_text(json.dumps(r, indent=2, default=str))
    return r


if __name__ == "__main__":
    main()
