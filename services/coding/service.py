"""The coding service as a nameko service: wiring only."""
import functools

from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc

from chatvakt import events as ev
from chatvakt.db import Database
from chatvakt.outbox import Outbox
from chatvakt.service import ServiceBase

from . import domain
from .models import metadata, outbox
from .stats import stats_to_csv
from .taxonomy import load_taxonomy


@functools.lru_cache(maxsize=1)
def current_taxonomy():
    return load_taxonomy()


class CodingService(ServiceBase):
    name = ev.CODING

    db = Database(ev.CODING, metadata)
    dispatch = EventDispatcher()
    outbox = Outbox(outbox, ev.CODING)

    @event_handler(ev.CHAT, ev.CHAT_ENDED)
    def on_chat_ended(self, payload):
        self.unit(domain.record_chat, ev.load(ev.CHAT, ev.CHAT_ENDED, payload))

    @event_handler(ev.ESCALATION, ev.RISK_DETECTED)
    def on_risk_detected(self, payload):
        self.unit(domain.mark_at_risk, ev.load(ev.ESCALATION, ev.RISK_DETECTED, payload)["chat_id"])

    @rpc
    def taxonomy(self, lang="nb"):
        return current_taxonomy().to_api(lang)

    @rpc
    def get_coding(self, facts, actor):
        return self.unit(domain.get_coding, facts, actor)

    @rpc
    def save_coding(self, facts, body, actor):
        return self.unit(domain.save_coding, facts, body, actor, current_taxonomy())

    @rpc
    def history(self, chat_id):
        return self.read(domain.coding_history, chat_id)

    @rpc
    def uncoded(self, actor):
        return self.read(domain.uncoded, actor)

    @rpc
    def stats(self, date_from=None, date_to=None, fmt="json"):
        result = self.read(domain.statistics, current_taxonomy(), date_from, date_to)
        return stats_to_csv(result) if fmt == "csv" else result
