"""`chatvakt dead-letters list|replay|drop`: what ops do with parked events.

A parked event's body may hold a child's words: nothing here prints, logs or
writes a body. `list` shows counts by event and handler (from the headers
chatvakt/handlers.py set); `replay` sends each one back to the queue of the
handler that failed, with a fresh try counter; `drop` deletes them.
"""

import collections
import sys

from kombu import Connection

from chatvakt import config
from chatvakt.handlers import DEAD_LETTER_QUEUE, TRIES


def _each(connection, queue, limit):
    """Take parked messages one by one (unacked until the caller decides)."""
    channel = connection.channel()
    try:
        for _ in range(limit):
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                break
            yield channel, message
    finally:
        channel.close()  # anything not acked goes back to the queue, in order


def _headers(message):
    return message.properties.get("application_headers") or {}


def _name(headers):
    return (
        f"{headers.get('x-chatvakt-source', '?')}.{headers.get('x-chatvakt-event', '?')} -> "
        f"{headers.get('x-chatvakt-service', '?')}.{headers.get('x-chatvakt-handler', '?')}"
    )


def _matches(headers, event):
    return event is None or headers.get("x-chatvakt-event") == event


def summary(uri, queue=DEAD_LETTER_QUEUE, limit=100_000):
    """{"event -> handler": {"count": n, "errors": {type: n}}}; the messages stay."""
    found = collections.OrderedDict()
    with Connection(uri) as connection:
        for _channel, message in _each(connection, queue, limit):
            headers = _headers(message)
            entry = found.setdefault(_name(headers), {"count": 0, "errors": collections.Counter()})
            entry["count"] += 1
            entry["errors"][str(headers.get("x-chatvakt-error", "?"))] += 1
    return found


def replay(uri, queue=DEAD_LETTER_QUEUE, event=None, limit=100_000):
    """Send parked events back to their handler's queue; returns how many."""
    sent = 0
    with Connection(uri) as connection:
        producer = connection.Producer()
        for channel, message in _each(connection, queue, limit):
            headers = dict(_headers(message))
            target = headers.get("x-chatvakt-queue")
            if not target or not _matches(headers, event):
                continue
            for key in [k for k in headers if k.startswith("x-chatvakt-") or k == "x-death"]:
                headers.pop(key)
            headers[TRIES] = 0
            producer.publish(
                message.body,
                exchange="",
                routing_key=target,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                serializer=None,
                delivery_mode=2,
            )
            channel.basic_ack(message.delivery_tag)
            sent += 1
    return sent


def drop(uri, queue=DEAD_LETTER_QUEUE, event=None, limit=100_000):
    """Delete parked events (all, or one event's); returns how many."""
    dropped = 0
    with Connection(uri) as connection:
        for channel, message in _each(connection, queue, limit):
            if _matches(_headers(message), event):
                channel.basic_ack(message.delivery_tag)
                dropped += 1
    return dropped


def main(args):
    uri = config.amqp_uri()
    queue = args.queue
    try:
        if args.dead_letters_command == "list":
            found = summary(uri, queue)
            total = sum(e["count"] for e in found.values())
            print(
                f"{queue}: {total} parked event(s) (each expires "
                f"{config.env_float('CHATVAKT_DEAD_LETTER_TTL_S', 7 * 24 * 3600.0) / 86400:g} "
                "day(s) after it was parked)"
            )
            for name, entry in found.items():
                errors = ", ".join(f"{k} {v}" for k, v in entry["errors"].most_common())
                print(f"  {entry['count']:6d}  {name}  ({errors})")
        elif args.dead_letters_command == "replay":
            print(f"{queue}: {replay(uri, queue, args.event)} event(s) sent back to their handlers")
        else:
            print(f"{queue}: {drop(uri, queue, args.event)} event(s) dropped")
    except Exception as exc:  # noqa: BLE001 - a command reports, it does not explain
        print(f"chatvakt: dead letters: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0
