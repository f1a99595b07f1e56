"""The escalation service as a nameko service: wiring only."""

import base64
import logging
import time

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from chatvakt import config, observability
from chatvakt import events as ev
from chatvakt.handlers import event_handler
from chatvakt.service import ServiceBase, providers

from . import domain, report
from .models import metadata, outbox
from .vault import VaultProvider

log = logging.getLogger(__name__)

# How often the alert timer looks; read once, at import (nameko timers are class-level).
ALERT_TICK_S = config.env_float("CHATVAKT_ALERT_TICK_S", 1.0)


def alert_repeat_s():
    return config.env_float("CHATVAKT_ALERT_REPEAT_S", 60)


def alert_raise_s():
    return config.env_float("CHATVAKT_ALERT_RAISE_S", 180)


# service_screen() resolves the lexicon's and the model's paths and stats the
# model file: a few syscalls that cost a message more than screening it. A
# retrained model is still picked up without a restart, within this long.
SCREEN_RECHECK_S = 5.0

# The chats whose first messages are all kept (domain.findings_remembered).
KEPT = domain.KeptContexts()


class WarmScreen(DependencyProvider):
    """Compile the lexicon and load the learned model when the service starts,
    so the first risky message is not the one that waits for it (the alert
    must come within a second). CHATVAKT_RISK_SCREEN=lexicon: the lexicon alone."""

    def setup(self):
        self._current = None  # (screen, checked_at): what the last look found
        started = time.perf_counter()
        try:
            self.current()
        except Exception:  # noqa: BLE001 - the handler raises, and retries, on its own
            log.exception("the risk screen could not be loaded at start")
        else:
            log.info("risk screen loaded in %.0f ms", (time.perf_counter() - started) * 1000)

    def current(self):
        from .learned import service_screen

        now = time.monotonic()
        if self._current is not None and now - self._current[1] < SCREEN_RECHECK_S:
            return self._current[0]
        screen = service_screen()  # raises: nothing kept, the next message looks again
        self._current = (screen, now)
        return screen

    def get_dependency(self, worker_ctx):
        return _LazyScreen(self.current)


class _LazyScreen:
    """Loads the screen only when a message is screened: a broken lexicon
    fails that handler (which retries), not every RPC of the service."""

    def __init__(self, current):
        self._current = current

    def screen(self, text):
        return self._current().screen(text)

    def screen_messages(self, messages):
        from .learned import example_text

        screen = self._current()
        if hasattr(screen, "screen_messages"):
            return screen.screen_messages(messages)
        return screen.screen(example_text(messages))


