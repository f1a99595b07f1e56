"""A three-node RabbitMQ cluster of our own, for the cluster fault test.

Like tests/private_broker.py (whose PrivateBroker each node is), but the nodes
share one Erlang cookie and are joined into one cluster with
`rabbitmqctl join_cluster`. Each node has its own node name
(chatvakt-<tag>-cN@localhost), AMQP port, distribution port, data folder
(RABBITMQ_MNESIA_BASE), logs and config under the test's tmp dir; the
machine's own RabbitMQ (5672, its own node name and cookie) is never touched.
No plugins: the leader of a quorum queue is read with `rabbitmqctl
list_queues name type leader`, and a node is taken out with `stop_app` (the
Erlang VM stays up, its AMQP listener and its Raft members stop) and brought
back with `start_app`.
"""

import secrets
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.private_broker import SCRIPTS, PrivateBroker


class ClusterNode(PrivateBroker):
    def __init__(self, base, name, cookie):
        self.cookie = cookie
        super().__init__(base)
        self.name = name

    def _write_files(self):
        super()._write_files()
        cookie = self.base / "home" / ".erlang.cookie"
        cookie.chmod(0o600)
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)

    def ctl(self, *args, timeout=60, check=True):
        """`rabbitmqctl -n <this node> args...`; returns its stdout."""
        result = subprocess.run(
            [str(SCRIPTS / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name}: {result.stderr or result.stdout}")
        return result.stdout

    def stop_app(self):
        self.ctl("stop_app")
        deadline = time.monotonic() + 10
        while self.answers() and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_app(self, timeout=60):
        started = time.monotonic()
        self.ctl("start_app", timeout=timeout)
        while not self.answers() and time.monotonic() < started + timeout:
            time.sleep(0.1)
        return time.monotonic() - started


class PrivateCluster:
    def __init__(self, base=None, size=3):
        self.base = Path(base or tempfile.mkdtemp(prefix="cvcluster-"))
        tag = secrets.token_hex(3)
        cookie = secrets.token_hex(16).upper()
        self.nodes = [
            ClusterNode(self.base / f"c{i}", f"chatvakt-{tag}-c{i}@localhost", cookie) for i in range(1, size + 1)
        ]

    @property
    def amqp_uri(self):
        """Every node's URI, separated by ';' (kombu's failover list)."""
        return ";".join(node.amqp_uri for node in self.nodes)

    def start(self):
        """Boot the nodes side by side, then join the others to the first; returns seconds taken."""
        started = time.monotonic()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.start(timeout=120), self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        for node in self.nodes:
            node.ctl("await_startup", timeout=120)
        running = first.ctl("eval", "length(rabbit_nodes:all_running()).").strip()
        if running != str(len(self.nodes)):
            raise RuntimeError(f"the cluster has {running} running nodes, not {len(self.nodes)}")
        return time.monotonic() - started

    def node(self, name):
        return next(node for node in self.nodes if node.name == name)

    def queues(self, vhost="/"):
        """{queue name: (type, leader node name or '')} as the first running node sees them."""
        for node in self.nodes:
            if not node.answers():
                continue
            out = node.ctl("list_queues", "-p", vhost, "--no-table-headers", "--quiet", "name", "type", "leader")
            found = {}
            for line in out.splitlines():
                parts = line.split("\t")
                if len(parts) >= 2:
                    found[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
            return found
        raise RuntimeError("no node of the cluster answers")

    def cleanup(self):
        for node in self.nodes:
            node.stop()
        for node in self.nodes:
            node.cleanup()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()
