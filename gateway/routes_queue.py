"""HTTP routes of counsellors: login, presence and the intake queue."""

from . import accounts, metrics, schemas
from .base import STAFF, SUPERVISORS
from .web import api, bearer, read_json


class QueueRoutes:
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
