"""Event handlers that neither loop on nor lose a message that keeps failing.

nameko acks and drops an event whose handler raised (`requeue_on_error=False`),
and requeueing instead would spin on a poison message for ever. Our
`event_handler` (for SERVICE_POOL handlers) does neither: a failed message is
republished to a per-handler retry queue with a try counter in a header; the
retry queue holds it for a growing delay and dead-letters it back into the
handler's own queue. After CHATVAKT_MAX_TRIES tries it is parked, headers and
all, in the durable queue `chatvakt.dead-letter`, where ops see and count it
(management UI, `dead_letters` RPC on every service, the metric
chatvakt_dead_letters_total, `chatvakt dead-letters list`) and can move it
back once the bug is fixed (`chatvakt dead-letters replay`).

A parked event may hold a child's words, so it does not stay for ever: each
copy expires CHATVAKT_DEAD_LETTER_TTL_S after it was parked (default 7 days).
The expiry is set per message, not as the queue's x-message-ttl: a queue's
arguments cannot change once it exists (redeclaring fails with
PRECONDITION_FAILED), so a per-message expiry works on queues deployments
already have and lets the time be changed without a migration. Every copy
gets the same time and the queue is first in, first out, so the broker
expires them in order at the head. Copies parked before this existed carry
no expiry: `chatvakt dead-letters drop` (or replay) empties them once.

The copy is published with confirms before the original is acked, so a crash
in between redelivers the original (at least once; handlers are idempotent).
If the broker cannot take the copy, the original is requeued, not dropped.
"""

import logging

from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.events import SERVICE_POOL, EventHandler
from prometheus_client import Counter

from chatvakt import broker, config

log = logging.getLogger(__name__)

DEAD_LETTER_QUEUE = "chatvakt.dead-letter"
RETRY_PREFIX = "chatvakt.retry."
TRIES = "x-chatvakt-tries"

RETRIES = Counter(
    "chatvakt_handler_retries_total", "Event handler failures sent back for a retry", ["service", "handler"]
)
DEAD_LETTERS = Counter(
    "chatvakt_dead_letters_total", "Events parked in chatvakt.dead-letter after their last try", ["service", "handler"]
)


def max_tries():
    return max(1, config.env_int("CHATVAKT_MAX_TRIES", 5))


def dead_letter_ttl_s():
    """Seconds a parked event is kept before the broker drops it (default 7 days)."""
    return max(1.0, config.env_float("CHATVAKT_DEAD_LETTER_TTL_S", 7 * 24 * 3600.0))


def retry_delay(tries):
    """Seconds before try number `tries + 1`: doubling from CHATVAKT_RETRY_DELAY_MS, capped at 30 s."""
    base = config.env_float("CHATVAKT_RETRY_DELAY_MS", 200) / 1000.0
    return min(30.0, base * (2 ** max(0, tries - 1)))


def dead_letter_queue():
    return Queue(
        DEAD_LETTER_QUEUE,
        exchange=Exchange(""),
        routing_key=DEAD_LETTER_QUEUE,
        durable=True,
        queue_arguments=broker.durable_queue_arguments(),
    )


def dead_letter_count(connection):
    """Messages now parked in the dead-letter queue (a passive declare: creates nothing)."""
    channel = connection.channel()
    try:
        _name, count, _consumers = channel.queue_declare(DEAD_LETTER_QUEUE, passive=True)
        return count
    except Exception:  # noqa: BLE001 - the queue does not exist yet: nothing was parked
        return 0
    finally:
        try:
            channel.close()
        except Exception:  # noqa: BLE001
            pass


class RetryingEventHandler(EventHandler):
    def __init__(self, source_service, event_type, binding=None, **kwargs):
        # A topic pattern to bind the handler's queue with, where the event
        # goes out under more than its name (events.routing_key).
        self.binding = binding
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        if self.binding is not None:
            # Before the queue consumer starts, which declares and binds it.
            self.queue.routing_key = self.binding
        if self.handler_type is not SERVICE_POOL:
            return
        # The retry queue has no consumer: a message waits out its expiration
        # there and is then dead-lettered, by the broker, into our queue.
        self.retry_queue = Queue(
            RETRY_PREFIX + self.queue.name,
            exchange=Exchange(""),
            routing_key=RETRY_PREFIX + self.queue.name,
            durable=True,
            queue_arguments=broker.durable_queue_arguments(
                {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.queue.name}
            ),
        )
        cfg = self.container.config
        self.publisher = Publisher(
            cfg[AMQP_URI_CONFIG_KEY],
            ssl=cfg.get(AMQP_SSL_CONFIG_KEY),
            login_method=cfg.get(LOGIN_METHOD_CONFIG_KEY),
            use_confirms=True,
            declare=[self.retry_queue, dead_letter_queue()],
        )

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None or self.handler_type is not SERVICE_POOL:
            return super().handle_result(message, worker_ctx, result, exc_info)
        try:
            self._retry_or_park(message, exc_info)
        except Exception:  # noqa: BLE001 - the broker is away: keep the message
            log.warning("could not republish a failed event of %s; requeued", self.method_name, exc_info=True)
            self.queue_consumer.requeue_message(message)
        else:
            self.queue_consumer.ack_message(message)
        return result, exc_info

    def _retry_or_park(self, message, exc_info):
        headers = dict(message.headers or {})
        tries = int(headers.get(TRIES, 0) or 0) + 1
        headers[TRIES] = tries
        # The error's type only: a message could quote a child's text.
        headers["x-chatvakt-error"] = exc_info[0].__name__
        service = self.container.service_name
        raw = dict(body=message.body, content_type=message.content_type, content_encoding=message.content_encoding)
        if tries >= max_tries():
            headers.update(
                {
                    "x-chatvakt-queue": self.queue.name,
                    "x-chatvakt-service": service,
                    "x-chatvakt-handler": self.method_name,
                    "x-chatvakt-source": self.source_service,
                    "x-chatvakt-event": self.event_type,
                }
            )
            headers.pop("x-death", None)
            self._publish(raw, DEAD_LETTER_QUEUE, headers, expiration=dead_letter_ttl_s())
            DEAD_LETTERS.labels(service=service, handler=self.method_name).inc()
            log.error(
                "event %s.%s failed %d times in %s.%s (%s); parked in %s",
                self.source_service,
                self.event_type,
                tries,
                service,
                self.method_name,
                exc_info[0].__name__,
                DEAD_LETTER_QUEUE,
            )
        else:
            self._publish(raw, self.retry_queue.name, headers, expiration=retry_delay(tries))
            RETRIES.labels(service=service, handler=self.method_name).inc()
            log.warning(
                "event %s.%s failed in %s.%s (%s), try %d of %d; retrying",
                self.source_service,
                self.event_type,
                service,
                self.method_name,
                exc_info[0].__name__,
                tries,
                max_tries(),
            )

    def _publish(self, raw, queue_name, headers, expiration=None):
        # The body goes back as it came (already serialised), with its content type.
        self.publisher.publish(
            raw["body"],
            exchange="",
            routing_key=queue_name,
            headers=headers,
            content_type=raw["content_type"],
            content_encoding=raw["content_encoding"],
            expiration=expiration,
            mandatory=True,
        )


event_handler = RetryingEventHandler.decorator
