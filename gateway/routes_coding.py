"""HTTP routes of coding and statistics."""

from werkzeug.wrappers import Response

from chatvakt import errors

from . import lang as language
from .base import STAFF, SUPERVISORS, _coding_facts
from .web import api, read_json, time_arg


def _lang(request):
    """?lang= first, then Accept-Language (nb or en); Norwegian by default.
    The coding endpoints answer labels and validation messages in it."""
    lang = request.args.get("lang")
    if lang is not None and len(lang) > 35:
        raise errors.Invalid("Bad lang.", {"lang": ["nb or en."]})
    return language.pick(lang, request.headers.get("Accept-Language"))


class CodingRoutes:
    @api("GET", "/api/v1/taxonomy")
    def taxonomy(self, request):
        # ?version= reads an older taxonomy that earlier codings were made with
        version = request.args.get("version") or None
        if version is not None and len(version) > 40:
            raise errors.Invalid("Bad version.", {"version": ["At most 40 characters."]})
        # labels only: ?lang= as before (a browser's Accept-Language does not
        # turn the Norwegian console's category tree English)
        return self.coding.taxonomy(language.pick(request.args.get("lang", "nb")[:35]), version)

    @api("GET", "/api/v1/chats/<string:chat_id>/coding")
    def get_coding(self, request, chat_id):
        actor = self._actor(request, STAFF)
        chat = self.chat.get_chat(chat_id, actor)
        # the chat's escalations and risk flags pre-fill the acute-danger answers
        risk = (self._chat_risk([chat_id]) or {}).get(chat_id)
        return self.coding.get_coding(_coding_facts(chat), actor, _lang(request), risk)

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
            return Response(
                csv,
                status=200,
                mimetype="text/csv",
                headers={"Content-Disposition": 'attachment; filename="chatvakt-stats.csv"'},
            )
        return self.coding.stats(date_from, date_to)
