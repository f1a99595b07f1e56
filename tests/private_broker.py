"""A RabbitMQ node of our own, for tests that stop and start the broker.

The shared broker on 5672 serves every other test and must never be
restarted; a fault test that restarts "the broker" starts this node instead,
from the same Debian binaries, with its own node name, ports, data, logs and
Erlang cookie under a temporary folder, and no plugins (no management
listener to collide with the shared one). Its data survives stop/start, as a
real broker's does, so durable queues and persistent messages come back.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SCRIPTS = Path("/usr/lib/rabbitmq/bin")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def available():
    return (SCRIPTS / "rabbitmq-server").exists()


class PrivateBroker:
    def __init__(self, base=None):
        self.base = Path(base or tempfile.mkdtemp(prefix="cvbroker-"))
        self.name = f"cvfault-{secrets.token_hex(3)}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.proc = None
        self._write_files()

    @property
    def amqp_uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _write_files(self):
        (self.base / "mnesia").mkdir(parents=True, exist_ok=True)
        (self.base / "log").mkdir(exist_ok=True)
        (self.base / "home").mkdir(exist_ok=True)
        cookie = self.base / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            # A test restarts the node in seconds; let it not wait on disk alarms.
            "disk_free_limit.absolute = 50MB\n"
        )

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            {
                "HOME": str(self.base / "home"),
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"),
                "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
            }
        )
        return env

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
        except OSError:
            return False

    def start(self, timeout=60):
        """Start the node and wait until AMQP answers; returns seconds taken."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(SCRIPTS / "rabbitmq-server")],
            env=self.env(),
            cwd=str(self.base),
            stdout=open(self.base / "server.out", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the private RabbitMQ exited; see {self.base / 'log'}")
            if self.answers():
                return time.monotonic() - started
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the private RabbitMQ did not start in {timeout} s")

    def stop(self, kill=False, timeout=30):
        """Stop the node (SIGTERM: a clean shutdown; kill=True: SIGKILL, a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 10
        while self.answers() and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self, down_for=0.0, kill=False):
        self.stop(kill=kill)
        if down_for:
            time.sleep(down_for)
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()
