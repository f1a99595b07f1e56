"""The gateway: HTTP and WebSocket edge of chatvakt.

Maps API.md's HTTP calls to RPC on the services (with deadlines), holds the
accounts and tokens, and pushes the services' events to the sockets that may
see them. Pushes are BROADCAST handlers so every replica sees every event;
they may miss events while a replica is down, so everything pushed is also
fetchable (messages with ?after=N, the queue with GET /queue).
"""
import logging
import time
from pathlib import Path

import eventlet
from nameko.events import BROADCAST, event_handler
from nameko.rpc import RpcProxy
from nameko.web.websocket import WebSocketHubProvider
from nameko.web.websocket import rpc as ws_rpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from chatvakt import errors
from chatvakt import events as ev
from chatvakt.db import Database, parse_iso, utcnow

from . import accounts, metrics, schemas
from .models import metadata
from .openapi import spec
from .remote import Remote
from .web import api, bearer, json_response, read_json

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".json": "application/json", ".ico": "image/x-icon"}
STAFF = ("counsellor", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")

# Per process: the last position pushed to each waiting chat, so a child is
# told only when their place changes.
_last_positions = {}


def _chan_chat(chat_id):
    return f"chat:{chat_id}"


def _chan_counsellor(counsellor_id):
    return f"counsellor:{counsellor_id}"


CHAN_QUEUE = "queue"
CHAN_SUPERVISORS = "supervisors"


def _public_chat(chat, position=None):
    return {
        "chat_id": chat["chat_id"], "status": chat["status"],
        "position": position.get("position") if position else None,
        "estimated_wait_s": position.get("estimated_wait_s") if position else None,
        "counsellor": {"name": chat["counsellor"]["name"]} if chat.get("counsellor") else None,
        "started_at": chat["started_at"], "assigned_at": chat["assigned_at"],
        "ended_at": chat["ended_at"], "ended_by": chat.get("ended_by"),
        "gender": chat.get("gender"), "age": chat.get("age"), "phase": chat.get("phase"),
    }


def _coding_facts(chat):
    counsellor = chat.get("counsellor") or {}
    return {
        "chat_id": chat["chat_id"], "status": chat["status"], "started_at": chat["started_at"],
        "assigned_at": chat["assigned_at"], "ended_at": chat["ended_at"],
        "counsellor_id": counsellor.get("id"), "counsellor_name": counsellor.get("name"),
        "gender": chat.get("gender"), "age": chat.get("age"), "phases": chat.get("phases") or {},
    }


class GatewayService:
    name = ev.GATEWAY

    db = Database(ev.GATEWAY, metadata)
    hub = WebSocketHubProvider()
    chat_proxy = RpcProxy(ev.CHAT)
    queue_proxy = RpcProxy(ev.QUEUE)
    coding_proxy = RpcProxy(ev.CODING)
    escalation_proxy = RpcProxy(ev.ESCALATION)

    # ---- plumbing ------------------------------------------------------
    @property
    def chat(self):
        return Remote(ev.CHAT, self.chat_proxy)

    @property
    def queue(self):
        return Remote(ev.QUEUE, self.queue_proxy)

    @property
    def coding(self):
        return Remote(ev.CODING, self.coding_proxy)

    @property
    def escalation(self):
        return Remote(ev.ESCALATION, self.escalation_proxy)

    def _tx(self, fn, *args, **kwargs):
        with self.db() as session, session.begin():
            return fn(session, *args, **kwargs)

    def _actor(self, request, roles=None):
        actor = self._tx(accounts.resolve, bearer(request))
        if roles is not None and actor["role"] not in roles:
            raise errors.Forbidden("Your role may not do this.")
        return actor

    def _chat_actor(self, request, chat_id):
        actor = self._actor(request)
        if actor["role"] == "child" and actor["chat_id"] != chat_id:
            raise errors.NotFound("No such chat.")
        return actor

    # ---- child and chat ---------------------------------------------------
    @api("POST", "/api/v1/chats")
    def start_chat(self, request):
        body = read_json(request, schemas.StartChat())
        started = self.chat.start_chat(gender=body["gender"], age=body["age"],
                                       nickname=body["nickname"], message=body["message"])
        token = self._tx(accounts.issue_child_token, started["chat_id"])
        position = None
        try:
            # The chat_started event enqueues too; asking directly lets us tell
            # the child their place at once. Both paths are idempotent.
            position = self.queue.enqueue(started["chat_id"], started["started_at"],
                                          body["gender"], body["age"])
        except errors.Unavailable:
            pass
        return 201, {"chat_id": started["chat_id"], "token": token, "status": "waiting",
                     "position": position.get("position") if position else None,
                     "estimated_wait_s": position.get("estimated_wait_s") if position else None,
                     "welcome": started["welcome"], "started_at": started["started_at"]}

    @api("GET", "/api/v1/chats/<string:chat_id>")
    def get_chat(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        chat = self.chat.get_chat(chat_id, actor)
        position = self.queue.position(chat_id) if chat["status"] == "waiting" else None
        view = _public_chat(chat, position)
        if actor["role"] != "child":
            view["counsellor"] = chat["counsellor"]
        return view

    @api("POST", "/api/v1/chats/<string:chat_id>/messages")
    def post_message(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        body = read_json(request, schemas.PostMessage())
        result = self.chat.post_message(chat_id, actor, body["text"], body["client_msg_id"])
        return 201, {"seq": result["seq"], "sent_at": result["sent_at"]}

    @api("GET", "/api/v1/chats/<string:chat_id>/messages")
    def list_messages(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        raw = request.args.get("after", "0")
        try:
            after = int(raw)
        except ValueError:
            raise errors.Invalid("after must be a whole number.", {"after": ["Not an integer."]})
        if after < 0 or after > 2**31:
            raise errors.Invalid("after is out of range.", {"after": ["Out of range."]})
        messages = self.chat.list_messages(chat_id, actor, after)
        return {"messages": [
            {"seq": m["seq"], "sender": m["sender"], "text": m["text"], "sent_at": m["sent_at"],
             "kind": m["kind"], **({"visibility": m["visibility"]} if actor["role"] != "child" else {})}
            for m in messages]}

    @api("POST", "/api/v1/chats/<string:chat_id>/end")
    def end_chat(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        body = read_json(request, schemas.EndChat())
        ended_by = body["reason"] if actor["role"] == "child" and body["reason"] == "quick_exit" else None
        chat = self.chat.end_chat(chat_id, actor, ended_by)
        return {"status": chat["status"], "ended_by": chat["ended_by"]}

    @api("POST", "/api/v1/chats/<string:chat_id>/typing")
    def typing(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        self.chat.typing(chat_id, actor)
        return 202, {"ok": True}

    # ---- counsellors ----------------------------------------------------------
    @api("POST", "/api/v1/auth/login")
    def login(self, request):
        body = read_json(request, schemas.Login())
        return self._tx(accounts.login, body["username"], body["password"])

    @api("POST", "/api/v1/auth/logout")
    def logout(self, request):
        self._actor(request, STAFF)
        self._tx(accounts.revoke, bearer(request))
        return {"ok": True}

    @api("GET", "/api/v1/me")
    def me(self, request):
        actor = self._actor(request, STAFF)
        return {"id": actor["id"], "name": actor["name"], "role": actor["role"]}

    @api("PUT", "/api/v1/presence")
    def presence(self, request):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Presence())
        return self.queue.set_presence(actor["id"], actor["name"], body["status"], body["capacity"])

    @api("GET", "/api/v1/queue")
    def get_queue(self, request):
        self._actor(request, STAFF)
        snapshot = self.queue.snapshot()
        metrics.QUEUE_WAITING.set(len(snapshot["waiting"]))
        return snapshot

    @api("POST", "/api/v1/queue/take")
    def take(self, request):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Take())
        taken = self.queue.take(actor["id"], actor["name"], body["chat_id"])
        if taken is None:
            return 204, None
        # chat_assigned activates the chat too; doing it here means the
        # counsellor can write the moment this answers. Both are idempotent.
        self.chat.activate(taken["chat_id"], actor["id"], actor["name"])
        return taken

    @api("PUT", "/api/v1/queue/<string:chat_id>/priority")
    def set_priority(self, request, chat_id):
        self._actor(request, SUPERVISORS)
        body = read_json(request, schemas.Priority())
        return self.queue.set_priority(chat_id, body["priority"], body["reason"])

    @api("POST", "/api/v1/chats/<string:chat_id>/transfer")
    def transfer(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Transfer())
        target = self._tx(accounts.find, body["to"])
        if target is None or target["role"] not in STAFF:
            raise errors.Invalid("No such counsellor.", {"to": ["Unknown counsellor id."]})
        return self.chat.transfer(chat_id, actor, target["id"], target["name"], body["note"])

    @api("GET", "/api/v1/taxonomy")
    def taxonomy(self, request):
        lang = request.args.get("lang", "nb")
        return self.coding.taxonomy("en" if lang.startswith("en") else "nb")

    @api("GET", "/api/v1/chats/<string:chat_id>/coding")
    def get_coding(self, request, chat_id):
        actor = self._actor(request, STAFF)
        chat = self.chat.get_chat(chat_id, actor)
        return self.coding.get_coding(_coding_facts(chat), actor)

    @api("PUT", "/api/v1/chats/<string:chat_id>/coding")
    def save_coding(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request)
        chat = self.chat.get_chat(chat_id, actor)
        return self.coding.save_coding(_coding_facts(chat), body, actor)

    @api("GET", "/api/v1/coding/uncoded")
    def uncoded(self, request):
        actor = self._actor(request, STAFF)
        return {"chats": self.coding.uncoded(actor)}

    @api("GET", "/api/v1/stats")
    def stats(self, request):
        self._actor(request, SUPERVISORS)
        date_from, date_to = request.args.get("from"), request.args.get("to")
        problems = {}
        for key, value in (("from", date_from), ("to", date_to)):
            if value:
                try:
                    parse_iso(value)
                except ValueError:
                    problems[key] = ["Not an ISO 8601 date or time."]
        if problems:
            raise errors.Invalid("Bad date range.", problems)
        if request.args.get("format") == "csv":
            csv = self.coding.stats(date_from, date_to, "csv")
            return Response(csv, status=200, mimetype="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="chatvakt-stats.csv"'})
        return self.coding.stats(date_from, date_to)

    @api("POST", "/api/v1/chats/<string:chat_id>/escalations")
    def raise_escalation(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Escalation())
        chat = self.chat.get_chat(chat_id, actor)
        counsellor = (chat.get("counsellor") or {}).get("id")
        return 201, self.escalation.raise_escalation(chat_id, body["kind"], body["details"],
                                                     actor, counsellor)

    @api("GET", "/api/v1/escalations")
    def list_escalations(self, request):
        actor = self._actor(request, SUPERVISORS)
        return {"escalations": self.escalation.list_escalations(actor, request.args.get("status"))}

    @api("GET", "/api/v1/services")
    def services_directory(self, request):
        return self.escalation.directory()

    # ---- operations -------------------------------------------------------------
    @api("GET", "/healthz")
    def healthz(self, request):
        return {"ok": True}

    @api("GET", "/readyz")
    def readyz(self, request):
        proxies = {ev.QUEUE: self.queue_proxy, ev.CHAT: self.chat_proxy,
                   ev.CODING: self.coding_proxy, ev.ESCALATION: self.escalation_proxy}
        results = {}

        def ping(name):
            try:
                Remote(name, proxies[name], timeout=2.0).ping()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
                results[name] = "unavailable" if isinstance(exc, errors.Unavailable) else type(exc).__name__

        pool = eventlet.GreenPool()
        for name in proxies:
            pool.spawn_n(ping, name)
        pool.waitall()
        ready = all(value == "ok" for value in results.values())
        return (200 if ready else 503), {"ready": ready, "services": results}

    @api("GET", "/metrics")
    def metrics(self, request):
        return Response(generate_latest(), status=200, content_type=CONTENT_TYPE_LATEST)

    @api("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return spec()

    # ---- pages ------------------------------------------------------------------
    def _file(self, relative):
        path = (STATIC / relative).resolve()
        if STATIC not in path.parents or not path.is_file():
            raise errors.NotFound("No such file.")
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                   "X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                                              "img-src 'self' data:; frame-ancestors 'none'"}
        return Response(path.read_bytes(), status=200, headers=headers,
                        content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    @api("GET", "/")
    def child_page(self, request):
        return self._file("child/index.html")

    @api("GET", "/console/")
    def console_page(self, request):
        return self._file("console/index.html")

    @api("GET", "/static/<path:path>")
    def static(self, request, path):
        return self._file(path)

    # ---- websocket ------------------------------------------------------------------
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

    @ws_rpc
    def typing(self, socket_id, chat_id=None):
        actor = self._socket_actor(socket_id)
        if actor["role"] == "child":
            chat_id = actor["chat_id"]
        if not isinstance(chat_id, str):
            raise errors.Invalid("chat_id is required.", {"chat_id": ["Required."]})
        self.chat.typing(chat_id, actor)
        return {"ok": True}

    def _socket_actor(self, socket_id):
        connection = self.hub.connections.get(socket_id)
        actor = connection.context_data.get("actor") if connection is not None else None
        if actor is None:
            raise errors.Unauthorized("Call auth first.")
        return actor

    def _push(self, channels, event, data):
        sockets = set()
        for channel in channels:
            sockets |= self.hub.subscriptions.get(channel, set())
        for socket_id in sockets:
            try:
                self.hub.unicast(socket_id, event, data)
            except Exception:  # noqa: BLE001 - a dead socket must not stop the others
                pass

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
