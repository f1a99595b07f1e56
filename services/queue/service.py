"""The intake queue as a nameko service: wiring only, the work is in domain.py."""

import logging
import time

from nameko.rpc import rpc
from nameko.timer import timer

from chatvakt import config, observability
from chatvakt import events as ev
from chatvakt.clock import utcnow
from chatvakt.handlers import event_handler
from chatvakt.service import ServiceBase, providers

from . import domain
from .models import metadata, outbox

log = logging.getLogger(__name__)

# Timer intervals are fixed when the class is built, so they are read at import.
TICK_S = config.env_float("CHATVAKT_QUEUE_TICK_S", 1.0)
PUSH_S = config.env_float("CHATVAKT_QUEUE_PUSH_S", 0.25)


def default_capacity():
    return max(1, min(10, config.env_int("CHATVAKT_DEFAULT_CAPACITY", 3)))


def cooldown_s():
    return config.env_float("CHATVAKT_COOLDOWN_S", 900.0)


def presence_grace_s():
    return config.env_float("CHATVAKT_PRESENCE_GRACE_S", 60.0)


def presence_stale_s():
    # A gateway process reports at least this often; three silences in a row
    # mean it died, and its sockets with it.
    return 3 * config.env_float("CHATVAKT_PRESENCE_HEARTBEAT_S", 15.0)


def auto_assign():
    # On unless turned off (issue 13): an offer rings at one counsellor, so a
    # child is not left waiting while everyone assumes someone else will take it.
    return config.env("CHATVAKT_AUTO_ASSIGN", "1") not in ("0", "false", "no", "off")


def offer_timeout_s():
    return config.env_float("CHATVAKT_OFFER_TIMEOUT_S", 30.0)


def open_hours():
    return config.env("CHATVAKT_OPEN_HOURS", "00:00-24:00")


def timezone():
    return config.env("CHATVAKT_TIMEZONE", "Europe/Oslo")


def is_open(now=None):
    return domain.is_open(now or utcnow(), open_hours(), timezone())


# A mistyped CHATVAKT_OPEN_HOURS or CHATVAKT_TIMEZONE stops the service at start, not at the first tick.
is_open()


# Per process: when this replica started, and when a gateway last told it
# which waiting children it saw. A replica abandons no one until the gateways
# have had a grace's time to report to it, and abandons no one while no
# gateway reports at all: a gateway outage must not empty the queue of children
# who are still there and will be seen again once it is back.
_presence = {"started": time.monotonic(), "report": None}


def sweep_allowed(now_mono, grace_s, report_s):
    window = max(grace_s, 3 * report_s)
    if now_mono - _presence["started"] < grace_s:
        return False
    return _presence["report"] is not None and now_mono - _presence["report"] <= window


# Per process: the queue changed since the last queue_changed this replica
# sent. Bursts of takes are coalesced into one snapshot per PUSH_S, which keeps
# a take's latency independent of the queue's length.
_state = {"dirty": False, "open": None}


