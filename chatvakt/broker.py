"""Several broker addresses, and the type of the durable queues.

AMQP_URI may list several URIs separated by ';' (one per RabbitMQ node).
nameko hands AMQP_URI as it is to kombu's Connection, which splits it into
alternates and, when the node it is connected to goes away, tries the next
(failover strategy round-robin: every process starts on the first node and
moves on in the list's order). Consumers, publishers, RPC proxies, the
gateway and the launcher all go through kombu, so the list is honoured
everywhere; this module gives the rest of chatvakt the pieces for it
(`uris`, `mask`) and never lets a password reach a log.

CHATVAKT_QUEUE_TYPE says which type the services' durable queues are declared
with (the `x-queue-type` argument):
- unset (the default): no argument, so the vhost's default queue type
  decides: classic on a plain vhost (the local stack, `make test`), quorum on
  a vhost made with `default_queue_type: quorum` (deploy/rabbitmq,
  deploy/k8s/rabbitmq.yaml);
- `quorum`: rpc-<service>, evt-… (SERVICE_POOL handlers), chatvakt.retry.…
  and chatvakt.dead-letter are quorum queues on any vhost (replicated, their
  leader moves to a surviving node when a node goes). A queue's type cannot
  change once it exists (PRECONDITION_FAILED), and a policy cannot change it
  either: a broker that already holds these queues as classic must have them
  drained and deleted first.

The queues that cannot be quorum (quorum queues are durable and neither
exclusive nor auto-delete): nameko's RPC reply queues (one per process) and
the gateway's BROADCAST handler queues (exclusive, auto-delete). Both live
on the node the process is connected to and die with it; the process
reconnects to another node and declares them again. nameko declares a reply
queue durable; a durable classic queue whose node is down cannot be
declared again anywhere (404 "home node ... is down") until the node is
back, so with `quorum` the reply queues are declared transient instead,
which RabbitMQ removes when their node goes. Replies in flight at that
moment are lost: the caller times out (503) and the client retries with its
client_msg_id, which the chat service deduplicates.
"""

import contextlib
import functools
import logging
import re

from chatvakt import config

log = logging.getLogger(__name__)

QUEUE_TYPES = ("", "quorum", "classic")

_PASSWORD = re.compile(r"(//[^:/@;]*:)[^@;]*@")


def uris(value=None):
    """The broker URIs in AMQP_URI (or `value`), in order."""
    return [part.strip() for part in (value or config.amqp_uri()).split(";") if part.strip()]


def mask(value):
    """The URI list with every password replaced by ***, for logs and messages."""
    return _PASSWORD.sub(r"\1***@", value)


def queue_type():
    value = (config.env("CHATVAKT_QUEUE_TYPE", "") or "").strip().lower()
    if value not in QUEUE_TYPES:
        raise ValueError(f"CHATVAKT_QUEUE_TYPE must be quorum, classic or unset, not {value!r}")
    return value


def durable_queue_arguments(arguments=None):
    """`arguments` plus x-queue-type when CHATVAKT_QUEUE_TYPE asks for one."""
    result = dict(arguments or {})
    kind = queue_type()
    if kind:
        result.setdefault("x-queue-type", kind)
    return result


def _typed(queue):
    if queue.durable and not queue.exclusive and not queue.auto_delete:
        queue.queue_arguments = durable_queue_arguments(queue.queue_arguments)
    return queue


