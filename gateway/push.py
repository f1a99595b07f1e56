"""WebSocket: authenticate a socket, then push the services' events to it.

BROADCAST handlers: every gateway replica sees every event and pushes to the
sockets it holds. They may miss events while a replica is down, so all that
is pushed is also fetchable."""
from nameko.events import BROADCAST, event_handler
from nameko.web.websocket import rpc as ws_rpc

from chatvakt import errors
from chatvakt import events as ev
from chatvakt.db import parse_iso, utcnow

from . import accounts, metrics
from .base import (CHAN_QUEUE, CHAN_SUPERVISORS, SUPERVISORS, _chan_chat, _chan_counsellor,
                   _last_positions)


class Push:
    @ws_rpc
    def auth(self, socket_id, token=None):
        with self.db() as session:
            actor = accounts.resolve(session, token)
        channels = []
        if actor["role"] == "child":
            channels.append(_chan_chat(actor["chat_id"]))
        else:
            channels += [_chan_counsellor(actor["id"]), CHAN_QUEUE]
            if actor["role"] in SUPERVISORS:
                channels.append(CHAN_SUPERVISORS)
        for channel in channels:
            self.hub.subscribe(socket_id, channel)
        # Lives as long as the socket: nameko drops the connection on disconnect.
        self.hub.connections[socket_id].context_data["actor"] = actor
        metrics.WEBSOCKETS.set(len(self.hub.connections))
        return {"role": actor["role"], "chat_id": actor.get("chat_id"), "id": actor.get("id")}

    @event_handler(ev.CHAT, ev.MESSAGE_POSTED, handler_type=BROADCAST, reliable_delivery=False)
    def push_message(self, payload):
        data = ev.load(ev.CHAT, ev.MESSAGE_POSTED, payload)
        out = {"chat_id": data["chat_id"], "seq": data["seq"], "sender": data["sender"],
               "text": data["text"], "sent_at": data["sent_at"], "kind": data["kind"]}
        staff = [CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            staff.append(_chan_counsellor(data["counsellor_id"]))
        if data["visibility"] == "all":
            self._push([_chan_chat(data["chat_id"])], "chat.message", out)
        self._push(staff, "chat.message", {**out, "visibility": data["visibility"]})
        sent = parse_iso(data["sent_at"])
        metrics.RELAY_LATENCY.observe(max(0.0, (utcnow() - sent).total_seconds()))

    @event_handler(ev.CHAT, ev.TYPING, handler_type=BROADCAST, reliable_delivery=False)
    def push_typing(self, payload):
        data = ev.load(ev.CHAT, ev.TYPING, payload)
        out = {"chat_id": data["chat_id"], "sender": data["sender"]}
        if data["sender"] == "child":
            targets = [CHAN_SUPERVISORS] + ([_chan_counsellor(data["counsellor_id"])]
                                            if data["counsellor_id"] else [])
        else:
            targets = [_chan_chat(data["chat_id"])]
        self._push(targets, "chat.typing", out)

    @event_handler(ev.CHAT, ev.CHAT_ENDED, handler_type=BROADCAST, reliable_delivery=False)
    def push_ended(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_ENDED, payload)
        _last_positions.pop(data["chat_id"], None)
        targets = [_chan_chat(data["chat_id"]), CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            targets.append(_chan_counsellor(data["counsellor_id"]))
        self._push(targets, "chat.ended", {"chat_id": data["chat_id"], "ended_by": data["ended_by"],
                                            "status": data["status"]})

    @event_handler(ev.QUEUE, ev.CHAT_ASSIGNED, handler_type=BROADCAST, reliable_delivery=False)
    def push_assigned(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_ASSIGNED, payload)
        _last_positions.pop(data["chat_id"], None)
        first = data["counsellor_name"].split()[0] if data["counsellor_name"].strip() else ""
        self._push([_chan_chat(data["chat_id"])], "chat.assigned",
                   {"chat_id": data["chat_id"], "counsellor": {"name": first}})
        self._push([_chan_counsellor(data["counsellor_id"]), CHAN_SUPERVISORS], "chat.assigned",
                   {"chat_id": data["chat_id"],
                    "counsellor": {"name": first, "id": data["counsellor_id"]}})

    @event_handler(ev.QUEUE, ev.QUEUE_CHANGED, handler_type=BROADCAST, reliable_delivery=False)
    def push_queue(self, payload):
        data = ev.load(ev.QUEUE, ev.QUEUE_CHANGED, payload)
        metrics.QUEUE_WAITING.set(len(data["waiting"]))
        self._push([CHAN_QUEUE], "queue.changed", {
            "waiting": [{**entry, "waiting_since": entry["waiting_since"]} for entry in data["waiting"]],
            "waiting_count": len(data["waiting"]),
            "available_counsellors": data["available_counsellors"]})
        for entry in data["waiting"]:
            now = (entry["position"], entry["estimated_wait_s"])
            if _last_positions.get(entry["chat_id"]) != now:
                _last_positions[entry["chat_id"]] = now
                self._push([_chan_chat(entry["chat_id"])], "queue.position", {
                    "chat_id": entry["chat_id"], "position": entry["position"],
                    "estimated_wait_s": entry["estimated_wait_s"],
                    "available_counsellors": data["available_counsellors"]})

    @event_handler(ev.ESCALATION, ev.RISK_DETECTED, handler_type=BROADCAST, reliable_delivery=False)
    def push_alert(self, payload):
        data = ev.load(ev.ESCALATION, ev.RISK_DETECTED, payload)
        targets = [CHAN_SUPERVISORS]
        targets.append(_chan_counsellor(data["counsellor_id"]) if data["counsellor_id"] else CHAN_QUEUE)
        self._push(targets, "escalation.alert", {
            "chat_id": data["chat_id"], "kind": "risk", "category": data["category"],
            "severity": data["severity"], "reason": data["reason"], "seq": data["seq"],
            "detected_at": data["detected_at"]})

    @event_handler(ev.CODING, ev.CODING_REQUIRED, handler_type=BROADCAST, reliable_delivery=False)
    def push_coding_required(self, payload):
        data = ev.load(ev.CODING, ev.CODING_REQUIRED, payload)
        if data["counsellor_id"]:
            self._push([_chan_counsellor(data["counsellor_id"])], "coding.required",
                       {"chat_id": data["chat_id"]})

    @event_handler(ev.ESCALATION, ev.ESCALATION_RAISED, handler_type=BROADCAST, reliable_delivery=False)
    def push_escalation(self, payload):
        data = ev.load(ev.ESCALATION, ev.ESCALATION_RAISED, payload)
        self._push([CHAN_SUPERVISORS], "escalation.raised", data)

    @ws_rpc
    def typing(self, socket_id, chat_id=None):
        actor = self._socket_actor(socket_id)
        if actor["role"] == "child":
            chat_id = actor["chat_id"]
        if not isinstance(chat_id, str):
            raise errors.Invalid("chat_id is required.", {"chat_id": ["Required."]})
        self.chat.typing(chat_id, actor)
        return {"ok": True}
