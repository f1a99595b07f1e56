"""The gateway's shared plumbing: dependencies, auth and pushing to sockets.

Maps API.md's HTTP calls to RPC on the services (with deadlines), holds the
accounts and tokens, and pushes the services' events to the sockets that may
see them. Pushes are BROADCAST handlers so every replica sees every event;
they may miss events while a replica is down, so everything pushed is also
fetchable (messages with ?after=N, the queue with GET /queue).
"""

import logging
import random
import time
from pathlib import Path

from nameko.rpc import RpcProxy

from chatvakt import errors
from chatvakt import events as ev
from chatvakt.db import Database, read_only
from chatvakt.observability import Observed
from chatvakt.vocabulary import OPEN_CHAT_STATUSES, STAFF, SUPERVISORS  # noqa: F401 - routes import them from here

from . import accounts
from .models import metadata
from .remote import Remote
from .sockets import HubProvider
from .web import bearer

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".ico": "image/x-icon",
}
OPEN_STATUSES = OPEN_CHAT_STATUSES  # a chat in any other status has ended
TOKEN_CACHE_S = 10.0
_token_cache = {}
# How often a child's chat is asked of the chat service (the backstop of
# _refuse_ended_chat), and when each chat is next asked, per process.
CHAT_CHECK_S = 60.0
_chat_checked = {}

# Per process: the last position pushed to each waiting chat, so a child is
# told only when their place changes.
_last_positions = {}

# Per process (issue 12): chats whose child made a request with its token
# since this process last told the queue; sent in one batch every few seconds
# (presence.report_seen), together with the child sockets it holds.
_seen_chats = set()


def _spread(now, period):
    """When an entry made now expires: at a random point in the second half of
    its period. Entries made at one moment (a gateway's start, every client
    back after a pause) would otherwise expire at one moment too, and their
    re-reads came as one burst: 40 chat.get_chat calls at once held the chat
    service for 200-350 ms, the relay's p99 spikes in `make bench` (issue 16)."""
    return now + period * random.uniform(0.5, 1.0)


CACHE_MAX = 10_000  # entries in a per-process cache before it starts over


def _remember(cache, key, value):
    if len(cache) > CACHE_MAX:
        cache.clear()
    cache[key] = value


def _chan_chat(chat_id):
    return f"chat:{chat_id}"


def _chan_counsellor(counsellor_id):
    return f"counsellor:{counsellor_id}"


CHAN_QUEUE = "queue"
CHAN_SUPERVISORS = "supervisors"


def public_status(status):
    """API.md fixes a chat's status to waiting, active, ended or abandoned; a
    chat the child left silent ends as `ended`, and `outcome` says timed_out."""
    return "ended" if status == "timed_out" else status


def outcome(status, ended_by=None):
    """What happened, finer than the status: `left` when the queue let a
    waiting chat go because its child's page had been gone past the grace."""
    return "left" if status == "abandoned" and ended_by == "absent" else status


def _public_chat(chat, position=None):
    return {
        "chat_id": chat["chat_id"],
        "status": public_status(chat["status"]),
        "outcome": outcome(chat["status"], chat.get("ended_by")),
        "position": position.get("position") if position else None,
        "estimated_wait_s": position.get("estimated_wait_s") if position else None,
        "notice": position.get("notice") if position else None,
        "counsellor": {"name": chat["counsellor"]["name"]} if chat.get("counsellor") else None,
        "started_at": chat["started_at"],
        "assigned_at": chat["assigned_at"],
        "ended_at": chat["ended_at"],
        "ended_by": chat.get("ended_by"),
        "gender": chat.get("gender"),
        "age": chat.get("age"),
        "phase": chat.get("phase"),
    }


# What a chat card shows of a chat's risk (issue 13): fetchable, so the marker
# and its reason survive a reload and reach a supervisor's card too.
RISK_KEYS = ("category", "category_words", "severity", "reason", "seq", "acute_danger", "acute_danger_open")


def with_risk(entry, summary, flags=False):
    """`entry` with the risk fields of `summary` (escalation.chat_risk's value
    for its chat); `risk` is None when the escalation service did not answer
    (unknown is not "no risk")."""
    if summary is None:
        return {**entry, "risk": None}
    found = dict(summary.get(entry["chat_id"]) or {})
    out = {**entry, "risk": bool(found.get("risk")) or bool(entry.get("risk"))}
    for key in RISK_KEYS:
        if key in found or key not in out:
            out[key] = found.get(key, out.get(key))
    if flags:
        out["flags"] = found.get("flags", [])
    return out


