"""Start the real stack (as `make run` does) on a vhost of its own and a free port."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
MANAGEMENT = os.environ.get("RABBIT_MANAGEMENT", "http://127.0.0.1:15672")
RABBIT_AUTH = ("guest", "guest")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_vhost(prefix="chatvakt_test"):
    name = f"{prefix}_{secrets.token_hex(4)}"
    quoted = urllib.parse.quote(name, safe="")
    requests.put(f"{MANAGEMENT}/api/vhosts/{quoted}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(
        f"{MANAGEMENT}/api/permissions/{quoted}/guest",
        auth=RABBIT_AUTH,
        timeout=10,
        json={"configure": ".*", "write": ".*", "read": ".*"},
    ).raise_for_status()
    return name


def delete_vhost(name):
    quoted = urllib.parse.quote(name, safe="")
    requests.delete(f"{MANAGEMENT}/api/vhosts/{quoted}", auth=RABBIT_AUTH, timeout=10)


def amqp_uri(vhost):
    return f"amqp://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"


# The suite's ordinary stacks open hundreds of chats and logins from
# 127.0.0.1: they get limits no test reaches. The abuse suite passes
# real_limits=True to meet the defaults a deployment gets (README).
GENEROUS_LIMITS = {
    "CHATVAKT_CHAT_OPEN_BURST": "1000000",
    "CHATVAKT_CHAT_OPEN_PER_MIN": "1000000",
    "CHATVAKT_FLOOD_SUSPECT": "1000000",
    "CHATVAKT_LOGIN_FREE_FAILURES": "1000000",
    "CHATVAKT_LOGIN_ADDRESS_FREE_FAILURES": "1000000",
}


class Stack:
    def __init__(self, workdir, replicas=1, env=None, broker_uri=None, real_limits=False):
        self.workdir = Path(workdir)
        # A broker of the test's own (e.g. tests/private_broker.py): its "/" is
        # used as given, and no vhost is made on the shared node.
        self.broker_uri = broker_uri
        self.replicas = replicas
        self.extra_env = {} if real_limits else dict(GENEROUS_LIMITS)
        self.extra_env.update(env or {})
        self.databases = []
        template = os.environ.get("CHATVAKT_DB_URL")
        if template and "CHATVAKT_DB_URL" not in self.extra_env and "{service}" in template:
            # `CHATVAKT_DB_URL=postgresql://… make test` runs every stack on
            # PostgreSQL: each stack gets databases of its own, dropped at stop.
            tag = secrets.token_hex(3)
            self.extra_env["CHATVAKT_DB_URL"] = template.replace("{service}", f"s{tag}_{{service}}")
            from chatvakt.config import PROCESSES

            self.databases = [self.extra_env["CHATVAKT_DB_URL"].replace("{service}", name) for name in PROCESSES]
        self.vhost = None
        self.port = None
        self.proc = None
        self.log_path = self.workdir / "stack.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def amqp_uri(self):
        return self.broker_uri or amqp_uri(self.vhost)

    def start(self, timeout=120, wait=True):
        self.vhost = None if self.broker_uri else create_vhost()
        from launcher.stack import parse_replicas

        gateways = parse_replicas(self.replicas)["gateway"]  # 2, or "chat=2,gateway=2"
        self.port = free_port() if gateways == 1 else _free_port_run(gateways)
        env = dict(os.environ)
        env.update(
            {
                "AMQP_URI": self.amqp_uri,
                "GATEWAY_PORT": str(self.port),
                "CHATVAKT_DATA": str(self.workdir / "var"),
                "CHATVAKT_DEMO": "1",
                "CHATVAKT_RPC_TIMEOUT": "5",
                "PYTHONUNBUFFERED": "1",
                # Many e2e tests leave chats waiting without a socket or a poll;
                # the 60 s absence grace (issue 12) would let them go mid-test.
                # Tests of the absence rule pass their own short grace.
                "CHATVAKT_ABSENT_GRACE_S": "3600",
                # the suite reads the processes' JSON lines at INFO (as in the containers)
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                # Offered assignment is on by default (issue 13), but most e2e tests
                # take a named chat the moment it is queued, which an offer to another
                # counsellor would refuse; the tests of offers turn it on themselves.
                "CHATVAKT_AUTO_ASSIGN": "0",
            }
        )
        env.update(self.extra_env)
        env = {k: v for k, v in env.items() if v is not None}  # None: unset it
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "chatvakt"), "run", "--replicas", str(self.replicas)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the stack exited early; see {self.log_path}")
            if self.ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the stack did not become ready; see {self.log_path}")

    def add_account(self, username, name, role="counsellor", password=None):
        password = password or "pw-" + secrets.token_hex(6)
        env = dict(os.environ, CHATVAKT_DATA=str(self.workdir / "var"), AMQP_URI=self.amqp_uri)
        env.update(self.extra_env)
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "chatvakt"), "accounts", "add", username, "--name", name, "--role", role],
            input=password + "\n",
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return password

    def pids(self, name):
        """Process ids of one service's processes in this stack (never another stack's)."""
        from launcher.stack import MODULES

        module = MODULES[name]
        found = []
        for child in _children(self.proc.pid):
            try:
                cmdline = open(f"/proc/{child}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if module.encode() in cmdline:
                found.append(child)
        return found

    def ready(self):
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            time.sleep(0.2)
        return False

    def logs(self):
        return self.log_path.read_text(errors="replace")

    def error_lines(self):
        """The log's errors and tracebacks so far (each cut to 300 characters)."""
        out = []
        for line in self.logs().splitlines():
            try:
                level = json.loads(line).get("level")
            except ValueError:
                level = None
            if level in ("error", "critical") or "Traceback" in line:
                out.append(line[:300])
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.vhost:
            delete_vhost(self.vhost)
            self.vhost = None
        for url in self.databases:
            _drop_database(url)
        self.databases = []


def _free_port_run(count):
    for _ in range(50):
        base = free_port()
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no run of free ports")


def _port_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return out


def _drop_database(url):
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    from chatvakt import config

    parsed = make_url(config.db_url_from(url))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        admin.dispose()
