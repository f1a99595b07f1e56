"""The outbox's publisher on the real broker (chatvakt/outbox.py): it does
not wait for a batch's confirms before it publishes the next (issue 16: a
persistent message's confirm waits for the broker's disk, up to 250 ms at
the 99th percentile here, and every message written meanwhile waited too),
and only what the broker confirmed is deleted."""

import contextlib

import eventlet
import eventlet.event
from kombu import Connection, Consumer, Exchange, Queue

from chatvakt.outbox import Batcher, OutboxRow
from tests.stack import amqp_uri, create_vhost, delete_vhost


class Sessions:
    """Just enough of a session factory: records what the deleter deletes."""

    def __init__(self, uri):
        self.chatvakt_amqp_uri = uri
        self.deleted = []

    @contextlib.contextmanager
    def __call__(self):
        sessions = self

        class Session:
            def begin(self):
                return contextlib.nullcontext()

            def execute(self, _statement, params):
                sessions.deleted.extend(params["ids"])

        yield Session()


class Outbox:
    source = "probe"
    _delete = None


def test_batches_go_out_without_waiting_for_confirms_and_confirmed_rows_are_deleted():
    vhost = create_vhost()
    try:
        uri = amqp_uri(vhost)
        with Connection(uri) as connection:
            exchange = Exchange("probe.events", type="topic", durable=True)
            queue = Queue("evt-probe", exchange, routing_key="happened", durable=True)
            queue(connection.default_channel).declare()
            sessions = Sessions(uri)
            # The confirm reader waits at a gate, so no confirm is read until
            # both batches are out: a publisher that waited for confirms
            # would never return from the first.
            gate = eventlet.event.Event()

            class Gated(Batcher):
                def _confirms(self, connection):
                    gate.wait()
                    super()._confirms(connection)

            batcher = Gated(Outbox(), sessions, dispatch=None)
            first = [OutboxRow(n, "happened", f'{{"n": {n}}}') for n in range(1, 51)]
            second = [OutboxRow(n, "happened", f'{{"n": {n}}}') for n in range(51, 101)]
            with eventlet.Timeout(10):
                batcher._publish(first)
                batcher._publish(second)
            assert len(batcher.unconfirmed) == 100
            gate.send()
            deadline = eventlet.Timeout(10)
            try:
                while sorted(sessions.deleted) != list(range(1, 101)):
                    eventlet.sleep(0.05)
            finally:
                deadline.cancel()
            assert batcher.unconfirmed == {}
            got = []
            with Consumer(connection, [queue], callbacks=[lambda body, m: (got.append(body["n"]), m.ack())]):
                while len(got) < 100:
                    connection.drain_events(timeout=5)
            assert got == list(range(1, 101))
            batcher._drop_connection()
    finally:
        delete_vhost(vhost)
