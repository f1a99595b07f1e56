"""Pieces every nameko service class shares: its database, dispatcher and
outbox, the ping, the outbox sweeper, the metrics gauges and the one way a
worker runs a unit of work (transaction, then publish)."""

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import eventlet
from kombu import Connection
from nameko.events import EventDispatcher
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy.exc import IntegrityError

from chatvakt import config
from chatvakt.db import READ_ONLY, Database, read_only
from chatvakt.handlers import DEAD_LETTER_QUEUE, dead_letter_count
from chatvakt.observability import METRICS_INTERVAL_S, Observed
from chatvakt.outbox import Outbox

log = logging.getLogger(__name__)


class _Recorder:
    """Hands domain code the outbox while remembering what this transaction wrote."""

    def __init__(self, outbox):
        self.outbox = outbox
        self.rows = []

    def add(self, session, name, payload):
        self.rows.append(self.outbox.add(session, name, payload))


def run_unit(sessions, outbox, dispatch, fn, *args, **kwargs):
    """Run `fn(session, outbox, ...)` in one transaction, then publish its events.

    A unique-key collision means a concurrent replica did the same thing first
    (e.g. the same client_msg_id sent twice at once): run again, and the domain
    code finds the earlier row.
    """
    return _unit(_in_session, sessions, outbox, dispatch, fn, args, kwargs)


def run_core_unit(sessions, outbox, dispatch, fn, *args, **kwargs):
    """run_unit on a plain SQLAlchemy Core connection instead of an ORM session,
    for domain code that only executes Core statements: the relay's hot path,
    where the session's own bookkeeping was about a seventh of the chat
    service's CPU per message (issue 16). Same transaction, same SQLite
    write lock (its `begin` hook is the engine's), same events."""
    return _unit(_on_connection, sessions, outbox, dispatch, fn, args, kwargs)


@contextlib.contextmanager
def _in_session(sessions):
    with sessions() as session, session.begin():
        yield session


def _on_connection(sessions):
    return sessions.kw["bind"].begin()


def _unit(transaction, sessions, outbox, dispatch, fn, args, kwargs):
    for attempt in range(5):
        recorder = _Recorder(outbox)
        try:
            with transaction(sessions) as session:
                result = fn(session, recorder, *args, **kwargs)
            break
        except IntegrityError:
            if attempt == 4:
                raise
            eventlet.sleep(0.005 * (attempt + 1))
    outbox.publish(sessions, dispatch, recorder.rows)
    return result


def read(sessions, fn, *args, **kwargs):
    with sessions() as session:
        return fn(read_only(session), *args, **kwargs)


def read_core(sessions, fn, *args, **kwargs):
    """read on a plain Core connection instead of an ORM session, for domain
    code that only runs Core statements: a session's making and closing cost
    the risk screen more than its one query (issue 16). A reader, as read's:
    on SQLite it takes no write lock."""
    with sessions.kw["bind"].connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            return fn(conn, *args, **kwargs)


def providers(name, metadata, outbox_table):
    """A service's own database, its event dispatcher and its outbox, for the
    class body: `db, dispatch, outbox = providers(ev.CHAT, metadata, outbox)`."""
    return Database(name, metadata), EventDispatcher(), Outbox(outbox_table, name)


class ServiceBase:
    """Mixed into every service class: a ping for /readyz and probes, the
    sweeper that republishes outbox rows a crashed worker left behind, and the
    timer that sets the service's gauges."""

    outbox = None  # set by services that own an outbox
    # Set by each service class. On the class `db` and `dispatch` are nameko
    # dependency providers; a worker sees what they provide (a sessionmaker, a
    # dispatch function), which no one type says.
    name: str
    db: Any
    dispatch: Any
    # (the domain's metrics snapshot, {a field of it: the gauge it sets}), or None
    gauges: tuple[Callable[..., dict], dict[str, Any]] | None = None
    observed = Observed()

    @rpc
    def ping(self):
        return {"service": self.name, "ok": True}

    @rpc
    def dead_letters(self):
        """Events parked after their last try (chatvakt/handlers.py), for ops and probes."""
        with Connection(config.amqp_uri()) as connection:
            return {"queue": DEAD_LETTER_QUEUE, "messages": dead_letter_count(connection)}

    @timer(interval=1.0)
    def sweep_outbox(self):
        if self.outbox is not None:
            sent = self.outbox.sweep(self.db, self.dispatch)
            if sent:
                log.info("outbox sweeper republished %d event(s)", sent)

    @timer(interval=METRICS_INTERVAL_S)
    def report_metrics(self):
        if self.gauges is not None:
            snapshot, fields = self.gauges
            values = self.read(snapshot)
            for field, gauge in fields.items():
                gauge.set(values[field])

    def unit(self, fn, *args, **kwargs):
        return run_unit(self.db, self.outbox, self.dispatch, fn, *args, **kwargs)

    def read(self, fn, *args, **kwargs):
        return read(self.db, fn, *args, **kwargs)

    def read_core(self, fn, *args, **kwargs):
        return read_core(self.db, fn, *args, **kwargs)
