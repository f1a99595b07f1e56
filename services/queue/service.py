"""The intake queue as a nameko service: wiring only, the work is in domain.py."""
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc

from chatvakt import config
from chatvakt import events as ev
from chatvakt.db import Database
from chatvakt.outbox import Outbox
from chatvakt.service import ServiceBase

from . import domain
from .models import metadata, outbox


def default_capacity():
    return config.env_int("CHATVAKT_DEFAULT_CAPACITY", 3)


class QueueService(ServiceBase):
    name = ev.QUEUE

    db = Database(ev.QUEUE, metadata)
    dispatch = EventDispatcher()
    outbox = Outbox(outbox, ev.QUEUE)

    def _changed(self):
        # A snapshot, derived from the database: losing one is healed by the next,
        # so it is dispatched directly rather than through the outbox.
        self.dispatch(ev.QUEUE_CHANGED, ev.dump(ev.QUEUE, ev.QUEUE_CHANGED,
                                                self.read(domain.snapshot)))

    @rpc
    def snapshot(self):
        return self.read(domain.snapshot)

    @rpc
    def position(self, chat_id):
        return self.read(domain.position_of, chat_id)

    @rpc
    def enqueue(self, chat_id, queued_at, gender=None, age=None):
        if self.unit(domain.enqueue, chat_id, queued_at, gender, age):
            self._changed()
        return self.read(domain.position_of, chat_id)

    @rpc
    def take(self, counsellor_id, name, chat_id=None):
        result = self.unit(domain.take, counsellor_id, name, chat_id,
                           default_capacity=default_capacity())
        if result is not None:
            self._changed()
        return result

    @rpc
    def set_presence(self, counsellor_id, name, status, capacity=None):
        result = self.unit(domain.set_presence, counsellor_id, name, status, capacity,
                           default_capacity=default_capacity())
        self._changed()
        return result

    @rpc
    def set_priority(self, chat_id, priority, reason):
        self.unit(domain.set_priority, chat_id, priority, reason)
        self._changed()
        return self.read(domain.position_of, chat_id)

    @event_handler(ev.CHAT, ev.CHAT_STARTED)
    def on_chat_started(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_STARTED, payload)
        if self.unit(domain.enqueue, data["chat_id"], data["started_at"], data["gender"], data["age"]):
            self._changed()

    @event_handler(ev.ESCALATION, ev.RISK_DETECTED)
    def on_risk_detected(self, payload):
        data = ev.load(ev.ESCALATION, ev.RISK_DETECTED, payload)
        if self.unit(domain.raise_for_risk, data["chat_id"], data["severity"], data["reason"]):
            self._changed()

    @event_handler(ev.CHAT, ev.CHAT_TRANSFERRED)
    def on_chat_transferred(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_TRANSFERRED, payload)
        self.unit(domain.transfer, data["chat_id"], data["to_counsellor_id"],
                  data["to_counsellor_name"] or "", default_capacity=default_capacity())

    @event_handler(ev.CHAT, ev.CHAT_ENDED)
    def on_chat_ended(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_ENDED, payload)
        if self.unit(domain.finish, data["chat_id"], data["status"], data["ended_at"]):
            self._changed()