class QueueService(ServiceBase):
    name = ev.QUEUE

    db, dispatch, outbox = providers(ev.QUEUE, metadata, outbox)
    gauges = (
        domain.metrics_snapshot,
        {"waiting": observability.QUEUE_WAITING, "oldest_wait_s": observability.QUEUE_OLDEST_WAIT},
    )

    def _changed(self):
        _state["dirty"] = True

    @timer(interval=PUSH_S)
    def push_changes(self):
        # A snapshot, derived from the database: losing one is healed by the
        # next, so it is dispatched directly rather than through the outbox.
        if not _state["dirty"]:
            return
        _state["dirty"] = False
        try:
            snap = self.read(domain.snapshot, utcnow(), is_open())
            self.dispatch(ev.QUEUE_CHANGED, ev.dump(ev.QUEUE, ev.QUEUE_CHANGED, snap))
        except Exception:
            _state["dirty"] = True
            raise

    @timer(interval=TICK_S)
    def tick(self):
        """Time-driven rules; safe in every replica at once (conditional updates)."""
        now = utcnow()
        changed = bool(self.unit(domain.expire_presence, presence_grace_s(), presence_stale_s(), now))
        changed |= bool(self.unit(domain.expire_offers, now))
        if auto_assign():
            changed |= bool(self.unit(domain.make_offers, offer_timeout_s(), now))
        if sweep_allowed(time.monotonic(), config.absent_grace_s(), config.seen_report_s()):
            gone = self.unit(domain.sweep_absent, config.absent_grace_s(), now)
            if gone:
                log.info("absence: %d waiting chat(s) left the queue, their page gone", len(gone))
                changed = True
        open_now = is_open(now)
        if _state["open"] is not None and open_now != _state["open"]:
            changed = True
        _state["open"] = open_now
        if changed:
            self._changed()

    @rpc
    def snapshot(self):
        return self.read(domain.snapshot, utcnow(), is_open())

    @rpc
    def position(self, chat_id):
        return self.read(domain.position_of, chat_id, utcnow(), is_open())

    @rpc
    def enqueue(self, chat_id, queued_at, gender=None, age=None, source=None, suspect=False):
        if self.unit(domain.enqueue, chat_id, queued_at, gender, age, source, suspect):
            self._changed()
        return self.read(domain.position_of, chat_id, utcnow(), is_open())

    @rpc
    def take(self, counsellor_id, name, chat_id=None):
        result = self.unit(
            domain.take, counsellor_id, name, chat_id, default_capacity=default_capacity(), require_available=True
        )
        if result is not None:
            observability.QUEUE_WAIT.observe(result["waited_s"])
            self._changed()
        return result

    @rpc
    def accept_offer(self, counsellor_id, name, chat_id):
        result = self.unit(
            domain.take, counsellor_id, name, chat_id, default_capacity=default_capacity(), offer_only=True
        )
        self._changed()
        return result

    @rpc
    def decline_offer(self, counsellor_id, chat_id):
        result = self.unit(domain.decline_offer, counsellor_id, chat_id)
        self._changed()
        return result

    @rpc
    def presence(self, counsellor_id):
        return self.read(domain.get_presence, counsellor_id, default_capacity=default_capacity())

    @rpc
    def set_presence(self, counsellor_id, name, status, capacity=None, opt_in=None):
        result = self.unit(
            domain.set_presence,
            counsellor_id,
            name,
            status,
            capacity,
            default_capacity=default_capacity(),
            opt_in=opt_in,
        )
        self._changed()
        return result

    @rpc
    def set_priority(self, chat_id, priority, reason):
        self.unit(domain.set_priority, chat_id, priority, reason)
        self._changed()
        return self.read(domain.position_of, chat_id, utcnow(), is_open())

    @rpc
    def mark_risk(self, chat_id, at_risk):
        """A hand mark (issue 14) moves a waiting chat in or out of the at-risk tier."""
        changed = self.unit(domain.hand_mark, chat_id, at_risk)
        if changed:
            self._changed()
        return {"chat_id": chat_id, "changed": changed}

    @rpc
    def seen(self, chat_ids):
        """One gateway process saw these waiting children (sockets or requests)
        since its last report; an empty list is its heartbeat."""
        _presence["report"] = time.monotonic()
        if not isinstance(chat_ids, (list, tuple)):
            return {"ok": False, "seen": 0}
        return {"ok": True, "seen": self.unit(domain.seen, chat_ids[:100_000])}

    @rpc
    def report_sockets(self, gateway, counts):
        self.unit(domain.report_sockets, gateway, counts)
        return {"ok": True}

    @rpc
    def counsellors(self):
        return self.read(domain.counsellor_list)

    @rpc
    def stats(self, since=None, until=None):
        return self.read(domain.stats, since, until)

    @event_handler(ev.CHAT, ev.CHAT_STARTED)
    def on_chat_started(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_STARTED, payload)
        if self.unit(
            domain.enqueue,
            data["chat_id"],
            data["started_at"],
            data["gender"],
            data["age"],
            data["source"],
            data["suspect"],
        ):
            self._changed()

    @event_handler(ev.ESCALATION, ev.RISK_DETECTED)
    def on_risk_detected(self, payload):
        data = ev.load(ev.ESCALATION, ev.RISK_DETECTED, payload)
        if self.unit(
            domain.raise_for_risk, data["chat_id"], data["severity"], data["reason"], category=data["category"]
        ):
            self._changed()

    @event_handler(ev.ESCALATION, ev.ESCALATION_RAISED)
    def on_escalation_raised(self, payload):
        data = ev.load(ev.ESCALATION, ev.ESCALATION_RAISED, payload)
        if data["kind"] == "acute_danger":
            self.unit(domain.mark_acute, data["chat_id"], cooldown_s=cooldown_s())

    @event_handler(ev.CODING, ev.CHAT_CODED)
    def on_chat_coded(self, payload):
        data = ev.load(ev.CODING, ev.CHAT_CODED, payload)
        if data["acute_danger"]:
            self.unit(domain.mark_acute, data["chat_id"], cooldown_s=cooldown_s())

    @event_handler(ev.CHAT, ev.CHAT_TRANSFERRED)
    def on_chat_transferred(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_TRANSFERRED, payload)
        self.unit(
            domain.transfer,
            data["chat_id"],
            data["to_counsellor_id"],
            data["to_counsellor_name"] or "",
            default_capacity=default_capacity(),
        )

    @event_handler(ev.CHAT, ev.CHAT_ENDED)
    def on_chat_ended(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_ENDED, payload)
        if self.unit(
            domain.finish,
            data["chat_id"],
            data["status"],
            data["ended_at"],
            counsellor_id=data["counsellor_id"],
            cooldown_s=cooldown_s(),
        ):
            self._changed()
