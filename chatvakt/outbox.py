"""Transactional outbox: an event is written in the same transaction as the
state change that caused it, then published after the commit.

Publishing straight after a commit loses the event if the process dies in
between; a child's message or place in the queue must not hang on that. So
the row is written with the change, published at once by the worker that
wrote it, and deleted when the broker has confirmed it. A timer in every
replica republishes rows whose claim has run out (their writer died), so an
event is delivered at least once; consumers are idempotent.
"""
import collections
import datetime as dt
import json
import logging

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, delete, or_, select, update

from chatvakt import events
from chatvakt.db import utcnow

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

    def add(self, session, name, payload):
        """Record an event inside the caller's transaction; returns the row as written."""
        body = json.dumps(events.dump(self.source, name, payload))
        now = utcnow()
        result = session.execute(
            self.table.insert().values(
                event=name, payload=body, created_at=now, claimed_until=now + CLAIM
            )
        )
        return OutboxRow(result.inserted_primary_key[0], name, body)

    def publish(self, sessions, dispatch, rows):
        """Publish the rows a worker just committed (it still holds them: no
        read back on the relay's hot path), then forget them."""
        if rows:
            self._send(sessions, dispatch, rows)

    def sweep(self, sessions, dispatch, limit=200):
        """Republish rows whose writer did not finish (crashed, or the broker was down)."""
        now = utcnow()
        with sessions() as session, session.begin():
            ids = session.execute(
                select(self.table.c.id)
                .where(or_(self.table.c.claimed_until.is_(None), self.table.c.claimed_until < now))
                .order_by(self.table.c.id)
                .limit(limit)
            ).scalars().all()
            if not ids:
                return 0
            # Claim them so another replica's sweeper leaves them alone meanwhile.
            session.execute(
                update(self.table)
                .where(self.table.c.id.in_(ids))
                .where(or_(self.table.c.claimed_until.is_(None), self.table.c.claimed_until < now))
                .values(claimed_until=now + CLAIM)
            )
            rows = session.execute(
                select(self.table).where(self.table.c.id.in_(ids)).order_by(self.table.c.id)
            ).all()
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
            log.warning("outbox publish failed; %d event(s) left for the sweeper",
                        len(rows) - len(sent), exc_info=True)
        finally:
            if sent:
                with sessions() as session, session.begin():
                    session.execute(delete(self.table).where(self.table.c.id.in_(sent)))

    def pending(self, sessions):
        with sessions() as session:
            return session.execute(select(self.table.c.id)).scalars().all()
