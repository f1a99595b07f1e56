"""The chat relay as a nameko service: wiring only, the work is in domain.py."""
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc

from chatvakt import config
from chatvakt import events as ev
from chatvakt.db import Database
from chatvakt.outbox import Outbox
from chatvakt.service import ServiceBase

from . import domain
from .models import metadata, outbox


class ChatService(ServiceBase):
    name = ev.CHAT

    db = Database(ev.CHAT, metadata)
    dispatch = EventDispatcher()
    outbox = Outbox(outbox, ev.CHAT)

    @rpc
    def start_chat(self, gender=None, age=None, nickname=None, message=None):
        return self.unit(domain.start_chat, helpline=config.helpline_name(), gender=gender,
                         age=age, nickname=nickname, message=message)

    @rpc
    def post_message(self, chat_id, actor, text, client_msg_id=None):
        return self.unit(domain.post_message, chat_id, actor, text, client_msg_id)

    @rpc
    def get_chat(self, chat_id, actor):
        return self.read(domain.get_chat, chat_id, actor)

    @rpc
    def list_messages(self, chat_id, actor, after=0):
        return self.read(domain.list_messages, chat_id, actor, after)

    @rpc
    def end_chat(self, chat_id, actor, ended_by=None):
        return self.unit(domain.end_chat, chat_id, actor, ended_by)

    @rpc
    def activate(self, chat_id, counsellor_id, counsellor_name):
        return self.unit(domain.activate, chat_id, counsellor_id, counsellor_name)

    @rpc
    def transfer(self, chat_id, actor, to_id, to_name, note=None):
        return self.unit(domain.transfer, chat_id, actor, to_id, to_name, note)

    @rpc
    def typing(self, chat_id, actor):
        chat = self.read(domain.get_chat, chat_id, actor)
        if chat["status"] in domain.OPEN:
            sender = "child" if actor.get("role") == "child" else "counsellor"
            counsellor = chat["counsellor"]["id"] if chat["counsellor"] else None
            self.dispatch(ev.TYPING, ev.dump(ev.CHAT, ev.TYPING, {
                "chat_id": chat_id, "sender": sender, "counsellor_id": counsellor}))
        return {"ok": True}

    @event_handler(ev.QUEUE, ev.CHAT_ASSIGNED)
    def on_chat_assigned(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_ASSIGNED, payload)
        try:
            self.unit(domain.activate, data["chat_id"], data["counsellor_id"],
                      data["counsellor_name"])
        except Exception as error:  # noqa: BLE001 - a chat that already ended is fine
            if not isinstance(error, domain.Conflict):
                raise
