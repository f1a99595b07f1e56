"""WebSocket: authenticate a socket, then push the services' events to it.

BROADCAST handlers: every gateway replica sees every event and pushes to the
sockets it holds. They may miss events while a replica is down, so all that
is pushed is also fetchable."""

import logging
import time

from nameko.events import BROADCAST, event_handler

from chatvakt import config, errors
from chatvakt import events as ev
from chatvakt.clock import parse_iso, utcnow
from chatvakt.handlers import event_handler as topic_handler
from chatvakt.messages import client_message

from . import accounts, metrics, presence
from .base import (
    CHAN_QUEUE,
    CHAN_SUPERVISORS,
    SUPERVISORS,
    _chan_chat,
    _chan_counsellor,
    _chat_checked,
    _last_positions,
    _token_cache,
    outcome,
    public_status,
)
from .sockets import rpc as ws_rpc

log = logging.getLogger(__name__)


# Per process: the flood notice supervisors last got, and when (issue 12).
_flood = {"latest": None, "dirty": False, "sent_at": float("-inf")}


def queue_push(data, first):
    """queue.changed as counsellors get it: the first `first` entries and counts."""
    waiting = data["waiting"]
    out = {
        "waiting": waiting[:first],
        "waiting_count": len(waiting),
        "at_risk_count": sum(1 for w in waiting if w["risk"] and not w.get("suspect")),
        "suspect_count": sum(1 for w in waiting if w.get("suspect")),
        "available_counsellors": data["available_counsellors"],
        "truncated": len(waiting) > first,
    }
    return out


ALERT_FIELDS = (
    "chat_id",
    "kind",
    "category",
    "severity",
    "reason",
    "seq",
    "detected_at",
    "alert_id",
    "escalation_id",
    "repeat",
    "raised",
    "categories",
    "categories_words",
)


def _alert_out(data):
    """escalation.alert as sockets get it, for the screen's and acute-danger alerts alike
    (a field an event does not carry is null)."""
    return {field: data.get(field) for field in ALERT_FIELDS}


