"""The escalation service's work for the counsellor's half of the relay
(issue 16): none, not even validating the payload."""

from types import SimpleNamespace


def test_the_counsellors_messages_are_not_screened_or_validated():
    from services.escalation.service import EscalationService

    units = []
    service = SimpleNamespace(unit=lambda *args, **kwargs: units.append(args))
    # Not a valid message_posted payload at all: it is let go before validation.
    EscalationService.on_message_posted(service, {"sender": "counsellor", "text": None})
    assert units == []


def _payload(seq, text="hei"):
    return {
        "chat_id": "c-1",
        "seq": seq,
        "sender": "child",
        "text": text,
        "sent_at": "2026-12-06T00:00:00Z",
        "counsellor_id": "k-1",
        "visibility": "all",
        "kind": "message",
        "author_id": None,
        "suspect": False,
    }


def test_a_later_message_without_findings_takes_no_write_lock():
    from services.escalation.service import EscalationService

    units = []
    found = {2: None, 9: [], 10: ["a finding"]}  # what findings_alone answers per seq
    service = SimpleNamespace(
        screen=None,
        vault=None,
        read_core=lambda _fn, _screen, _vault, _chat, seq, _text, _kept: found[seq],
        unit=lambda *args, **kwargs: units.append(args[3]),
    )
    for seq in (2, 9, 10):
        EscalationService.on_message_posted(service, _payload(seq))
    assert units == [2, 10]  # a first message, and a finding to record


def test_a_chat_known_full_is_screened_without_opening_the_database(monkeypatch):
    from services.escalation import domain
    from services.escalation import service as module
    from services.escalation.service import EscalationService

    class Screen:
        def screen_messages(self, messages):
            return []

    reads, units = [], []
    monkeypatch.setattr(module, "KEPT", domain.KeptContexts())
    module.KEPT.remember("c-1", frozenset({1, 2, 3}))
    service = SimpleNamespace(
        screen=Screen(),
        vault=object(),
        read_core=lambda *args: reads.append(args[4]),
        unit=lambda *args, **kwargs: units.append(args[3]),
    )
    for seq in (9, 10, 2):
        EscalationService.on_message_posted(service, _payload(seq))
    assert reads == [2] and units == [2]  # only a first message (redelivered) is read and kept


def test_the_risk_screens_handler_writes_no_line_per_message():
    # chatvakt.observability.per_message: the gateway's access line has the request.
    from chatvakt.observability import PER_MESSAGE
    from services.escalation.service import EscalationService

    assert getattr(EscalationService.on_message_posted, PER_MESSAGE, False)
