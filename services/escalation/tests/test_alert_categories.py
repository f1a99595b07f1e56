"""Issue 13, outcome 5: an open alert keeps every category found for it. The
child's own "I am in danger" after the screen's "suicide" must not leave a
supervisor who logs in later with only "says they are in danger"."""

import datetime as dt

from chatvakt import events as ev
from chatvakt.testing import read, run
from services.escalation import domain
from services.escalation.risk import RiskFinding

T0 = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.timezone.utc)
SUP = {"role": "supervisor", "id": "sup-1", "name": "Siri Vakt"}


class Screen:
    """Findings by word, like the lexicon's, without the lexicon."""

    FOUND = {"die": ("suicide", "high"), "cut": ("self_harm", "medium"), "hits": ("violence_home", "high")}

    def screen(self, text):
        return [
            RiskFinding(category, severity, (word,), domain.reason_text(category, (word,)))
            for word, (category, severity) in self.FOUND.items()
            if word in text
        ]


def test_a_self_report_after_the_screen_keeps_both_categories(db):
    screened, _ = run(db, domain.screen_message, Screen(), "chat-1", 3, "i want to die", "c-1", T0)
    said, _ = run(db, domain.self_report, "chat-1", True, "c-1", False, T0 + dt.timedelta(seconds=5))
    assert said["alert_id"] == screened["alert_id"]  # still one open alert per chat

    [alert] = read(db, domain.open_alerts, SUP)
    assert alert["categories"] == ["suicide", "self_report"]
    assert alert["categories_words"][0] == "Selvmordsfare / suicide risk"
    assert alert["categories_words"][1].endswith("/ says they are in danger now")
    # and every reason, each once: the screen's is not lost to the child's own
    assert alert["reason"] == "Selvmordsfare / suicide risk — matched: die; " + domain.SELF_REPORT_REASON
    # `category` names the alert as before: the later of equally severe findings
    assert alert["category"] == "self_report" and alert["severity"] == "high"

    # the repeat carries them too, and the contract holds
    sent, outbox = run(db, domain.due_alerts, 60, 180, T0 + dt.timedelta(seconds=70))
    assert sent[0]["categories"] == ["suicide", "self_report"]
    ev.dump(ev.ESCALATION, ev.ALERT_REPEATED, outbox.events[0][1])


def test_categories_are_most_severe_first_and_never_repeated(db):
    run(db, domain.screen_message, Screen(), "chat-1", 1, "sometimes i cut", None, T0)
    run(db, domain.screen_message, Screen(), "chat-1", 2, "he hits me and i cut", None, T0)
    run(db, domain.screen_message, Screen(), "chat-1", 4, "i want to die", None, T0)
    [alert] = read(db, domain.open_alerts, SUP)
    assert alert["categories"] == ["violence_home", "suicide", "self_harm"]
    assert alert["category"] == "suicide"


def test_an_acknowledged_alert_starts_over(db):
    first, _ = run(db, domain.screen_message, Screen(), "chat-1", 1, "i want to die", None, T0)
    run(db, domain.acknowledge_alerts, "chat-1", SUP, first["alert_id"])
    run(db, domain.self_report, "chat-1", True, None, False, T0 + dt.timedelta(seconds=5))
    [alert] = read(db, domain.open_alerts, SUP)
    assert alert["alert_id"] != first["alert_id"] and alert["categories"] == ["self_report"]


def test_an_alert_stored_before_categories_reads_as_its_one_category():
    row = type(
        "Row",
        (),
        {
            "id": "a",
            "chat_id": "c",
            "kind": None,
            "seq": 1,
            "escalation_id": None,
            "category": "suicide",
            "categories": None,
            "severity": "high",
            "reason": "r",
            "counsellor_id": None,
            "detected_at": T0,
            "last_sent_at": T0,
            "sent_count": 1,
            "raised_at": None,
            "acked_at": None,
            "acked_by": None,
        },
    )
    view = domain.alert_view(row)
    assert view["categories"] == ["suicide"] and view["categories_words"] == ["Selvmordsfare / suicide risk"]
    # and an older payload without them still loads
    payload = {key: view[key] for key in domain.ALERT_EVENT_KEYS if not key.startswith("categories")}
    assert ev.load(ev.ESCALATION, ev.ALERT_REPEATED, payload)["categories"] is None
