"""HTTP routes of escalations and the directory of services."""

from . import schemas
from .base import STAFF, SUPERVISORS
from .web import api, read_json


class EscalationRoutes:
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
