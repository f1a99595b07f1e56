"""Transactional outbox: an event is written in the same transaction as the
state change that caused it, then published after the commit.

Publishing straight after a commit loses the event if the process dies in
between; a child's message or place in the queue must not hang on that. So
the row is written with the change and handed, as written, to the process's
publisher: one green thread that takes every row committed meanwhile,
publishes them as one batch on its own channel without waiting, a second
reads the broker's confirms, and a third deletes what was confirmed, many
rows a statement. The body is the JSON the row holds: serialised once, when written.
A timer in every replica republishes rows whose claim has run out (their
writer died, or the broker was away), so an event is delivered at least
once; consumers are idempotent.
"""

import collections
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, cast

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, bindparam, delete, or_, select, update

from chatvakt import events
from chatvakt.clock import utcnow
from chatvakt.db import Prepared

if TYPE_CHECKING:
    import amqp
    from kombu import Connection

log = logging.getLogger(__name__)

CLAIM = dt.timedelta(seconds=10)

OutboxRow = collections.namedtuple("OutboxRow", "id event payload")


def outbox_table(metadata):
    return Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("claimed_until", DateTime(timezone=True), nullable=True, index=True),
    )


class Outbox:
    def __init__(self, table, source):
        self.table = table
        self.source = source
        # Every unit of work that publishes runs the insert (chatvakt.db.Prepared);
        # the delete is built once, as a reused statement keeps its cache key.
        self._insert = Prepared(
            table.insert().returning(table.c.id), column_keys=("event", "payload", "created_at", "claimed_until")
        )
        self._delete = delete(table).where(table.c.id.in_(bindparam("ids", expanding=True)))

    def add(self, session, name, payload):
        """Record an event inside the caller's transaction; returns the row as written."""
        data = events.dump(self.source, name, payload)
        body = json.dumps(data)
        # A row keeps the key it is published under (events.routing_key), which
        # is the event's name for all but a message that is not the child's.
        key = events.routing_key(name, data)
        now = utcnow()
        row_id = self._insert.scalar_one(
            session, {"event": key, "payload": body, "created_at": now, "claimed_until": now + CLAIM}
        )
        return OutboxRow(row_id, key, body)

    def publish(self, sessions, dispatch, rows):
        """Hand the rows a worker just committed (it still holds them: no read
        back on the relay's hot path) to the batch publisher, and return."""
        if not rows:
            return
        # One publisher per service container (its session factory): a test
        # may run several containers, on several brokers, in one process.
        batchers = getattr(sessions, "chatvakt_batchers", None)
        if batchers is None:
            try:
                batchers = sessions.chatvakt_batchers = {}
            except AttributeError:  # not ours to mark: publish as the worker
                self._send(sessions, dispatch, rows)
                return
        batcher = batchers.get(self.source)
        if batcher is None:
            batcher = batchers[self.source] = Batcher(self, sessions, dispatch)
        batcher.put(rows)

    def sweep(self, sessions, dispatch, limit=200):
        """Republish rows whose writer did not finish (crashed, or the broker was down)."""
        now = utcnow()
        with sessions() as session, session.begin():
            ids = (
                session.execute(
                    select(self.table.c.id)
                    .where(or_(self.table.c.claimed_until.is_(None), self.table.c.claimed_until < now))
                    .order_by(self.table.c.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            if not ids:
                return 0
            # Claim them so another replica's sweeper leaves them alone meanwhile.
            session.execute(
                update(self.table)
                .where(self.table.c.id.in_(ids))
                .where(or_(self.table.c.claimed_until.is_(None), self.table.c.claimed_until < now))
                .values(claimed_until=now + CLAIM)
            )
            rows = session.execute(select(self.table).where(self.table.c.id.in_(ids)).order_by(self.table.c.id)).all()
        self._send(sessions, dispatch, rows)
        return len(rows)

    def _send(self, sessions, dispatch, rows):
        sent = []
        try:
            for row in rows:
                dispatch(row.event, json.loads(row.payload))
                sent.append(row.id)
        except Exception:
            # The broker is away: the rows stay and the sweeper retries them.
            log.warning("outbox publish failed; %d event(s) left for the sweeper", len(rows) - len(sent), exc_info=True)
        finally:
            if sent:
                with sessions() as session, session.begin():
                    session.execute(self._delete, {"ids": sent})

    def pending(self, sessions):
        with sessions() as session:
            return session.execute(select(self.table.c.id)).scalars().all()


BATCH_MAX = 500
DELETE_GATHER_S = 0.2


class Batcher:
    """The process's outbox publisher (see the module's text).

    It publishes on a kombu connection of its own to the source's events
    exchange, as nameko's EventDispatcher would (topic `{source}.events`,
    the event name as routing key, persistent, JSON), so every handler sees
    the same message.

    Publishing does not wait for the broker's confirms: a second green thread
    reads them and hands what was confirmed to the deleter. A confirm of a
    persistent message waits for the broker's disk, and on this machine that
    was up to 250 ms at the 99th percentile (raw pika in `make bench`); with
    one batch at a time, every message written meanwhile waited for it too,
    though the pushes of the batch before had long gone out (issue 16). A row
    the broker refuses (nack) or never confirms, because its connection died,
    stays in the table, and the sweeper publishes it again once its claim
    runs out; the next batch opens a new connection.
    """

    def __init__(self, outbox, sessions, dispatch):
        import eventlet
        from eventlet.queue import LightQueue

        self.outbox = outbox
        self.sessions = sessions
        self.dispatch = dispatch
        self.queue = LightQueue()
        self.connection: Connection | None = None
        self.channel: amqp.Channel | None = None
        self.exchange = f"{outbox.source}.events"
        self.published_ids = LightQueue()
        # delivery tag -> row id, of the connection in use, until confirmed
        self.unconfirmed: dict[int, int] = {}
        self.tag = 0
        self.batches = 0
        self.published = 0
        eventlet.spawn_n(self._run)
        eventlet.spawn_n(self._delete)

    def put(self, rows):
        for row in rows:
            self.queue.put(row)

    def _take(self):
        rows = [self.queue.get()]
        while len(rows) < BATCH_MAX:
            try:
                rows.append(self.queue.get_nowait())
            except Exception:  # noqa: BLE001 - eventlet.queue.Empty
                break
        return rows

    def _run(self):
        while True:
            rows = self._take()
            try:
                try:
                    self._publish(rows)
                except Exception:  # noqa: BLE001 - a connection gone stale: once more on a new one
                    self._drop_connection()
                    self._publish(rows)
            except Exception:  # noqa: BLE001 - the broker is away: the sweeper retries
                log.warning("outbox publish failed; %d event(s) left for the sweeper", len(rows), exc_info=True)
                self._drop_connection()

    def _delete(self):
        import eventlet

        while True:
            ids = [self.published_ids.get()]
            # A moment for more to come: one write transaction (and one turn
            # at the write lock the relay's writers queue on) for several
            # batches instead of one each (issue 16). A crash meanwhile only
            # leaves rows the sweeper republishes, as a crash always could.
            eventlet.sleep(DELETE_GATHER_S)
            while len(ids) < BATCH_MAX:
                try:
                    ids.append(self.published_ids.get_nowait())
                except Exception:  # noqa: BLE001 - eventlet.queue.Empty
                    break
            try:
                with self.sessions() as session, session.begin():
                    session.execute(self.outbox._delete, {"ids": ids})
            except Exception:  # noqa: BLE001 - published twice later is fine (idempotent consumers)
                log.warning("outbox delete failed; the sweeper republishes %d event(s)", len(ids), exc_info=True)

    def _channel(self):
        if self.channel is None:
            import eventlet
            from kombu import Connection

            from chatvakt import config

            uri = getattr(self.sessions, "chatvakt_amqp_uri", None) or config.amqp_uri()
            connection = Connection(uri, heartbeat=0)
            connection.ensure_connection(max_retries=1)
            # Only the confirm reader reads this connection. py-amqp would also
            # read it before every publish (to see connection.blocked early),
            # and two green threads reading one AMQP stream could split a frame
            # between them; the reader handles connection.blocked as it comes.
            amqp_connection = cast("amqp.Connection", connection.connection)
            amqp_connection.client_properties.setdefault("capabilities", {})["connection.blocked"] = False
            # kombu types this as its abstract channel; on the pyamqp transport it is
            # amqp's, which has the confirms and the events used below.
            channel = cast("amqp.Channel", connection.default_channel)
            # The exchange is nameko's: its EventDispatcher declared it at start.
            channel.confirm_select()
            unconfirmed: dict[int, int] = {}

            def on_ack(tag, multiple):
                self._confirmed(unconfirmed, tag, multiple, True)

            def on_nack(tag, multiple):
                self._confirmed(unconfirmed, tag, multiple, False)

            channel.events["basic_ack"].add(on_ack)
            channel.events["basic_nack"].add(on_nack)
            self.unconfirmed, self.tag = unconfirmed, 0
            self.connection, self.channel = connection, channel
            eventlet.spawn_n(self._confirms, connection)
        return self.channel

    def _confirmed(self, unconfirmed, tag, multiple, ok):
        if multiple:
            tags = []
            for pending in unconfirmed:  # in the order published
                if pending > tag:
                    break
                tags.append(pending)
        else:
            tags = [tag]
        for pending in tags:
            row_id = unconfirmed.pop(pending, None)
            if row_id is not None and ok:
                self.published_ids.put(row_id)
        if not ok:
            log.warning("the broker refused %d event(s); the sweeper publishes them again", len(tags))

    def _confirms(self, connection: "Connection"):
        """Read the broker's confirms for as long as `connection` is the one in use."""
        import socket

        while self.connection is connection:
            try:
                connection.drain_events(timeout=1)
            except socket.timeout:
                continue
            except Exception:  # noqa: BLE001 - the connection died: its unconfirmed rows stay for the sweeper
                if self.connection is connection:
                    log.warning("outbox connection lost; the sweeper publishes what it did not confirm")
                    self._drop_connection()
                return

    def _publish(self, rows):
        from amqp import Message

        channel = self._channel()
        unconfirmed = self.unconfirmed
        for row in rows:
            body = row.payload.encode() if isinstance(row.payload, str) else row.payload
            self.tag += 1
            # Before the publish: its confirm may be read while the publish writes.
            unconfirmed[self.tag] = row.id
            try:
                channel.basic_publish(
                    Message(
                        body,
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        application_headers={},
                    ),
                    exchange=self.exchange,
                    routing_key=row.event,
                )
            except Exception:
                unconfirmed.pop(self.tag, None)
                raise
        self.batches += 1
        self.published += len(rows)

    def _drop_connection(self):
        connection, self.connection, self.channel = self.connection, None, None
        try:
            if connection is not None:
                connection.close()
        except Exception:  # noqa: BLE001
            pass
