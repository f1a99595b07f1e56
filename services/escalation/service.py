"""The escalation service as a nameko service: wiring only."""
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc

from chatvakt import events as ev
from chatvakt.db import Database
from chatvakt.outbox import Outbox
from chatvakt.service import ServiceBase

from . import domain
from .models import metadata, outbox



class EscalationService(ServiceBase):
    name = ev.ESCALATION

    db = Database(ev.ESCALATION, metadata)
    dispatch = EventDispatcher()
    outbox = Outbox(outbox, ev.ESCALATION)

    @event_handler(ev.CHAT, ev.MESSAGE_POSTED)
    def on_message_posted(self, payload):
        data = ev.load(ev.CHAT, ev.MESSAGE_POSTED, payload)
        if data["sender"] != "child":
            return
        from .risk import default_screen
        self.unit(domain.screen_message, default_screen(), data["chat_id"], data["seq"],
                  data["text"], data["counsellor_id"])

    @rpc
    def flags(self, chat_id):
        return self.read(domain.flags_for, chat_id)

    @rpc
    def raise_escalation(self, chat_id, kind, details, actor, counsellor_id=None):
        return self.unit(domain.raise_escalation, chat_id, kind, details, actor, counsellor_id)

    @rpc
    def list_escalations(self, actor, status=None):
        return self.unit(domain.list_escalations, actor, status)

    @rpc
    def get_escalation(self, escalation_id, actor):
        return self.unit(domain.get_escalation, escalation_id, actor)

    @rpc
    def directory(self):
        return domain.directory()
