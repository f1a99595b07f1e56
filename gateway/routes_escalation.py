"""HTTP routes of escalations, risk alerts and the directory of services.

The escalation service decides who sees what (identifying details:
supervisors only); the gateway reads the chat first so a counsellor can only
escalate or acknowledge on a chat of their own (404 otherwise)."""

import base64
import time

from werkzeug.wrappers import Response

from chatvakt import config, errors
from chatvakt.clock import parse_iso
from chatvakt.messages import client_message

from . import schemas
from .base import STAFF, SUPERVISORS
from .web import api, read_json


class EscalationRoutes:
    @api("POST", "/api/v1/chats/<string:chat_id>/escalations")
    def raise_escalation(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Escalation)
        chat = self.chat.get_chat(chat_id, actor)
        counsellor = (chat.get("counsellor") or {}).get("id")
        facts = self._report_facts(chat, actor) if body["kind"] == "report_of_concern" else None
        return 201, self.escalation.raise_escalation(chat_id, body["kind"], body["details"], actor, counsellor, facts)

    @api("GET", "/api/v1/chats/<string:chat_id>/escalations")
    def chat_escalations(self, request, chat_id):
        actor = self._actor(request, STAFF)
        self.chat.get_chat(chat_id, actor)
        return {"escalations": self.escalation.list_escalations(actor, None, None, chat_id)}

    @api("GET", "/api/v1/escalations")
    def list_escalations(self, request):
        actor = self._actor(request, SUPERVISORS)
        return {
            "escalations": self.escalation.list_escalations(
                actor, request.args.get("status"), request.args.get("kind"), request.args.get("chat_id")
            )
        }

    @api("GET", "/api/v1/escalations/<string:escalation_id>")
    def get_escalation(self, request, escalation_id):
        actor = self._actor(request, STAFF)
        return self.escalation.get_escalation(escalation_id, actor)

    @api("PATCH", "/api/v1/escalations/<string:escalation_id>")
    def update_escalation(self, request, escalation_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.EscalationUpdate)
        if body["details"] is None and body["status"] is None and not body["refresh_facts"]:
            raise errors.Invalid("Nothing to change.", {"_schema": ["Give details, status or refresh_facts."]})
        facts = None
        if body["refresh_facts"]:
            current = self.escalation.get_escalation(escalation_id, actor)
            facts = self._report_facts(self.chat.get_chat(current["chat_id"], actor), actor)
        return self.escalation.update_escalation(escalation_id, actor, body["details"], body["status"], facts)

    @api("GET", "/api/v1/escalations/<string:escalation_id>/identifying")
    def escalation_identifying(self, request, escalation_id):
        """Read back the identifying details one wrote (location, phone) while
        the chat lasts and CHATVAKT_READBACK_S after: 403 later, 404 to others."""
        actor = self._actor(request, STAFF)
        current = self.escalation.get_escalation(escalation_id, actor)  # 404 unless theirs
        chat = self.chat.get_chat(current["chat_id"], actor)
        live = chat["status"] in ("waiting", "active")
        if not live and chat.get("ended_at"):
            ended = parse_iso(chat["ended_at"]).timestamp()
            live = time.time() - ended <= config.env_float("CHATVAKT_READBACK_S", 1800.0)
        return self.escalation.read_identifying(escalation_id, actor, live)

    @api("GET", "/api/v1/escalations/<string:escalation_id>/audit")
    def escalation_audit(self, request, escalation_id):
        actor = self._actor(request, SUPERVISORS)
        return {"escalation_id": escalation_id, "audit": self.escalation.audit(escalation_id, actor)}

    @api("GET", "/api/v1/escalations/<string:escalation_id>/transcript")
    def escalation_transcript(self, request, escalation_id):
        """The chat beside the draft, for the supervisor who approves it. The
        escalation service checks the role and audits the read first; the
        messages (with internal notes) come from the chat service."""
        actor = self._actor(request, SUPERVISORS)
        access = self.escalation.transcript_access(escalation_id, actor)
        messages = self.chat.list_messages(access["chat_id"], actor, 0)
        return {
            "escalation_id": escalation_id,
            "chat_id": access["chat_id"],
            "messages": [client_message(m, staff=True) for m in messages],
        }

    @api("GET", "/api/v1/escalations/<string:escalation_id>/report.pdf")
    def escalation_report(self, request, escalation_id):
        actor = self._actor(request, SUPERVISORS)
        encoded = self.escalation.report_pdf(escalation_id, actor, self._category_labels())
        return Response(
            base64.b64decode(encoded),
            status=200,
            mimetype="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="bekymringsmelding-{escalation_id[:8]}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    @api("GET", "/api/v1/alerts")
    def open_alerts(self, request):
        actor = self._actor(request, STAFF)
        # only open (unacknowledged) alerts are kept for the console; the
        # parameter is accepted so that a client can say so explicitly
        status = request.args.get("status", "open")
        if status != "open":
            raise errors.Invalid("Unknown status.", {"status": ["Only open."]})
        return {"alerts": self.escalation.alerts(actor)}

    @api("POST", "/api/v1/alerts/<string:chat_id>/ack")
    def acknowledge_alert(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.AlertAck)
        if actor["role"] not in SUPERVISORS:
            self.chat.get_chat(chat_id, actor)  # 404 unless it is the caller's chat
        return self.escalation.acknowledge(chat_id, actor, body["alert_id"])

    @api("GET", "/api/v1/services")
    def services_directory(self, request):
        return self.escalation.directory()

    def _report_facts(self, chat, actor):
        """What a report of concern starts from: the chat and, when it is coded, its coding."""
        counsellor = chat.get("counsellor") or {}
        facts = {
            "chat": {
                "started_at": chat.get("started_at"),
                "ended_at": chat.get("ended_at"),
                "counsellor_name": counsellor.get("name"),
                "gender": chat.get("gender"),
                "age": chat.get("age"),
            },
            "coding": None,
        }
        try:
            history = self.coding.history(chat["chat_id"], actor)
        except (errors.Unavailable, errors.NotFound):
            return facts  # the draft is still useful; refresh_facts fills it in later
        if history:
            facts["coding"] = history[-1]["coding"]
        return facts

    def _category_labels(self):
        try:
            taxonomy = self.coding.taxonomy("nb")
        except errors.Unavailable:
            return {}
        labels = {}
        for category in taxonomy.get("categories", []):
            labels[category["code"]] = category["label"]
            for sub in category.get("subcategories", []):
                labels[sub["code"]] = f"{category['label']}: {sub['label']}"
        return labels
