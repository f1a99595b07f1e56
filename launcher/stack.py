"""The local stack: every service and the gateway as separate processes.

`chatvakt run` (what `make run` calls) starts each process with `nameko run`,
restarts one that dies (as a process manager would, with back-off), waits
until the gateway says every service answers, prints where the pages are,
and on Ctrl-C or SIGTERM stops everything it started.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from chatvakt import broker, config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMEKO_CONFIG = os.path.join(ROOT, "deploy", "nameko.yaml")
MODULES = {
    "queue": "services.queue.service:QueueService",
    "chat": "services.chat.service:ChatService",
    "coding": "services.coding.service:CodingService",
    "escalation": "services.escalation.service:EscalationService",
    "gateway": "gateway.service:GatewayService",
}


def _die_with_parent():
    # If the launcher is killed outright, its children must not live on.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def service_command(name):
    # launcher.nameko is `nameko` with eventlet's deprecation warning filtered (launcher/__init__.py)
    return [sys.executable, "-m", "launcher.nameko", "run", "--config", NAMEKO_CONFIG, MODULES[name]]


def broker_reachable(uri, timeout=2.0):
    """True when one of the nodes in AMQP_URI (URIs separated by ';') answers."""
    for one in broker.uris(uri):
        parsed = urllib.parse.urlparse(one)
        try:
            with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), timeout):
                return True
        except OSError:
            continue
    return False


def ready(port, timeout=1.0):
    """(True, None) when the gateway's /readyz answers 200, else (False, why)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=timeout) as response:
            return response.status == 200, None
    except Exception as exc:  # noqa: BLE001 - not up yet
        return False, exc


READY_WARN_S = 90.0


class Process:
    def __init__(self, name, replica, env):
        self.name = name
        self.replica = replica
        self.env = env
        self.popen = None
        self.restarts = 0
        self.started_at = 0.0

    @property
    def label(self):
        return f"{self.name}-{self.replica}"

    def start(self):
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(service_command(self.name), cwd=ROOT, env=self.env, preexec_fn=_die_with_parent)

    def alive(self):
        return self.popen is not None and self.popen.poll() is None


def build_env(name, replica, port):
    env = config.inherited_environment()
    env["CHATVAKT_PROCESS"] = f"{name}-{replica}" if replica > 1 else name
    env.setdefault("AMQP_URI", config.DEFAULT_AMQP_URI)
    env["CHATVAKT_DATA"] = str(config.data_dir())
    env["PYTHONUNBUFFERED"] = "1"
    # A quiet terminal: in readable (text) form the local stack shows warnings,
    # errors and restarts only; LOG_LEVEL=INFO shows each unit of work, and
    # LOG_FORMAT=json gives the containers' JSON lines at INFO.
    if not config.log_json():
        env.setdefault("LOG_LEVEL", "WARNING")
    if name == "gateway":
        env["GATEWAY_PORT"] = str(port + replica - 1)
    # CHATVAKT_METRICS_PORTS="queue=9101,chat=9102": each local process its own
    # /metrics port (replicas count up from it). In containers METRICS_PORT is enough.
    for pair in (config.env("CHATVAKT_METRICS_PORTS") or "").split(","):
        service, _, metrics_port = pair.partition("=")
        if service.strip() == name and metrics_port.strip():
            env["METRICS_PORT"] = str(int(metrics_port) + replica - 1)
    return env


def ensure_demo_accounts():
    from sqlalchemy.orm import sessionmaker

    from chatvakt.db import setup_database
    from gateway import accounts
    from gateway.models import metadata

    engine = setup_database("gateway", metadata)
    try:
        with sessionmaker(bind=engine)() as session, session.begin():
            accounts.add_account(session, "demo-counsellor", "Cathrine Demo", "counsellor", "demo")
            accounts.add_account(session, "demo-supervisor", "Siri Demo", "supervisor", "demo")
    finally:
        engine.dispose()


def parse_replicas(value):
    """`--replicas`: "2" (every service two processes) or "chat=2,gateway=2"
    (those two, every other service one); returns {service: count}."""
    text = str(value).strip()
    if text.isdigit():
        return {name: max(1, int(text)) for name in MODULES}
    counts = {name: 1 for name in MODULES}
    for pair in text.split(","):
        name, _, count = pair.partition("=")
        name = name.strip()
        if name not in MODULES or not count.strip().isdigit():
            raise ValueError(f"--replicas: {pair!r} is not service=N (services: {', '.join(MODULES)})")
        counts[name] = max(1, int(count))
    return counts


def run(replicas=1):
    counts = parse_replicas(replicas)
    port = config.env_int("GATEWAY_PORT", 8000)
    uri = config.amqp_uri()
    if not broker_reachable(uri):
        print(
            "chatvakt: RabbitMQ does not answer at the AMQP_URI; start it "
            "(`rabbitmq-server -detached`) or install it (`apt-get install rabbitmq-server`).",
            file=sys.stderr,
        )
        return 2
    procs = [
        Process(name, replica, build_env(name, replica, port))
        for name in MODULES
        for replica in range(1, counts[name] + 1)
    ]
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Each service creates and migrates its own database at start. The
    # gateway's is made here, between the services' start and the gateway's,
    # so the demo accounts exist before anyone can log in while the services
    # load meanwhile (the accounts' hashing took a second before any started).
    for proc in procs:
        if proc.name != "gateway":
            proc.start()
    if config.env("CHATVAKT_DEMO", "1") != "0":
        ensure_demo_accounts()
    for proc in procs:
        if proc.name == "gateway":
            proc.start()

    def announce():
        gateways = counts["gateway"]
        pages = (
            "\n".join(f"  gateway {i + 1}: http://127.0.0.1:{port + i}/" for i in range(gateways))
            if gateways > 1
            else ""
        )
        print(
            f"""
chatvakt is running.
  Child's chat page:    http://127.0.0.1:{port}/
  Counsellor console:   http://127.0.0.1:{port}/console/
  API (OpenAPI):        http://127.0.0.1:{port}/api/v1/openapi.json
{pages}"""
            + (
                """  Demo accounts:        demo-counsellor / demo,  demo-supervisor / demo
"""
                if config.env("CHATVAKT_DEMO", "1") != "0"
                else ""
            )
            + """Stop with Ctrl-C.
""",
            flush=True,
        )

    # One loop from the first moment: a process that dies while the stack is
    # still starting is restarted too (the loop once began only after a 90 s
    # wait for /readyz, so a service stopped in that window stayed down for
    # the rest of it).
    started = time.monotonic()
    announced = warned = False
    last_probe = 0.0
    try:
        while not stopping:
            if not announced and time.monotonic() - last_probe >= 0.3:
                last_probe = time.monotonic()
                up, why = ready(port)
                if up:
                    announced = True
                    announce()
                elif not warned and last_probe - started > READY_WARN_S:
                    warned = True
                    print(f"chatvakt: the stack is not ready after {READY_WARN_S:.0f} s ({why})", file=sys.stderr)
            for proc in procs:
                if not proc.alive():
                    # Back off when a process keeps dying at start.
                    quick = time.monotonic() - proc.started_at < 5
                    delay = min(10.0, 0.5 * (2 ** min(proc.restarts, 5))) if quick else 0.5
                    if time.monotonic() - proc.started_at >= delay:
                        proc.restarts += 1
                        print(
                            f"chatvakt: {proc.label} exited ({proc.popen.returncode}); restarting",
                            file=sys.stderr,
                            flush=True,
                        )
                        proc.start()
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
    return 0