def _survive_lost_connection(cls, name):
    """Wrap QueueConsumer.ack_message / requeue_message so that a connection
    lost under them is a warning, not the end of the process.

    nameko 2.14 acks in the worker (or, for RPC replies, in a managed thread)
    after checking that the message's connection is alive, and catches only
    amqp's ConnectionError. When a node is SIGKILLed the socket dies between
    that check and the write: ConnectionResetError (or BrokenPipeError) escapes
    the thread, and nameko kills the whole container (the gateway died so in
    tests/faults/test_cluster.py). Nothing is lost by carrying on: the broker
    requeues every message of a dead channel, and the QueueConsumer (kombu's
    ConsumerMixin) reconnects to the next node by itself.
    """
    from amqp.exceptions import ConnectionError as AmqpConnectionError
    from kombu.exceptions import OperationalError

    original = getattr(cls, name)
    lost = (OSError, AmqpConnectionError, OperationalError)

    @functools.wraps(original)
    def guarded(self, message):
        try:
            original(self, message)
        except lost as exc:
            # The type only: a URI (and its password) may be in the text.
            log.warning(
                "%s after the broker connection was lost (%s); the broker redelivers the message",
                name,
                type(exc).__name__,
            )

    setattr(cls, name, guarded)


def _no_ack_where_nothing_is_redelivered(queue_consumer_cls, reply_listener_cls):
    """Consume RPC replies and the queues of unreliable handlers
    (reliable_delivery=False: auto-delete, the gateway's BROADCAST pushes)
    without acks.

    An ack there buys nothing: such a queue dies with its consumer, and a
    reply is wanted only by the process that is waiting for it. Yet each ack
    is a frame and a send() of its own, per message: 2 of the gateway's
    per-message sends to the broker (issue 16). kombu's Message.ack does
    nothing for a no-ack consumer, so nameko's ack calls stay as they are.

    kombu's check is not enough, though: it asks whether the delivery's
    consumer tag is a no-ack one, and a cancelled consumer's tag is forgotten.
    A stopping container cancels its consumers, then acks (or requeues) what
    its last workers took, and an ack of a delivery the broker never tracked
    is a channel error (PRECONDITION_FAILED, unknown delivery tag). The
    consumer then reconnected in the middle of nameko's stop, which waited
    for it for good: a SIGTERMed gateway served on for minutes instead of
    exiting (the rolling restart test). So each such delivery is marked when
    it arrives, and nameko's ack and requeue leave a marked one alone: it is
    gone from the broker already, as no-ack means.
    """
    original = queue_consumer_cls.get_consumers

    @functools.wraps(original)
    def get_consumers(self, consumer_cls, channel):
        consumers = original(self, consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            queue = getattr(provider, "queue", None)
            if isinstance(provider, reply_listener_cls) or (queue is not None and queue.auto_delete):
                without_acks(consumer)
        return consumers

    queue_consumer_cls.get_consumers = get_consumers
    for name in ("ack_message", "requeue_message"):
        _skip_marked(queue_consumer_cls, name)


NO_ACK_MARK = "chatvakt_no_ack"


def _mark(_body, message):
    setattr(message, NO_ACK_MARK, True)


def without_acks(consumer):
    """Make a kombu Consumer (not started yet) consume without acks, marking each delivery."""
    consumer.no_ack = True
    consumer.callbacks.insert(0, _mark)
    return consumer


def _skip_marked(cls, name):
    original = getattr(cls, name)

    @functools.wraps(original)
    def guarded(self, message):
        if not getattr(message, NO_ACK_MARK, False):
            original(self, message)

    setattr(cls, name, guarded)


STOP_POLL_S = 0.1


def _prompt_stop(queue_consumer_cls):
    """Let nameko's consumer thread look at requests to stop ten times a second.

    The thread waits for a frame up to kombu's safety_interval (1 s) before it
    looks at providers asking to leave, and a container's stop passes that wait
    three times over (its entrypoints, then the RPC reply listener, then the
    consumer itself): an idle service took about 3.7 s to exit on SIGTERM,
    which a rolling restart, a pod's termination and every test stack's
    teardown waited for. A frame still ends the wait at once; the shorter one
    only costs an idle process ten wake-ups a second.
    """
    original = queue_consumer_cls.consume

    @functools.wraps(original)
    def consume(self, *args, **kwargs):
        kwargs.setdefault("safety_interval", STOP_POLL_S)
        return original(self, *args, **kwargs)

    queue_consumer_cls.consume = consume


def _lean_rpc_publishing():
    """RPC requests and replies are transient, and go without confirms.

    An RPC has a deadline (gateway/remote.py, the only caller in the stack): a
    request or a reply that a broker restart or a dying connection loses ends
    as a timeout, 503, and the client sends again with its client_msg_id,
    which the chat service deduplicates. Persisting them buys nothing, while
    it costs the broker a write per message, and a confirm costs the publisher
    a wait, a pass through eventlet's hub and a read: measured alone on a kept
    producer, 165-170 µs of the publisher's CPU with the confirm against 69
    without, and 140 µs of RabbitMQ's against 60 (issue 16). Without confirms
    a request goes without `mandatory` too: nameko needed both only to tell a
    caller at once that no queue takes the request (UnknownService), which
    happens only before a service first declared its queue (the queues are
    durable), and a returned message nobody waits for would sit unread on the
    connection. Such a call now ends at its deadline, 503, as a call to a
    service that is down always did.

    And nameko builds a kombu Connection for every publish only to find its
    pooled producer, and kombu's pool hands a producer back without its
    channel: every publish took a connection from a second pool and revived
    the producer on it, some 5 % of the chat service's CPU per relayed message
    and 3 % of the gateway's. Here a producer stays bound to a connection of
    its own, in a bounded pool per key (`Producers`), handed out one at a
    time (a green thread holds one for its publish and its confirm). kombu's
    `ensure` still reconnects and revives a kept producer whose connection
    died, for every publish but the RPC's own: those go out on the kept
    producer's channel directly (LeanPublisher), and make their one retry on
    a new connection themselves.
    A quorum queue keeps every message on disk whatever its delivery mode.
    """
    import nameko.amqp.publish as publish
    from nameko.constants import NON_PERSISTENT
    from nameko.rpc import MethodProxy, Responder

    LeanPublisher = _lean_publisher_cls()
    unconfirmed = {"delivery_mode": NON_PERSISTENT, "use_confirms": False}
    MethodProxy.publisher_cls = type("RequestPublisher", (LeanPublisher,), unconfirmed)
    Responder.publisher_cls = type("ReplyPublisher", (LeanPublisher,), unconfirmed)

    @contextlib.contextmanager
    def get_producer(amqp_uri, confirms=True, ssl=None, login_method=None, transport_options=None):
        with producer_pool(amqp_uri, confirms, ssl, login_method, transport_options).producer() as producer:
            yield producer

    publish.get_producer = get_producer
    publish.chatvakt_producer_pools = _POOLS


# What nameko's RPC proxy and responder pass to publish, and nothing else:
# the lean path is taken only for exactly these.
_LEAN_KWARGS = frozenset(
    {"exchange", "routing_key", "mandatory", "reply_to", "correlation_id", "extra_headers", "serializer"}
)


def _lean_publisher_cls():
    from amqp import ConnectionError as AMQPConnectionError
    from amqp import Message, RecoverableConnectionError
    from kombu import Exchange
    from kombu.exceptions import ChannelError, OperationalError
    from kombu.serialization import dumps
    from nameko.amqp.publish import Publisher, UndeliverableMessage

    # What a lost or refused connection raises, in py-amqp and kombu.
    connection_errors = (AMQPConnectionError, RecoverableConnectionError, OperationalError, OSError)

    class LeanPublisher(Publisher):
        """An RPC request's or reply's publish straight onto the kept
        producer's channel: the AMQP message nameko's Publisher and kombu's
        Producer.publish would send (body, content type and encoding,
        headers, delivery mode, priority, reply_to, correlation_id), without
        their layers: merged option dicts, a serializer lookup, a retry
        wrapper around every publish, a message built in three steps. Those
        cost about 45 µs of a publish's 100, and a relayed message makes two
        of these publishes (issue 16).

        A publish the kept connection cannot make (the broker went away) is
        made once more on a new connection, at once: an RPC has a deadline
        (gateway/remote.py), and kombu's retries would wait 2 s between tries.
        If that fails too, the caller gets a ConnectionError (503 at the
        gateway). Any other option (declarations, expiration, compression,
        publish options set on the publisher) goes through nameko's publish."""

        def publish(self, payload, **kwargs):
            if not kwargs.keys() <= _LEAN_KWARGS or self.declare or self.publish_kwargs or self.compression:
                return super().publish(payload, **kwargs)
            headers = dict(kwargs.get("extra_headers") or {})
            content_type, content_encoding, body = dumps(payload, serializer=kwargs.get("serializer", self.serializer))
            exchange = kwargs.get("exchange", "")
            properties = {"delivery_mode": self.delivery_mode}
            for key in ("reply_to", "correlation_id"):
                if key in kwargs:
                    properties[key] = kwargs[key]
            message = Message(
                body,
                priority=self.priority,
                content_type=content_type,
                content_encoding=content_encoding,
                application_headers=headers,
                **properties,
            )
            # A return is read only while waiting for a confirm: unconfirmed, it would sit unread.
            mandatory = kwargs.get("mandatory", self.mandatory) and self.use_confirms
            pool = producer_pool(self.amqp_uri, self.use_confirms, self.ssl, self.login_method, self.transport_options)
            name = exchange.name if isinstance(exchange, Exchange) else exchange
            for last in (False, True):
                try:
                    with pool.producer() as producer:
                        producer.channel.basic_publish(
                            message, exchange=name, routing_key=kwargs.get("routing_key", ""), mandatory=mandatory
                        )
                    return
                except ChannelError as exc:
                    if "NO_ROUTE" in str(exc):  # as nameko: returned before the confirm
                        raise UndeliverableMessage() from None
                    raise
                except connection_errors as exc:
                    # The pool closed this connection; the others kept went with it.
                    pool.discard_free()
                    if last:
                        raise ConnectionError(f"the broker did not take the publish ({type(exc).__name__})") from None

    return LeanPublisher


_POOLS: dict = {}


def producer_pool(amqp_uri, confirms=True, ssl=None, login_method=None, transport_options=None):
    """The process's pool of kept producers for these connection options."""
    from nameko.amqp import publish
    from nameko.constants import DEFAULT_TRANSPORT_OPTIONS

    options = dict(DEFAULT_TRANSPORT_OPTIONS if transport_options is None else transport_options)
    options["confirm_publish"] = confirms
    key = (amqp_uri, repr(ssl), login_method, repr(sorted(options.items())))
    pool = _POOLS.get(key)
    if pool is None:
        from kombu import Producer

        pool = _POOLS[key] = Producers(
            lambda: publish.Connection(amqp_uri, transport_options=options, ssl=ssl, login_method=login_method),
            Producer,
            publisher_connections(),
        )
    return pool


def publisher_connections():
    """CHATVAKT_PUBLISHER_CONNECTIONS: a process's publishing connections per broker address list."""
    value = config.env_int("CHATVAKT_PUBLISHER_CONNECTIONS", PUBLISHER_CONNECTIONS)
    if value < 1:
        raise ValueError("CHATVAKT_PUBLISHER_CONNECTIONS must be at least 1")
    return value


# kombu's own pool limit. A publish holds its producer for one confirm's round
# trip: ten serve thousands of publishes a second.
PUBLISHER_CONNECTIONS = 10


class Producers:
    """At most `size` producers, each on a connection of its own, made when
    first needed and kept; a publisher that finds none free waits for one.

    Making a connection for the publisher that finds the kept ones busy, and
    closing it after its one publish, cost a TCP connect, the AMQP handshake,
    a channel, confirm_select and a close, in this process and in the broker,
    just when the process was busiest: past saturation the gateway made some
    twenty connections a second, and the relay fell to half its rate (issue
    16). A green thread's wait here is bounded by its caller's deadline (an
    RPC's eventlet.Timeout interrupts it). A producer whose publish raised
    (its connection may be mid-frame) is closed, and its place made anew on
    the next need."""

    def __init__(self, connect, producer, size):
        from eventlet.semaphore import BoundedSemaphore  # nameko publishes only under eventlet

        self._connect, self._producer = connect, producer
        self._slots = BoundedSemaphore(size)
        self.free: list = []

    @contextlib.contextmanager
    def producer(self):
        self._slots.acquire()
        try:
            if self.free:
                producer, connection = self.free.pop()
            else:
                connection = self._connect()
                producer = self._producer(connection)
            try:
                yield producer
            except BaseException:
                _close_quietly(connection)
                raise
            self.free.append((producer, connection))
        finally:
            self._slots.release()

    def discard_free(self):
        """Close the kept connections no one is using: when one died, the
        broker (or its node) most likely closed them all, and each would fail
        its next publish in turn."""
        free, self.free = self.free, []
        for _producer, connection in free:
            _close_quietly(connection)


def _close_quietly(connection):
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - a connection that will not close is dropped all the same
        log.debug("a publisher connection did not close cleanly", exc_info=True)


READ_AHEAD = 65536


class _ReadAhead:
    """A socket's recv that asks the kernel for up to READ_AHEAD bytes at a
    time and hands them out as asked.

    py-amqp reads a frame in three exact reads (its header, its payload, its
    end byte), and a delivered message is three frames: nine recv calls, each
    a system call and a pass through eventlet's hub, for one message that
    arrived in one segment (issue 16). A timeout or an error comes from the
    socket as before and leaves what was read ahead in place.
    """

    __slots__ = ("_recv", "_data", "_at")

    def __init__(self, recv):
        self._recv = recv
        self._data = b""
        self._at = 0

    def __call__(self, n):
        if self._at >= len(self._data):
            data = self._recv(max(n, READ_AHEAD))
            if not data:
                return data  # the peer closed: py-amqp raises on it
            self._data, self._at = data, 0
        chunk = self._data[self._at : self._at + n]
        self._at += len(chunk)
        return chunk


def _read_ahead():
    from amqp.transport import TCPTransport

    original = TCPTransport._setup_transport

    @functools.wraps(original)
    def setup(self):
        original(self)
        self._quick_recv = _ReadAhead(self.sock.recv)

    TCPTransport._setup_transport = setup


_installed: list[bool] = []


def install():
    """Patch nameko 2.14's three queue declarations, its URL masking, its
    acks on a lost connection and on no-ack queues, how soon it stops, how it
    publishes RPC requests and replies, and how py-amqp reads its socket.

    nameko has no option for queue arguments: RpcConsumer, EventHandler and
    ReplyListener build their kombu Queue in setup(). We wrap each setup and
    adjust the Queue it made before any consumer declares it. Called once per
    process by the entry point (launcher/nameko.py); a second call does nothing.
    """
    if _installed:
        return
    import nameko.messaging
    from nameko.events import EventHandler
    from nameko.messaging import QueueConsumer
    from nameko.rpc import ReplyListener, RpcConsumer

    def wrap(cls, adjust):
        original = cls.setup

        @functools.wraps(original)
        def setup(self):
            original(self)
            if getattr(self, "queue", None) is not None:
                adjust(self.queue)

        cls.setup = setup

    def reply_queue(queue):
        if queue_type() == "quorum":
            queue.durable = False

    wrap(RpcConsumer, _typed)
    wrap(EventHandler, _typed)
    wrap(ReplyListener, reply_queue)
    # nameko logs "Error connecting to broker at <uri>" with only the first
    # URI's password hidden: hide them all.
    nameko.messaging.sanitize_url = mask
    _survive_lost_connection(QueueConsumer, "ack_message")
    _survive_lost_connection(QueueConsumer, "requeue_message")
    _no_ack_where_nothing_is_redelivered(QueueConsumer, ReplyListener)
    _prompt_stop(QueueConsumer)
    _lean_rpc_publishing()
    _read_ahead()
    _installed.append(True)