class EscalationService(ServiceBase):
    name = ev.ESCALATION

    db, dispatch, outbox = providers(ev.ESCALATION, metadata, outbox)
    gauges = (
        domain.metrics_snapshot,
        {"open": observability.ESCALATIONS_OPEN, "overdue": observability.ESCALATIONS_OVERDUE},
    )
    vault = VaultProvider()
    screen = WarmScreen()

    # A failure (e.g. the database briefly locked) raises: chatvakt's handler
    # retries the message with a growing delay, so no child message goes
    # unscreened; screen_message is idempotent per (chat, seq).
    @event_handler(ev.CHAT, ev.MESSAGE_POSTED)
    @observability.per_message
    def on_message_posted(self, payload):
        # Only the child's messages are screened: the counsellor's half of the
        # relay is let go before its payload is validated (issue 16).
        if isinstance(payload, dict) and payload.get("sender", "child") != "child":
            return
        data = ev.load(ev.CHAT, ev.MESSAGE_POSTED, payload)
        if data["sender"] != "child" or data["kind"] != "message":
            return
        found = domain.findings_remembered(KEPT, self.screen, self.vault, data["chat_id"], data["seq"], data["text"])
        if found is domain.UNREAD:
            found = self.read_core(
                domain.findings_alone, self.screen, self.vault, data["chat_id"], data["seq"], data["text"], KEPT
            )
        if found is not None and not found:
            return  # screened alone, nothing found: nothing to record
        self.unit(
            domain.screen_message,
            self.screen,
            data["chat_id"],
            data["seq"],
            data["text"],
            data["counsellor_id"],
            None,
            self.vault,
            suspect=data["suspect"],
            found=found,
        )

    @event_handler(ev.CHAT, ev.DANGER_REPORTED)
    def on_danger_reported(self, payload):
        data = ev.load(ev.CHAT, ev.DANGER_REPORTED, payload)
        self.unit(domain.self_report, data["chat_id"], data["in_danger"], data["counsellor_id"], data["suspect"])

    @event_handler(ev.QUEUE, ev.CHAT_ASSIGNED)
    def on_chat_assigned(self, payload):
        data = ev.load(ev.QUEUE, ev.CHAT_ASSIGNED, payload)
        self.unit(domain.chat_counsellor_changed, data["chat_id"], data["counsellor_id"])

    @event_handler(ev.CHAT, ev.CHAT_TRANSFERRED)
    def on_chat_transferred(self, payload):
        data = ev.load(ev.CHAT, ev.CHAT_TRANSFERRED, payload)
        self.unit(domain.chat_counsellor_changed, data["chat_id"], data["to_counsellor_id"])

    @timer(interval=ALERT_TICK_S)
    def repeat_alerts(self):
        sent = self.unit(domain.due_alerts, alert_repeat_s(), alert_raise_s())
        if sent:
            log.info(
                "re-sent %d unacknowledged alert(s), %d raised to all supervisors",
                len(sent),
                sum(1 for a in sent if a["raised"]),
            )

    @timer(interval=3600)
    def purge_screen_context(self):
        self.unit(domain.purge_screen_context, config.retention_days())

    @rpc
    def mark_risk(self, chat_id, at_risk, reason, actor, categories=None):
        """A counsellor's or supervisor's hand mark, kept as a labelled example."""
        return self.unit(domain.record_correction, self.vault, chat_id, at_risk, reason, actor, categories)

    @rpc
    def flags(self, chat_id):
        return self.read(domain.flags_for, chat_id)

    @rpc
    def chat_risk(self, chat_ids):
        """Per chat: the risk marker a chat card keeps after a reload (see domain.chat_risk)."""
        return self.read(domain.chat_risk, chat_ids)

    @rpc
    def alerts(self, actor):
        return self.read(domain.open_alerts, actor)

    @rpc
    def acknowledge(self, chat_id, actor, alert_id=None):
        return self.unit(domain.acknowledge_alerts, chat_id, actor, alert_id)

    @rpc
    def raise_escalation(self, chat_id, kind, details, actor, counsellor_id=None, facts=None):
        return self.unit(
            domain.raise_escalation,
            self.vault,
            chat_id,
            kind,
            details,
            actor,
            counsellor_id,
            facts,
            config.helpline_name(),
        )

    @rpc
    def update_escalation(self, escalation_id, actor, details=None, status=None, facts=None):
        return self.unit(domain.update_escalation, self.vault, escalation_id, actor, details, status, facts)

    @rpc
    def list_escalations(self, actor, status=None, kind=None, chat_id=None):
        return self.unit(domain.list_escalations, self.vault, actor, status, kind, chat_id)

    @rpc
    def get_escalation(self, escalation_id, actor):
        return self.unit(domain.get_escalation, self.vault, escalation_id, actor)

    @rpc
    def read_identifying(self, escalation_id, actor, chat_live):
        return self.unit(domain.read_identifying, self.vault, escalation_id, actor, chat_live)

    @rpc
    def transcript_access(self, escalation_id, actor):
        return self.unit(domain.transcript_access, escalation_id, actor)

    @rpc
    def audit(self, escalation_id, actor):
        return self.unit(domain.audit_trail, escalation_id, actor)

    @rpc
    def report_pdf(self, escalation_id, actor, labels=None):
        """The report of concern as a PDF, base64 (the RPC carries JSON)."""
        view = self.unit(domain.report_document, self.vault, escalation_id, actor)
        return base64.b64encode(report.render(view, config.helpline_name(), labels)).decode()

    @rpc
    def directory(self):
        return domain.directory()
