"""A three-node RabbitMQ cluster loses the node that leads the chat's queues
mid-stream, and later gets it back: nothing lost, nothing doubled.

The cluster is tests/private_cluster.py (three nodes of our own on this
machine, joined with `rabbitmqctl join_cluster`). chatvakt runs on it with
AMQP_URI listing the three nodes (kombu failover) and
CHATVAKT_QUEUE_TYPE=quorum (chatvakt/broker.py), so rpc-chat and every
SERVICE_POOL event queue are quorum queues. Children and a counsellor chat
through the gateway the whole time (tests/faults/ledger.py); the node that
leads rpc-chat is stopped (`rabbitmqctl stop_app`), and started again a
while later. Every process starts on the first URI and its queues are
declared there, so the leader is also the node every process is connected
to: the stop drops every connection at once, and each process fails over.
"""

import os
import time

import eventlet
import pytest

from tests.faults.test_faults import RELAY_BACK_S, Traffic, booted, check, stack_on, wait_ready
from tests.private_broker import available
from tests.private_cluster import PrivateCluster

pytestmark = [
    pytest.mark.faults,
    pytest.mark.e2e,
    pytest.mark.skipif(not available(), reason="rabbitmq-server is not installed"),
]

CHATS = int(os.environ.get("CHATVAKT_CLUSTER_CHATS", "2"))
DOWN_S = float(os.environ.get("CHATVAKT_CLUSTER_DOWN_S", "15"))
# stop: `rabbitmqctl stop_app` then `start_app`; kill: SIGKILL of the node's VM, then a new boot.
FAULT = os.environ.get("CHATVAKT_CLUSTER_FAULT", "stop")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from booted(PrivateCluster(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory, cluster):
    yield from stack_on(tmp_path_factory.mktemp("clusterstack"), cluster, CHATVAKT_QUEUE_TYPE="quorum")


def max_push_gap(ledger, start, end):
    """The longest time, within [start, end], in which no message was pushed to any socket."""
    times = sorted(t for t in ledger.pushed_at.values() if start <= t <= end)
    points = [start] + times + [end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def contiguous(ledger):
    """(chat, receiver) views whose seqs are not exactly 1..N."""
    bad = []
    for (chat_id, receiver), view in ledger.views.items():
        if sorted(view) != list(range(1, len(view) + 1)):
            bad.append((chat_id[:8], receiver, sorted(set(range(1, max(view) + 1)) - set(view))))
    return bad


def test_the_leader_of_the_chat_queues_goes_and_comes_back(cluster, cluster_stack):
    began = time.monotonic()
    queues = cluster.queues()
    # The services' durable queues are quorum queues; the reply and broadcast queues cannot be.
    assert queues["rpc-chat"][0] == "quorum", queues
    durable_events = [name for name in queues if name.startswith("evt-") and "--gateway." not in name]
    assert durable_events and all(queues[name][0] == "quorum" for name in durable_events), queues
    assert all(kind == "classic" for name, (kind, _) in queues.items() if name.startswith("rpc.reply-"))

    traffic = Traffic(cluster_stack, count=CHATS)
    eventlet.sleep(3)
    leader = cluster.node(cluster.queues()["rpc-chat"][1])
    fault = time.monotonic()
    if FAULT == "kill":
        leader.stop(kill=True)
    else:
        leader.stop_app()
    stopped = time.monotonic()
    relay_back = traffic.relay_back(stopped)
    healed = wait_ready(cluster_stack)
    new_leader = cluster.queues()["rpc-chat"][1]
    eventlet.sleep(max(0.0, DOWN_S - (time.monotonic() - stopped)))

    rejoin = time.monotonic()
    if FAULT == "kill":
        leader.start(timeout=120)
        leader.ctl("await_startup", timeout=120)
    else:
        leader.start_app()
    back = time.monotonic()
    relay_after_rejoin = traffic.relay_back(back)
    eventlet.sleep(3)
    end = time.monotonic()
    members = cluster.nodes[0].ctl("eval", "length(rabbit_nodes:all_running()).").strip()
    score = traffic.finish()
    gap = max_push_gap(traffic.ledger, fault - 1.0, stopped + 15.0)
    stored = sum(len(view) for (_, receiver), view in traffic.ledger.views.items() if receiver == "child")
    pushed = score["acked"] - score["push_missed"]
    broken = contiguous(traffic.ledger)
    print(
        f"\ncluster: boot {cluster.boot_seconds:.1f} s; leader of rpc-chat {leader.name} stopped "
        f"({FAULT} {stopped - fault:.1f} s), new leader {new_leader}; back after "
        f"{back - rejoin:.1f} s; {members} nodes running at the end"
    )
    print(
        f"ledger: sent {score['attempted']}, accepted {score['acked']}, stored {stored} (the chats' "
        f"messages as GET returns them), pushed {pushed}, fetched-only {score['push_missed']}, "
        f"lost {score['lost']}, duplicated {score['duplicated']}, unexpected {score['unexpected']}, "
        f"socket reconnects {score['reconnects']}"
    )
    after_rejoin = f"{relay_after_rejoin:.2f} s" if relay_after_rejoin is not None else "never"
    print(
        f"relay: longest push gap around the stop {gap:.2f} s; readyz again {healed - stopped:.2f} s "
        f"after the stop; relay after the rejoin {after_rejoin}; test {end - began:.0f} s"
    )
    check(score, relay_back, "cluster leader stop", healed - fault)
    assert not broken, broken
    assert relay_after_rejoin is not None and relay_after_rejoin < RELAY_BACK_S
    assert members == str(len(cluster.nodes))
    # Never a password in a log line, whichever node a process was connected to.
    assert "guest:guest@" not in cluster_stack.logs()
