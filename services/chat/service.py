"""The chat relay as a nameko service: wiring only, the work is in domain.py."""

import logging
import os

from nameko.rpc import rpc
from nameko.timer import timer

from chatvakt import config, observability
from chatvakt import events as ev
from chatvakt.handlers import event_handler
from chatvakt.service import ServiceBase, providers, run_core_unit

from . import domain
from .models import metadata, outbox

log = logging.getLogger(__name__)

# Timer intervals are fixed when the class is built, so they are read at import.
INACTIVITY_CHECK_S = config.env_float("CHATVAKT_INACTIVITY_CHECK_S", 15.0)
RETENTION_CHECK_S = config.env_float("CHATVAKT_RETENTION_CHECK_S", 3600.0)


def inactivity_prompt_s():
    return config.env_float("CHATVAKT_INACTIVITY_PROMPT_S", 600.0)


def inactivity_end_s():
    return config.env_float("CHATVAKT_INACTIVITY_END_S", 1200.0)


def typing_interval_s():
    return config.env_float("CHATVAKT_TYPING_INTERVAL_S", 2.0)


class _CrashAfterCommit:
    """Test hook: dies between the commit and the publish, once per arming.

    Active only when CHATVAKT_TEST_CRASH_AFTER_COMMIT names a file; a test arms
    it by creating that file, and the replica that removes it dies. This is
    the window the outbox exists for.
    """

    def __init__(self, outbox):
        self._outbox = outbox

    def __getattr__(self, name):
        return getattr(self._outbox, name)

    def publish(self, sessions, dispatch, rows):
        trigger = config.test_crash_after_commit()
        if trigger and rows:
            try:
                os.unlink(trigger)
            except FileNotFoundError:
                pass
            else:
                log.warning("test hook: exiting after commit, before publish")
                os._exit(17)
        return self._outbox.publish(sessions, dispatch, rows)


class ChatService(ServiceBase):
    name = ev.CHAT

    db, dispatch, outbox = providers(ev.CHAT, metadata, outbox)
    gauges = (domain.metrics_snapshot, {"active": observability.CHATS_ACTIVE})

    @rpc
    def start_chat(
        self, gender=None, age=None, nickname=None, message=None, source=None, suspect=False, in_danger=None, lang=None
    ):
        # source/suspect come from the gateway (issue 12): a salted hash of the
        # child's address and whether that address is flooding us.
        return self.unit(
            domain.start_chat,
            helpline=config.helpline_name(),
            gender=gender,
            age=age,
            nickname=nickname,
            message=message,
            source=source,
            suspect=suspect,
            in_danger=in_danger,
            lang=lang,
        )

    @rpc
    def set_lang(self, chat_id, actor, lang):
        return self.unit(domain.set_lang, chat_id, actor, lang)

    @rpc
    def report_danger(self, chat_id, actor, in_danger):
        return self.unit(domain.report_danger, chat_id, actor, in_danger)

    @rpc
    @observability.per_message
    def post_message(self, chat_id, actor, text, client_msg_id=None):
        box = self.outbox
        if config.test_crash_after_commit():
            box = _CrashAfterCommit(box)
        # Core statements only: no ORM session on the relay's hot path.
        return run_core_unit(self.db, box, self.dispatch, domain.post_message, chat_id, actor, text, client_msg_id)

    @rpc
    def get_chat(self, chat_id, actor):
        return self.read(domain.get_chat, chat_id, actor)

    @rpc
    def list_chats(self, actor, status="active"):
        return self.read(domain.list_chats, actor, status)

    @rpc
    def list_messages(self, chat_id, actor, after=0):
        return self.read(domain.list_messages, chat_id, actor, after)

    @rpc
    def end_chat(self, chat_id, actor, ended_by=None):
        return self.unit(domain.end_chat, chat_id, actor, ended_by)

    @rpc
    def activate(self, chat_id, counsellor_id, counsellor_name):
        return self.unit(domain.activate, chat_id, counsellor_id, counsellor_name)

    @rpc
    def transfer(self, chat_id, actor, to_id, to_name, note=None):
        return self.unit(domain.transfer, chat_id, actor, to_id, to_name, note)

    @rpc
    def add_note(self, chat_id, actor, text):
        return self.unit(domain.add_note, chat_id, actor, text)

    @rpc
    def whisper(self, chat_id, actor, text):
        return self.unit(domain.whisper, chat_id, actor, text)

    @rpc
    def set_phase(self, chat_id, actor, phase):
        return self.unit(domain.set_phase, chat_id, actor, phase)

    @rpc
    def typing(self, chat_id, actor):
        payload = self.unit(domain.typing, chat_id, actor, typing_interval_s())
        if payload is not None:
            # Not through the outbox: a lost typing hint harms no one.
            self.dispatch(ev.TYPING, ev.dump(ev.CHAT, ev.TYPING, payload))
        return {"ok": True, "sent": payload is not None}

    @event_handler(ev.QUEUE, ev.CHAT_ASSIGNED)
    def on_chat_assigned(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_ASSIGNED, payload)
        try:
            self.unit(domain.activate, data["chat_id"], data["counsellor_id"], data["counsellor_name"])
        except Exception as error:  # noqa: BLE001 - a chat that already ended is fine
            if not isinstance(error, domain.Conflict):
                raise

    @event_handler(ev.QUEUE, ev.CHAT_ABANDONED)
    def on_chat_abandoned(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_ABANDONED, payload)
        # Only the queue's absence sweep: otherwise the chat had already ended.
        if data["why"] == domain.ABSENT:
            self.unit(domain.end_absent, data["chat_id"])

    @event_handler(ev.ESCALATION, ev.ESCALATION_RAISED)
    def on_escalation_raised(self, payload):
        data = ev.load(ev.ESCALATION, ev.ESCALATION_RAISED, payload)
        self.unit(
            domain.record_hold,
            data["escalation_id"],
            data["chat_id"],
            data["kind"],
            data["status"],
            data["open"],
            raised=True,
        )

    @event_handler(ev.ESCALATION, ev.ESCALATION_UPDATED)
    def on_escalation_updated(self, payload):
        data = ev.load(ev.ESCALATION, ev.ESCALATION_UPDATED, payload)
        self.unit(
            domain.record_hold, data["escalation_id"], data["chat_id"], data["kind"], data["status"], data["open"]
        )

    @timer(interval=INACTIVITY_CHECK_S)
    def check_inactivity(self):
        prompt_s, end_s = inactivity_prompt_s(), inactivity_end_s()
        for chat_id in self.read(domain.silent_chats, prompt_s):
            try:
                outcome = self.unit(domain.check_silence, chat_id, prompt_s, end_s)
            except Exception:  # noqa: BLE001 - one chat must not stop the others
                log.exception("inactivity check failed for one chat")
                continue
            if outcome:
                log.info("inactivity: chat %s", outcome)

    @timer(interval=RETENTION_CHECK_S)
    def purge_expired(self):
        days = config.retention_days()
        while True:
            purged = self.unit(domain.purge_expired, days)
            if purged:
                log.info("retention: deleted the transcripts of %d chat(s)", len(purged))
            if len(purged) < 200:
                break
