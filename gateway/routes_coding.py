"""HTTP routes of coding and statistics."""
from chatvakt import errors
from chatvakt.db import parse_iso

from .base import STAFF, SUPERVISORS, _coding_facts
from .web import api, read_json
from werkzeug.wrappers import Response


class CodingRoutes:
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
