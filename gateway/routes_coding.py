"""HTTP routes of coding and statistics."""
from werkzeug.wrappers import Response

from chatvakt import errors

from .base import STAFF, SUPERVISORS, _coding_facts
from .web import api, read_json, time_arg


def _lang(request):
    return "en" if request.args.get("lang", "nb").lower().startswith("en") else "nb"


class CodingRoutes:
    @api("GET", "/api/v1/taxonomy")
    def taxonomy(self, request):
        # ?version= reads an older taxonomy that earlier codings were made with
        version = request.args.get("version") or None
        if version is not None and len(version) > 40:
            raise errors.Invalid("Bad version.", {"version": ["At most 40 characters."]})
        return self.coding.taxonomy(_lang(request), version)

    @api("GET", "/api/v1/chats/<string:chat_id>/coding")
    def get_coding(self, request, chat_id):
        actor = self._actor(request, STAFF)
        chat = self.chat.get_chat(chat_id, actor)
        return self.coding.get_coding(_coding_facts(chat), actor, _lang(request))

    @api("PUT", "/api/v1/chats/<string:chat_id>/coding")
    def save_coding(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request)
        chat = self.chat.get_chat(chat_id, actor)
        return self.coding.save_coding(_coding_facts(chat), body, actor, _lang(request))

    @api("GET", "/api/v1/chats/<string:chat_id>/coding/history")
    def coding_history(self, request, chat_id):
        actor = self._actor(request, STAFF)
        self.chat.get_chat(chat_id, actor)  # the chat service decides who sees the chat
        return {"chat_id": chat_id, "history": self.coding.history(chat_id, actor)}

    @api("GET", "/api/v1/coding/uncoded")
    def uncoded(self, request):
        actor = self._actor(request, STAFF)
        chats = self.coding.uncoded(actor)
        return {"chats": chats, "count": len(chats)}

    @api("GET", "/api/v1/stats")
    def stats(self, request):
        self._actor(request, SUPERVISORS)
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv"):
            raise errors.Invalid("Bad format.", {"format": ["One of json, csv."]})
        # the coding service validates the range (422 naming 'from' or 'to')
        date_from, date_to = time_arg(request, "from"), time_arg(request, "to")
        if fmt == "csv":
            csv = self.coding.stats(date_from, date_to, "csv")
            return Response(csv, status=200, mimetype="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="chatvakt-stats.csv"'})
        return self.coding.stats(date_from, date_to)
