"""The coding service as a nameko service: wiring only."""

import functools
import time

import eventlet
from nameko.rpc import rpc
from nameko.timer import timer

from chatvakt import config
from chatvakt import events as ev
from chatvakt.handlers import event_handler
from chatvakt.service import ServiceBase, providers

from . import domain
from .models import metadata, outbox
from .stats import stats_to_csv
from .taxonomy import load_taxonomy


@functools.lru_cache(maxsize=1)
def current_taxonomy():
    # CHATVAKT_TAXONOMY names a helpline's own file; read once per process.
    return load_taxonomy()


# Fail at start, with the file's problem in the log, rather than at the first coding.
current_taxonomy()


def remind_s():
    """Seconds after a chat ended (or the last reminder) before a counsellor is
    reminded again of a chat still uncoded; 0 turns re-reminders off."""
    return config.env_float("CHATVAKT_CODING_REMIND_S", 900)


def remind_max():
    return config.env_int("CHATVAKT_CODING_REMIND_MAX", 3)


def suppress_below():
    return config.env_int("CHATVAKT_STATS_SUPPRESS_BELOW", 5)


# How long a coding waits for its chat's chat_ended (published as the chat ends).
RECORD_WAIT_S = 3.0

# The timer's tick is fixed when the class is made; a quarter of the interval
# keeps a reminder at most 25 % late.
_REMIND_TICK = max(0.5, min(60.0, (remind_s() or 60.0) / 4))


class CodingService(ServiceBase):
    name = ev.CODING

    db, dispatch, outbox = providers(ev.CODING, metadata, outbox)

    @event_handler(ev.CHAT, ev.CHAT_ENDED)
    def on_chat_ended(self, payload):
        self.unit(domain.record_chat, ev.load(ev.CHAT, ev.CHAT_ENDED, payload))

    @event_handler(ev.ESCALATION, ev.RISK_DETECTED)
    def on_risk_detected(self, payload):
        self.unit(domain.mark_at_risk, ev.load(ev.ESCALATION, ev.RISK_DETECTED, payload)["chat_id"])

    @timer(interval=_REMIND_TICK)
    def remind(self):
        if remind_s() > 0:
            self.unit(domain.remind_uncoded, remind_s(), remind_max())

    @rpc
    def taxonomy(self, lang="nb", version=None):
        return self.read(domain.taxonomy_view, version, current_taxonomy(), lang)

    def _await_record(self, facts):
        """A coding opened or saved the moment a chat ends may overtake that
        chat's chat_ended, the one source of its record: give the event a moment
        before the domain answers from the gateway's read (a draft) or with 409."""
        deadline = time.monotonic() + RECORD_WAIT_S
        while (
            facts["status"] not in domain.OPEN
            and time.monotonic() < deadline
            and not self.read(domain.is_recorded, facts["chat_id"])
        ):
            eventlet.sleep(0.05)

    @rpc
    def get_coding(self, facts, actor, lang="nb", risk=None):
        self._await_record(facts)
        return self.read(domain.get_coding, facts, actor, current_taxonomy(), lang=lang, risk=risk)

    @rpc
    def save_coding(self, facts, body, actor, lang="nb"):
        self._await_record(facts)
        return self.unit(domain.save_coding, facts, body, actor, current_taxonomy(), lang=lang)

    @rpc
    def history(self, chat_id, actor):
        return self.read(domain.coding_history, chat_id, actor)

    @rpc
    def uncoded(self, actor):
        return self.read(domain.uncoded, actor)

    @rpc
    def stats(self, date_from=None, date_to=None, fmt="json"):
        result = self.read(domain.statistics, current_taxonomy(), date_from, date_to)
        if fmt == "csv":
            return stats_to_csv(result, suppress_below())
        # The screen applies the CSV's small-cell rule itself, so it needs the threshold (issue 13).
        return {**result, "suppress_below": suppress_below()}
