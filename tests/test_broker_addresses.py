"""AMQP_URI with several nodes, the masking of passwords, the queue type and the
acks nameko makes (chatvakt/broker.py); the last test on the real broker."""

import contextlib

import pytest
from kombu import Queue

from chatvakt import broker
from launcher.stack import broker_reachable

LIST = "amqp://u:s3cret@10.0.0.1:5672/chatvakt;amqp://u:s3cret@10.0.0.2:5673/chatvakt"


def test_the_list_is_split_in_order():
    assert broker.uris(LIST) == ["amqp://u:s3cret@10.0.0.1:5672/chatvakt", "amqp://u:s3cret@10.0.0.2:5673/chatvakt"]
    assert broker.uris("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]


def test_every_password_is_masked():
    masked = broker.mask(LIST)
    assert "s3cret" not in masked
    assert masked == "amqp://u:***@10.0.0.1:5672/chatvakt;amqp://u:***@10.0.0.2:5673/chatvakt"
    assert broker.mask("amqp://10.0.0.1/") == "amqp://10.0.0.1/"


def test_kombu_takes_the_list_as_failover_alternates():
    from kombu import Connection

    connection = Connection(LIST)
    assert connection.alt == broker.uris(LIST)
    assert "s3cret" not in repr(connection)


def test_the_launcher_finds_a_node_further_down_the_list():
    assert not broker_reachable("amqp://guest:guest@127.0.0.1:1/;amqp://guest:guest@127.0.0.1:2/", timeout=0.2)


def test_queue_type(monkeypatch):
    monkeypatch.delenv("CHATVAKT_QUEUE_TYPE", raising=False)
    assert broker.durable_queue_arguments({"a": 1}) == {"a": 1}
    monkeypatch.setenv("CHATVAKT_QUEUE_TYPE", "quorum")
    assert broker.durable_queue_arguments() == {"x-queue-type": "quorum"}
    queue = broker._typed(Queue("rpc-chat", durable=True))
    assert queue.queue_arguments == {"x-queue-type": "quorum"}
    broadcast = broker._typed(Queue("evt-x", durable=True, exclusive=True, auto_delete=True))
    assert not broadcast.queue_arguments
    monkeypatch.setenv("CHATVAKT_QUEUE_TYPE", "mirrored")
    with pytest.raises(ValueError):
        broker.queue_type()


def test_an_ack_on_a_connection_reset_by_a_killed_node_is_a_warning(caplog):
    # nameko killed the whole gateway on this (tests/faults/test_cluster.py, kill).
    from types import SimpleNamespace

    from nameko.messaging import QueueConsumer

    broker.install()

    def reset(*_args, **_kwargs):
        raise ConnectionResetError(104, "Connection reset by peer amqp://u:s3cret@10.0.0.1")

    message = SimpleNamespace(channel=SimpleNamespace(connection=object()), ack=reset, requeue=reset)
    QueueConsumer.ack_message(None, message)
    QueueConsumer.requeue_message(None, message)
    assert "ConnectionResetError" in caplog.text
    assert "s3cret" not in caplog.text


def test_a_stopping_consumer_acks_nothing_it_took_without_acks():
    # A SIGTERMed gateway cancelled its broadcast consumers (kombu then forgets
    # that their tags were no-ack) and acked a push it had taken without ack:
    # the broker closed the channel (unknown delivery tag) and nameko's stop
    # waited on the reconnected consumer for minutes (the rolling restart test).
    from kombu import Connection, Consumer, Exchange, Producer
    from nameko.messaging import QueueConsumer

    from tests.stack import amqp_uri, create_vhost, delete_vhost

    broker.install()
    vhost = create_vhost()
    try:
        with Connection(amqp_uri(vhost)) as connection:
            channel = connection.channel()
            queue = Queue("pushes", Exchange("x", type="topic"), routing_key="#", auto_delete=True, channel=channel)
            queue.declare()
            for _ in range(2):
                Producer(connection.default_channel).publish({}, exchange="x", routing_key="k")
            taken = []
            consumer = broker.without_acks(Consumer(channel, [queue], callbacks=[lambda _b, m: taken.append(m)]))
            with consumer:
                while len(taken) < 2:
                    connection.drain_events(timeout=5)
            # the consumer is cancelled now (and its auto-delete queue gone), as a stopping container's are
            QueueConsumer.ack_message(None, taken[0])
            QueueConsumer.requeue_message(None, taken[1])
            channel.queue_declare("probe", auto_delete=True)  # PreconditionFailed if the channel was closed
            assert channel.is_open
    finally:
        delete_vhost(vhost)


def test_a_stopping_service_is_gone_within_a_second_and_a_half():
    # It waited three times for kombu's 1 s drain timeout (about 3.7 s for a
    # service of ours): rolling restarts, pods' terminations and every test
    # stack's teardown waited with it.
    import time

    from nameko.containers import ServiceContainer
    from nameko.events import event_handler
    from nameko.rpc import RpcProxy, rpc

    from tests.stack import amqp_uri, create_vhost, delete_vhost

    broker.install()

    class Probe:
        name = "probe"
        other = RpcProxy("nobody")

        @rpc
        def ping(self):
            return True

        @event_handler("somewhere", "something")
        def on_something(self, payload):
            pass

    vhost = create_vhost()
    try:
        container = ServiceContainer(Probe, {"AMQP_URI": amqp_uri(vhost)})
        container.start()
        started = time.monotonic()
        container.stop()
        took = time.monotonic() - started
        assert took < 1.5, f"the service took {took:.2f} s to stop"
    finally:
        delete_vhost(vhost)


def test_rpc_requests_and_replies_are_transient_and_unconfirmed():
    # issue 16: a confirm cost the publisher a wait and a read (and the broker
    # more than the publish), and persisting cost the broker a write, for a
    # call that ends in a timeout (503) and a retry anyway if the broker loses it.
    from kombu import Connection, Consumer, Exchange
    from nameko.containers import ServiceContainer
    from nameko.rpc import MethodProxy, Responder, rpc
    from nameko.standalone.rpc import ClusterRpcProxy

    from tests.stack import amqp_uri, create_vhost, delete_vhost

    broker.install()
    assert MethodProxy.publisher_cls.delivery_mode == 1 and not MethodProxy.publisher_cls.use_confirms
    assert Responder.publisher_cls.delivery_mode == 1 and not Responder.publisher_cls.use_confirms

    class Echo:
        name = "echo"

        @rpc
        def say(self, value):
            return value

    vhost = create_vhost()
    try:
        container = ServiceContainer(Echo, {"AMQP_URI": amqp_uri(vhost)})
        container.start()
        try:
            with ClusterRpcProxy({"AMQP_URI": amqp_uri(vhost)}) as cluster:
                assert cluster.echo.say("hei") == "hei"
            # A reply as the service sends it, caught on a queue of our own.
            with Connection(amqp_uri(vhost)) as connection:
                caught = Queue("caught", Exchange("nameko-rpc", type="topic"), routing_key="me", auto_delete=True)
                got = []
                with Consumer(connection, [caught], callbacks=[lambda _b, m: got.append(m)], no_ack=True):
                    properties = {"content_type": "application/json", "reply_to": "me"}
                    request = type("Request", (), {"properties": properties})
                    Responder(amqp_uri(vhost), Exchange("nameko-rpc", type="topic"), "json", request).send_response(
                        "svar", None
                    )
                    connection.drain_events(timeout=5)
            assert got[0].properties["delivery_mode"] == 1
        finally:
            container.stop()
    finally:
        delete_vhost(vhost)


def test_a_delivered_message_takes_one_read_from_the_socket_not_nine():
    from kombu import Connection, Consumer, Exchange, Producer

    from tests.stack import amqp_uri, create_vhost, delete_vhost

    broker.install()
    vhost = create_vhost()
    try:
        with Connection(amqp_uri(vhost)) as connection:
            queue = Queue("reads", Exchange("r", type="topic"), routing_key="#", auto_delete=True)
            got = []
            with Consumer(connection, [queue], callbacks=[lambda b, _m: got.append(b)], no_ack=True):
                reader = connection.connection.transport._quick_recv
                assert isinstance(reader, broker._ReadAhead)
                calls = [0]
                recv = reader._recv

                def counted(n):
                    calls[0] += 1
                    return recv(n)

                reader._recv = counted
                for n in range(50):
                    Producer(connection.default_channel).publish({"n": n}, exchange="r", routing_key="k")
                while len(got) < 50:
                    connection.drain_events(timeout=5)
            assert [b["n"] for b in got] == list(range(50))
            # py-amqp alone: three reads a frame, three frames a message (450).
            # Read ahead: about one a message, a few more where a read ended
            # inside a frame or came before the next message was there.
            assert calls[0] <= 100, calls[0]
    finally:
        delete_vhost(vhost)


@contextlib.contextmanager
def publishing_to(name):
    """A vhost of its own with the queue `name`: (its URI, a confirming nameko
    Publisher, the count of the queue's messages), with chatvakt's publishing."""
    from kombu import Connection, Exchange
    from nameko.amqp.publish import Publisher

    from tests.stack import amqp_uri, create_vhost, delete_vhost

    broker.install()
    vhost = create_vhost()
    uri = amqp_uri(vhost)

    def count():
        with Connection(uri) as connection:
            return connection.default_channel.queue_declare(name, passive=True)[1]

    try:
        with Connection(uri) as connection:
            Queue(name, Exchange(""), routing_key=name)(connection.default_channel).declare()
        yield uri, vhost, Publisher(uri, use_confirms=True), count
    finally:
        delete_vhost(vhost)


def producer_pool(uri):
    import nameko.amqp.publish as publish

    (pool,) = [pool for key, pool in publish.chatvakt_producer_pools.items() if key[0] == uri]
    return pool


def close_connections(vhost, at_least=1):
    """The broker closes every connection of `vhost` (as a node restart would)."""
    import time
    import urllib.parse

    import requests

    from tests.stack import MANAGEMENT, RABBIT_AUTH

    quoted = urllib.parse.quote(vhost, safe="")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = [
            c["name"]
            for c in requests.get(f"{MANAGEMENT}/api/vhosts/{quoted}/connections", auth=RABBIT_AUTH, timeout=5).json()
        ]
        if len(names) >= at_least:
            break
        time.sleep(0.5)  # the management API lists a connection after a moment
    assert len(names) >= at_least
    for name in names:
        requests.delete(
            f"{MANAGEMENT}/api/connections/{urllib.parse.quote(name, safe='')}", auth=RABBIT_AUTH, timeout=5
        )
    time.sleep(0.5)


def test_a_publisher_keeps_its_producer_bound_and_survives_the_broker_closing_it():
    # issue 16: kombu's pool handed a producer back without its channel, so
    # every publish took a connection from a second pool and revived the
    # producer on it. A kept producer must still recover when the broker
    # closes its connection (kombu's ensure reconnects and revives it).
    with publishing_to("kept") as (uri, vhost, publisher, count):
        for n in range(50):
            publisher.publish({"n": n}, exchange="", routing_key="kept", mandatory=True)
        kept = producer_pool(uri).free
        assert len(kept) == 1, "one producer served 50 publishes in turn"
        producer, _connection = kept[0]
        first = producer.channel

        close_connections(vhost)  # as a node restart would
        publisher.publish({"n": 50}, exchange="", routing_key="kept", mandatory=True)
        assert producer.channel is not first  # revived on a new connection
        assert count() == 51


def test_concurrent_publishers_wait_for_a_kept_connection_instead_of_making_their_own():
    # issue 16: a publisher that found the kept producers busy made a
    # connection for its one publish and closed it: past saturation the
    # gateway made some twenty connections a second, and the relay fell to
    # half its rate. Now at most PUBLISHER_CONNECTIONS exist; the rest wait.
    import eventlet

    with publishing_to("bounded") as (uri, _vhost, publisher, count):
        publisher.publish({"n": -1}, exchange="", routing_key="bounded", mandatory=True)
        producers = producer_pool(uri)
        made = []
        connect = producers._connect

        def counted():
            made.append(1)
            return connect()

        producers._connect = counted

        def publish_some(n):
            for m in range(10):
                publisher.publish({"n": n, "m": m}, exchange="", routing_key="bounded", mandatory=True)

        list(eventlet.GreenPool(40).imap(publish_some, range(40)))
        kept = len(producers.free)
        assert 2 <= kept <= broker.PUBLISHER_CONNECTIONS, f"{kept} connections kept for 40 publishers"
        assert len(made) == kept - 1, "every connection made is kept, none closed after one publish"
        assert count() == 401


def confirming_request_publisher(uri):
    """chatvakt's RPC request publisher, but asking for confirms."""
    from nameko.rpc import MethodProxy

    return type("Confirmed", (MethodProxy.publisher_cls,), {"use_confirms": True})(uri)


def test_the_lean_rpc_publish_sends_the_message_nameko_would_have_sent():
    # issue 16: RPC requests and replies skip nameko's and kombu's publish
    # layers; what reaches the queue must not change (body, properties, headers).
    from kombu import Connection
    from nameko.amqp.publish import Publisher, UndeliverableMessage
    from nameko.rpc import MethodProxy, Responder

    with publishing_to("lean") as (uri, _vhost, _publisher, count):

        class Stock(Publisher):  # nameko's own publish with the same settings
            delivery_mode = 1

        options = dict(
            exchange="",
            routing_key="lean",
            mandatory=True,
            reply_to="rpc.reply-gateway-1",
            correlation_id="c0ffee",
            extra_headers={"nameko.call_id_stack": ["gateway.post_message.1"], "nameko.request_id": "abc"},
            serializer="json",
        )
        payload = {"args": ["chat-1", {"role": "child"}, "hei på deg ✓"], "kwargs": {"client_msg_id": None}}
        # nameko's publish as chatvakt sets it up: unconfirmed, so without mandatory.
        stock = (Stock(uri, use_confirms=False), dict(options, mandatory=False))
        for publisher, given in (stock, (MethodProxy.publisher_cls(uri), options)):
            publisher.publish(payload, **given)
        reply = {"result": {"seq": 3}, "error": None}
        for publisher in (Stock(uri, use_confirms=False), Responder.publisher_cls(uri)):
            publisher.publish(reply, exchange="", routing_key="lean", correlation_id="c0ffee", serializer="json")
        assert count() == 4
        with Connection(uri) as connection:
            got = [connection.default_channel.basic_get("lean", no_ack=True) for _ in range(4)]
        for stock, lean in (got[0:2], got[2:4]):
            assert lean.body == stock.body
            assert lean.properties == stock.properties
            assert lean.headers == stock.headers
        assert got[1].properties["delivery_mode"] == 1 and got[1].properties["reply_to"] == "rpc.reply-gateway-1"

        # A request no queue takes is dropped by the broker (no mandatory
        # without a confirm to read its return): the caller's deadline answers.
        MethodProxy.publisher_cls(uri).publish(payload, **dict(options, routing_key="nobody"))
        MethodProxy.publisher_cls(uri).publish(payload, **options)
        assert count() == 1

        # With confirms (a publisher of the same class that asks for them),
        # nameko's UnknownService still comes from a returned request.
        confirmed = confirming_request_publisher(uri)
        with pytest.raises(UndeliverableMessage):
            confirmed.publish(payload, **dict(options, routing_key="nobody"))
        confirmed.publish(payload, **options)  # the producer was made anew
        assert count() == 2


def test_the_lean_rpc_publish_survives_the_broker_closing_its_connections():
    import eventlet

    with publishing_to("lean-kept") as (uri, vhost, _publisher, count):
        # With confirms: a publish on a connection the broker closed fails at
        # once (unconfirmed, the first write may still seem to succeed).
        publisher = confirming_request_publisher(uri)

        def publish(n):
            publisher.publish({"n": n}, exchange="", routing_key="lean-kept", mandatory=True)

        list(eventlet.GreenPool(4).imap(publish, range(40)))  # several kept connections
        pool = broker.producer_pool(uri, True, None, None, publisher.transport_options)
        assert len(pool.free) >= 2
        close_connections(vhost, at_least=len(pool.free))
        # Every kept connection is dead: the first publish fails on one, drops
        # them all and goes out on a new one; the rest follow on it.
        for n in range(40, 45):
            publish(n)
        assert count() == 45
        assert len(pool.free) == 1