class Push:
    @ws_rpc
    def auth(self, socket_id, token=None):
        if not isinstance(token, str):
            raise errors.Unauthorized("A valid token is required.")
        # The same resolution as HTTP: refuses a disabled account or a child
        # whose chat has ended.
        actor = self._resolve(token)
        channels = []
        if actor["role"] == "child":
            channels.append(_chan_chat(actor["chat_id"]))
        else:
            channels += [_chan_counsellor(actor["id"]), CHAN_QUEUE]
            presence.reporter.joined_socket(actor["id"])
            if actor["role"] in SUPERVISORS:
                channels.append(CHAN_SUPERVISORS)
        for channel in channels:
            self.hub.subscribe(socket_id, channel)
        # Lives as long as the socket: nameko drops the connection on disconnect.
        self.hub.connections[socket_id].context_data["actor"] = actor
        # Only the token's hash: sessions.py closes the socket when it is revoked.
        self.hub.connections[socket_id].context_data["token_digest"] = accounts.digest(token)
        metrics.WEBSOCKETS.set(len(self.hub.connections))
        return {"role": actor["role"], "chat_id": actor.get("chat_id"), "id": actor.get("id")}

    # Bound to both keys a message goes out under: the child's and the rest.
    @topic_handler(
        ev.CHAT, ev.MESSAGE_POSTED, binding=ev.MESSAGE_POSTED_ANY, handler_type=BROADCAST, reliable_delivery=False
    )
    def push_message(self, payload):
        data = ev.load(ev.CHAT, ev.MESSAGE_POSTED, payload)
        staff = [CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            staff.append(_chan_counsellor(data["counsellor_id"]))
        if data["visibility"] == "all":
            self._push([_chan_chat(data["chat_id"])], "chat.message", client_message(data, staff=False, chat_id=True))
        self._push(staff, "chat.message", client_message(data, staff=True, chat_id=True))
        sent = parse_iso(data["sent_at"])
        metrics.RELAY_LATENCY.observe(max(0.0, (utcnow() - sent).total_seconds()))

    @event_handler(ev.CHAT, ev.TYPING, handler_type=BROADCAST, reliable_delivery=False)
    def push_typing(self, payload):
        data = ev.load(ev.CHAT, ev.TYPING, payload)
        out = {"chat_id": data["chat_id"], "sender": data["sender"]}
        if data["sender"] == "child":
            targets = [CHAN_SUPERVISORS] + ([_chan_counsellor(data["counsellor_id"])] if data["counsellor_id"] else [])
        else:
            targets = [_chan_chat(data["chat_id"])]
        self._push(targets, "chat.typing", out)

    @event_handler(ev.CHAT, ev.CHAT_ENDED, handler_type=BROADCAST, reliable_delivery=False)
    def push_ended(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_ENDED, payload)
        _last_positions.pop(data["chat_id"], None)
        _chat_checked.pop(data["chat_id"], None)
        # The child's token dies with the chat, however it ended. Every replica
        # runs this (BROADCAST); deleting what another already deleted is fine.
        for token, (_expiry, actor) in list(_token_cache.items()):
            if actor["role"] == "child" and actor.get("chat_id") == data["chat_id"]:
                _token_cache.pop(token, None)
        try:
            self._tx(accounts.end_chat_tokens, data["chat_id"])
        except Exception as exc:  # noqa: BLE001 - the chat service's word still ends it (base.py)
            log.warning("could not end a chat's tokens (%s)", type(exc).__name__)
        targets = [_chan_chat(data["chat_id"]), CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            targets.append(_chan_counsellor(data["counsellor_id"]))
        self._push(
            targets,
            "chat.ended",
            {
                "chat_id": data["chat_id"],
                "ended_by": data["ended_by"],
                "status": public_status(data["status"]),
                "outcome": outcome(data["status"], data["ended_by"]),
            },
        )

    @event_handler(ev.QUEUE, ev.CHAT_ASSIGNED, handler_type=BROADCAST, reliable_delivery=False)
    def push_assigned(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_ASSIGNED, payload)
        _last_positions.pop(data["chat_id"], None)
        first = data["counsellor_name"].split()[0] if data["counsellor_name"].strip() else ""
        self._push(
            [_chan_chat(data["chat_id"])], "chat.assigned", {"chat_id": data["chat_id"], "counsellor": {"name": first}}
        )
        self._push(
            [_chan_counsellor(data["counsellor_id"]), CHAN_SUPERVISORS],
            "chat.assigned",
            {"chat_id": data["chat_id"], "counsellor": {"name": first, "id": data["counsellor_id"]}},
        )

    @event_handler(ev.QUEUE, ev.QUEUE_CHANGED, handler_type=BROADCAST, reliable_delivery=False)
    def push_queue(self, payload):
        data = ev.load(ev.QUEUE, ev.QUEUE_CHANGED, payload)
        metrics.QUEUE_WAITING.set(len(data["waiting"]))
        # Counts and the first entries only (issue 12): with 1,000 waiting the
        # whole list was ~300 KB per change to every counsellor socket. The
        # console fetches GET /api/v1/queue when `truncated` says there is more.
        self._push([CHAN_QUEUE], "queue.changed", queue_push(data, config.queue_push_first()))
        self._note_flood(data["flood"])
        notice = data["notice"]
        for entry in data["waiting"]:
            now = (entry["position"], entry["estimated_wait_s"], (notice or {}).get("code"))
            if _last_positions.get(entry["chat_id"]) != now:
                _last_positions[entry["chat_id"]] = now
                self._push(
                    [_chan_chat(entry["chat_id"])],
                    "queue.position",
                    {
                        "chat_id": entry["chat_id"],
                        "position": entry["position"],
                        "estimated_wait_s": entry["estimated_wait_s"],
                        "available_counsellors": data["available_counsellors"],
                        "notice": notice,
                    },
                )

    def _note_flood(self, flood):
        """Remember the latest flood notice; send it now unless one went out
        within CHATVAKT_FLOOD_NOTICE_S (report_seen's timer sends what waits)."""
        if flood != _flood["latest"]:
            _flood["latest"] = flood
            _flood["dirty"] = True
        self._flush_flood()

    def _flush_flood(self):
        now = time.monotonic()
        if not _flood["dirty"] or now - _flood["sent_at"] < config.flood_notice_s():
            return
        _flood["dirty"] = False
        _flood["sent_at"] = now
        latest = _flood["latest"]
        self._push([CHAN_SUPERVISORS], "queue.flood", {"active": latest is not None, **(latest or {})})

    @event_handler(ev.ESCALATION, ev.RISK_DETECTED, handler_type=BROADCAST, reliable_delivery=False)
    def push_alert(self, payload):
        data = ev.load(ev.ESCALATION, ev.RISK_DETECTED, payload)
        if data["suspect"]:
            return  # a flood chat: supervisors get one flood notice instead (queue.flood)
        targets = [CHAN_SUPERVISORS]
        targets.append(_chan_counsellor(data["counsellor_id"]) if data["counsellor_id"] else CHAN_QUEUE)
        self._push(targets, "escalation.alert", _alert_out({**data, "kind": "risk", "repeat": 0, "raised": False}))

    @event_handler(ev.CODING, ev.CODING_REQUIRED, handler_type=BROADCAST, reliable_delivery=False)
    def push_coding_required(self, payload):
        data = ev.load(ev.CODING, ev.CODING_REQUIRED, payload)
        out = {
            "chat_id": data["chat_id"],
            "uncoded": data["uncoded"],
            "reminder": data["reminder"],
            "overdue": data["overdue"],
        }
        if data["counsellor_id"]:
            self._push([_chan_counsellor(data["counsellor_id"])], "coding.required", out)
        if data["overdue"]:  # reminded often enough: a supervisor follows it up
            self._push([CHAN_SUPERVISORS], "coding.overdue", {**out, "counsellor_id": data["counsellor_id"]})

    @event_handler(ev.ESCALATION, ev.ESCALATION_RAISED, handler_type=BROADCAST, reliable_delivery=False)
    def push_escalation(self, payload):
        data = ev.load(ev.ESCALATION, ev.ESCALATION_RAISED, payload)
        self._push([CHAN_SUPERVISORS], "escalation.raised", data)

    @event_handler(ev.ESCALATION, ev.ESCALATION_UPDATED, handler_type=BROADCAST, reliable_delivery=False)
    def push_escalation_updated(self, payload):
        data = ev.load(ev.ESCALATION, ev.ESCALATION_UPDATED, payload)
        targets = [CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            targets.append(_chan_counsellor(data["counsellor_id"]))
        self._push(targets, "escalation.updated", data)

    @event_handler(ev.ESCALATION, ev.ALERT_REPEATED, handler_type=BROADCAST, reliable_delivery=False)
    def push_alert_repeated(self, payload):
        # Unacknowledged: again to whoever had it; once raised, to every
        # supervisor and, while the chat waits or its counsellor is silent, all staff.
        data = ev.load(ev.ESCALATION, ev.ALERT_REPEATED, payload)
        if data["suspect"]:
            return
        targets = [CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            targets.append(_chan_counsellor(data["counsellor_id"]))
        if data["raised"] or not data["counsellor_id"]:
            targets.append(CHAN_QUEUE)
        self._push(targets, "escalation.alert", _alert_out(data))

    @event_handler(ev.ESCALATION, ev.ALERT_RAISED, handler_type=BROADCAST, reliable_delivery=False)
    def push_alert_raised(self, payload):
        # A counsellor's acute-danger escalation: a stored alert like the
        # screen's, to every supervisor and the chat's counsellor.
        data = ev.load(ev.ESCALATION, ev.ALERT_RAISED, payload)
        targets = [CHAN_SUPERVISORS]
        if data["counsellor_id"]:
            targets.append(_chan_counsellor(data["counsellor_id"]))
        self._push(targets, "escalation.alert", _alert_out(data))

    @event_handler(ev.ESCALATION, ev.ALERT_ACKNOWLEDGED, handler_type=BROADCAST, reliable_delivery=False)
    def push_alert_acknowledged(self, payload):
        data = ev.load(ev.ESCALATION, ev.ALERT_ACKNOWLEDGED, payload)
        self._push([CHAN_QUEUE, CHAN_SUPERVISORS], "escalation.alert_acked", data)

    @ws_rpc
    def typing(self, socket_id, chat_id=None):
        actor = self._socket_actor(socket_id)
        if actor["role"] == "child":
            chat_id = actor["chat_id"]
        if not isinstance(chat_id, str):
            raise errors.Invalid("chat_id is required.", {"chat_id": ["Required."]})
        from .ratelimit import typing_throttle  # issue 4: flood guard before the RPC

        if not typing_throttle().allow((chat_id, actor["role"] == "child")):
            return {"ok": True}
        self.chat.typing(chat_id, actor)
        return {"ok": True}

    # -- issue 3: auto-assign offers and the counsellors' cool-down --

    @event_handler(ev.QUEUE, ev.CHAT_OFFERED, handler_type=BROADCAST, reliable_delivery=False)
    def push_offer(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_OFFERED, payload)
        self._push([_chan_counsellor(data["counsellor_id"])], "queue.offer", data)

    @event_handler(ev.QUEUE, ev.OFFER_WITHDRAWN, handler_type=BROADCAST, reliable_delivery=False)
    def push_offer_withdrawn(self, payload):
        data = ev.load(ev.QUEUE, ev.OFFER_WITHDRAWN, payload)
        self._push([_chan_counsellor(data["counsellor_id"])], "queue.offer_withdrawn", data)

    @event_handler(ev.QUEUE, ev.COUNSELLOR_COOLDOWN, handler_type=BROADCAST, reliable_delivery=False)
    def push_cooldown(self, payload):
        data = ev.load(ev.QUEUE, ev.COUNSELLOR_COOLDOWN, payload)
        self._push([CHAN_SUPERVISORS, _chan_counsellor(data["counsellor_id"])], "counsellor.cooldown", data)
