"""Issue 13, outcome 5: a counsellor's acute-danger escalation raises a stored
alert like the risk screen's, and a chat's risk marker can be fetched again."""

import datetime as dt

from chatvakt import events as ev
from chatvakt.testing import read, run
from services.escalation import domain

from .test_domain import COUNSELLOR, SUP, FakeScreen

T0 = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.timezone.utc)


def test_acute_danger_escalation_stores_an_alert_that_repeats_then_raises(db, vault):
    result, outbox = run(
        db, domain.raise_escalation, vault, "chat-1", "acute_danger", {}, COUNSELLOR, "c-1", None, "Alarmtelefonen", T0
    )
    assert result["alert_id"]
    assert outbox.names() == ["escalation_raised", "alert_raised"]
    payload = dict(outbox.events)["alert_raised"]
    ev.dump(ev.ESCALATION, ev.ALERT_RAISED, payload)  # the contract holds
    assert payload["kind"] == "acute_danger" and payload["escalation_id"] == result["escalation_id"]
    assert payload["severity"] == "high" and "«" not in payload["reason"]

    # a supervisor who logs in later finds it in the fetchable list
    listed = read(db, domain.open_alerts, SUP)
    assert [(a["alert_id"], a["kind"]) for a in listed] == [(result["alert_id"], "acute_danger")]
    assert listed[0]["category_words"].startswith("Akutt fare")
    # and so does the chat's counsellor
    assert [a["alert_id"] for a in read(db, domain.open_alerts, COUNSELLOR)] == [result["alert_id"]]

    sent, outbox = run(db, domain.due_alerts, 60, 180, T0 + dt.timedelta(seconds=61))
    assert [(s["kind"], s["repeat"], s["raised"]) for s in sent] == [("acute_danger", 1, False)]
    ev.dump(ev.ESCALATION, ev.ALERT_REPEATED, outbox.events[0][1])
    sent, _ = run(db, domain.due_alerts, 60, 180, T0 + dt.timedelta(seconds=181))
    assert [(s["repeat"], s["raised"]) for s in sent] == [(2, True)]

    run(db, domain.acknowledge_alerts, "chat-1", SUP, result["alert_id"])
    assert read(db, domain.open_alerts, SUP) == []
    assert run(db, domain.due_alerts, 60, 180, T0 + dt.timedelta(seconds=999))[0] == []


def test_the_screens_alert_and_the_acute_alert_are_separate(db, vault):
    """Acknowledging the screen's alert must not silence a later acute-danger one."""
    screened, _ = run(db, domain.screen_message, FakeScreen(), "chat-1", 2, "danger", "c-1", T0)
    result, _ = run(db, domain.raise_escalation, vault, "chat-1", "acute_danger", {}, COUNSELLOR, "c-1")
    assert result["alert_id"] != screened["alert_id"]
    run(db, domain.acknowledge_alerts, "chat-1", SUP, screened["alert_id"])
    still = read(db, domain.open_alerts, SUP)
    assert [a["kind"] for a in still] == ["acute_danger"]
    assert still[0]["seq"] == 2  # the child's flagged message, for the transcript


def test_chat_risk_survives_for_a_card_after_a_reload(db, vault):
    run(db, domain.screen_message, FakeScreen(), "chat-1", 3, "worry", "c-1", T0)
    run(db, domain.screen_message, FakeScreen(), "chat-1", 5, "danger", "c-1", T0)
    run(db, domain.raise_escalation, vault, "chat-2", "acute_danger", {}, COUNSELLOR, "c-1")
    found = read(db, domain.chat_risk, ["chat-1", "chat-2", "chat-3", 7])
    assert set(found) == {"chat-1", "chat-2"}
    one = found["chat-1"]
    assert one["risk"] and one["category"] == "suicide" and one["seq"] == 5
    assert one["severity"] == "high" and [f["seq"] for f in one["flags"]] == [3, 5]
    assert not one["acute_danger"]
    two = found["chat-2"]
    assert two["risk"] and two["acute_danger"] and two["acute_danger_open"]
    assert two["category"] == "acute_danger" and two["reason"].startswith("Akutt fare")
