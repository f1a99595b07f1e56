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