def _coding_facts(chat):
    counsellor = chat.get("counsellor") or {}
    return {
        "chat_id": chat["chat_id"],
        "status": chat["status"],
        "started_at": chat["started_at"],
        "assigned_at": chat["assigned_at"],
        "ended_at": chat["ended_at"],
        "counsellor_id": counsellor.get("id"),
        "counsellor_name": counsellor.get("name"),
        "gender": chat.get("gender"),
        "age": chat.get("age"),
        "phases": chat.get("phases") or {},
    }


class GatewayBase:
    db = Database(ev.GATEWAY, metadata)
    observed = Observed()
    hub = HubProvider()  # nameko's hub on our hardened server (sockets.py)
    chat_proxy = RpcProxy(ev.CHAT)
    queue_proxy = RpcProxy(ev.QUEUE)
    coding_proxy = RpcProxy(ev.CODING)
    escalation_proxy = RpcProxy(ev.ESCALATION)

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

    def _read(self, fn, *args, **kwargs):
        with self.db() as session:
            return fn(read_only(session), *args, **kwargs)

    def _resolve(self, token):
        # Every request carries a token: a short per-process cache spares the
        # database a read on the relay's hot path. A revoked token does not
        # live on in it: every process polls the revocation log (sessions.py)
        # and drops what was revoked on any replica within about a second.
        now = time.monotonic()
        hit = _token_cache.get(token)
        if hit is not None and hit[0] > now:
            return dict(hit[1])
        actor = self._read(accounts.resolve, token)
        if actor["role"] == "child" and _chat_checked.get(actor["chat_id"], 0.0) <= now:
            # The token's own row (just read) dies with the chat on any
            # replica that saw chat_ended; the chat service is asked only as
            # the backstop for an event every replica missed, so not on every
            # cache period: a child writes every 20-60 s, and each message
            # after a pause paid a chat.get_chat call (issue 16).
            self._refuse_ended_chat(actor)
            _remember(_chat_checked, actor["chat_id"], _spread(now, CHAT_CHECK_S))
        _remember(_token_cache, token, (_spread(now, TOKEN_CACHE_S), actor))
        return dict(actor)

    def _refuse_ended_chat(self, actor):
        """A child's token dies with its chat. chat_ended ends the token on
        every replica; should that event be missed, the chat service's word
        (asked once per CHAT_CHECK_S, 30-60 s) still ends it."""
        try:
            status = self.chat.get_chat(actor["chat_id"], actor)["status"]
        except errors.NotFound:
            status = "deleted"  # retention removed it: long ended
        if status not in OPEN_STATUSES:
            self._tx(accounts.end_chat_tokens, actor["chat_id"])
            raise errors.Conflict(accounts.CHAT_ENDED)

    def _chat_risk(self, chat_ids):
        """escalation.chat_risk, or None when it does not answer: a chat list
        without its risk markers is better than no chat list."""
        if not chat_ids:
            return {}
        try:
            return self.escalation.chat_risk(sorted(set(chat_ids)))
        except errors.Unavailable:
            log.warning("escalation service did not answer for risk markers")
            return None

    def _actor(self, request, roles=None):
        actor = self._resolve(bearer(request))
        if roles is not None and actor["role"] not in roles:
            raise errors.Forbidden("Your role may not do this.")
        return actor

    def _chat_actor(self, request, chat_id):
        actor = self._actor(request)
        if actor["role"] == "child":
            if actor["chat_id"] != chat_id:
                raise errors.NotFound("No such chat.")
            _seen_chats.add(chat_id)  # the child's page is there: it keeps its place
        return actor

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
        if not sockets:
            return
        # One serialisation for every socket (the hub's unicast makes one each).
        server = self.hub._server
        payload = server.serialize_event(event, data)
        for socket_id in sockets:
            held = server.sockets.get(socket_id)
            if held is None:
                continue
            try:
                held.socket.send(payload)
            except Exception:  # noqa: BLE001 - a dead socket must not stop the others
                pass
