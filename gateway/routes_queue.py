"""HTTP routes of counsellors: presence and the intake queue."""

import logging
import time

from nameko.timer import timer

from chatvakt import config, errors
from chatvakt.clock import iso, parse_iso

from . import accounts, metrics, schemas
from . import presence as sockets_report
from .base import STAFF, SUPERVISORS, _seen_chats, with_risk
from .web import api, read_json, time_arg

log = logging.getLogger(__name__)


def _time_arg(request, name):
    raw = time_arg(request, name)  # 422 out of range (gateway/web.py)
    return None if raw is None else iso(parse_iso(raw))


def wait_warn_s():
    """After this long in the queue, while someone available has room, a
    waiting child rings in every console (issue 13: nobody waits unnoticed)."""
    return max(10.0, config.env_float("CHATVAKT_WAIT_WARN_S", 120.0))


class QueueRoutes:
    @api("PUT", "/api/v1/presence")
    def presence(self, request):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Presence)
        return self.queue.set_presence(actor["id"], actor["name"], body["status"], body["capacity"], body["opt_in"])

    @api("GET", "/api/v1/presence")
    def get_presence(self, request):
        actor = self._actor(request, STAFF)
        return self.queue.presence(actor["id"])

    @api("GET", "/api/v1/queue")
    def get_queue(self, request):
        actor = self._actor(request, STAFF)
        snapshot = self.queue.snapshot()
        metrics.QUEUE_WAITING.set(len(snapshot["waiting"]))
        # the queue knows risk and reason; the screen adds category and the
        # child's flagged message (seq) for the card the counsellor opens
        at_risk = [w["chat_id"] for w in snapshot["waiting"] if w.get("risk")]
        summary = self._chat_risk(at_risk)
        snapshot["waiting"] = [with_risk(w, summary) if w["chat_id"] in at_risk else w for w in snapshot["waiting"]]
        if actor["role"] not in SUPERVISORS:
            snapshot.pop("flood", None)  # the flood notice is the supervisors' to handle
        snapshot["wait_warn_s"] = wait_warn_s()
        return snapshot

    @api("POST", "/api/v1/queue/take")
    def take(self, request):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Take)
        taken = self.queue.take(actor["id"], actor["name"], body["chat_id"])
        if taken is None:
            return 204, None
        # chat_assigned activates the chat too; doing it here means the
        # counsellor can write the moment this answers. Both are idempotent.
        self.chat.activate(taken["chat_id"], actor["id"], actor["name"])
        return taken

    @api("POST", "/api/v1/queue/offers/<string:chat_id>/accept")
    def accept_offer(self, request, chat_id):
        actor = self._actor(request, STAFF)
        taken = self.queue.accept_offer(actor["id"], actor["name"], chat_id)
        self.chat.activate(taken["chat_id"], actor["id"], actor["name"])
        return taken

    @api("POST", "/api/v1/queue/offers/<string:chat_id>/decline")
    def decline_offer(self, request, chat_id):
        actor = self._actor(request, STAFF)
        return self.queue.decline_offer(actor["id"], chat_id)

    @api("PUT", "/api/v1/queue/<string:chat_id>/priority")
    def set_priority(self, request, chat_id):
        self._actor(request, SUPERVISORS)
        body = read_json(request, schemas.Priority)
        return self.queue.set_priority(chat_id, body["priority"], body["reason"])

    @api("GET", "/api/v1/queue/counsellors")
    def queue_counsellors(self, request):
        self._actor(request, SUPERVISORS)
        return {"counsellors": self.queue.counsellors()}

    @api("GET", "/api/v1/counsellors")
    def counsellors(self, request):
        """Colleagues a chat can be transferred to, with their presence."""
        self._actor(request, STAFF)
        presence = {c["id"]: c for c in self.queue.counsellors()}
        out = []
        for account in self._tx(accounts.list_staff):
            seen = presence.get(account["id"], {})
            out.append(
                {
                    **account,
                    "status": seen.get("status", "offline"),
                    "capacity": seen.get("capacity"),
                    "active_chats": seen.get("active_chats", 0),
                }
            )
        return {"counsellors": out}

    @api("GET", "/api/v1/queue/stats")
    def queue_stats(self, request):
        self._actor(request, SUPERVISORS)
        return self.queue.stats(_time_arg(request, "from"), _time_arg(request, "to"))

    @timer(interval=sockets_report.REPORT_S)
    def report_sockets(self):
        taken = time.monotonic()
        counts = sockets_report.reporter.counts(self.hub)
        if not sockets_report.reporter.due(counts, taken):
            return
        try:
            self.queue.report_sockets(sockets_report.PROCESS, counts)
        except errors.Unavailable:
            log.warning("queue service did not take the socket report; retrying")
            return
        sockets_report.reporter.sent(counts, taken)

    @timer(interval=sockets_report.SEEN_REPORT_S)
    def report_seen(self):
        """Tell the queue which waiting children this process saw: one RPC per
        few seconds whatever the number of children. Sent empty too: it is the
        heartbeat that tells the queue the gateways are there to see anyone."""
        chat_ids = _seen_chats | sockets_report.child_chats(self.hub)
        _seen_chats.clear()
        try:
            self.queue.seen(sorted(chat_ids))
        except errors.Unavailable:
            # Keep them for the next report: a slow queue costs no child its place.
            _seen_chats.update(chat_ids)
            log.warning("queue service did not take the report of waiting children; retrying")
        self._flush_flood()
