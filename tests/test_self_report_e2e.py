"""issue 14, outcome 1 and the route of outcome 6, on the real stack and broker.

The child says "yes, I am in danger now" with the first message (POST
/api/v1/chats in_danger) or later (POST /api/v1/chats/{id}/danger): the chat
moves into the at-risk tier ahead of earlier ordinary chats with the reason in
words, supervisors get an escalation.alert on their socket and a stored alert,
and staff read in_danger on the chat. Staff mark a chat at risk or not by hand
(POST /api/v1/chats/{id}/risk): a labelled example in the escalation service's
database, and a waiting chat moves.

The session stack is shared: orders are asserted relative to our own chats, and
every chat is ended at the end."""

import json

import pytest
from sqlalchemy import create_engine, text

from chatvakt.config import db_url_from
from tests.client import Socket
from tests.test_queue_e2e import eventually, leave, new_chat, staff

pytestmark = pytest.mark.e2e

SAID = "Sier selv at hen er i fare nå"
SAID_EN = "says they are in danger now"


def entry(supervisor, chat_id):
    return next((w for w in supervisor.get("/api/v1/queue").json()["waiting"] if w["chat_id"] == chat_id), None)


def before(supervisor, first, second):
    ids = [w["chat_id"] for w in supervisor.get("/api/v1/queue").json()["waiting"]]
    return first in ids and second in ids and ids.index(first) < ids.index(second)


def stored_alert(supervisor, chat_id):
    return next((a for a in supervisor.get("/api/v1/alerts").json()["alerts"] if a["chat_id"] == chat_id), None)


def test_a_yes_with_the_first_message_moves_the_chat_up_alerts_and_is_stored(stack):
    supervisor = staff(stack, "supervisor")
    watch = Socket(stack.url, supervisor.token)
    a, b = new_chat(stack), new_chat(stack, "hei, jeg lurer på noe")
    said = new_chat(stack, "kan jeg snakke med noen?", in_danger=True)
    said_no, quiet = new_chat(stack, "hei", in_danger=False), new_chat(stack, "hei", in_danger=None)
    try:
        eventually(lambda: before(supervisor, said.chat_id, a.chat_id) and before(supervisor, said.chat_id, b.chat_id))
        row = entry(supervisor, said.chat_id)
        assert row["risk"] and row["priority"] >= 20 and row["priority_source"] == "self_report"
        assert SAID in row["reason"] and SAID_EN in row["reason"]
        assert not entry(supervisor, said_no.chat_id)["risk"]
        # the supervisors' socket and the stored alert
        alert = watch.wait_for("escalation.alert", lambda d: d["chat_id"] == said.chat_id, timeout=10)
        assert alert["category"] == "self_report" and alert["severity"] == "high" and SAID in alert["reason"]
        kept = eventually(lambda: stored_alert(supervisor, said.chat_id))
        assert kept["alert_id"] == alert["alert_id"] and kept["category"] == "self_report"
        assert stored_alert(supervisor, said_no.chat_id) is None
        # stored on the chat: staff read it, the child's own view does not carry it
        views = {c.chat_id: supervisor.get(f"/api/v1/chats/{c.chat_id}").json() for c in (said, said_no, quiet)}
        assert [views[c.chat_id]["in_danger"] for c in (said, said_no, quiet)] == [True, False, None]
        assert "in_danger" not in said.get(f"/api/v1/chats/{said.chat_id}").json()
        # the child's own place says so too
        assert (
            said.get(f"/api/v1/chats/{said.chat_id}").json()["position"]
            < a.get(f"/api/v1/chats/{a.chat_id}").json()["position"]
        )
    finally:
        watch.close()
        leave(a, b, said, said_no, quiet)


def test_saying_it_later_moves_a_waiting_chat_once(stack):
    supervisor = staff(stack, "supervisor")
    counsellor = staff(stack, "counsellor")
    watch = Socket(stack.url, supervisor.token)
    a = new_chat(stack)
    later = new_chat(stack, "hei", in_danger=False)
    other = new_chat(stack)
    try:
        eventually(lambda: before(supervisor, a.chat_id, later.chat_id))
        path = f"/api/v1/chats/{later.chat_id}/danger"
        first = later.post(path, {"in_danger": True})
        assert first.status_code == 200 and first.json() == {
            "chat_id": later.chat_id,
            "in_danger": True,
            "changed": True,
        }
        eventually(lambda: before(supervisor, later.chat_id, a.chat_id))
        assert SAID in entry(supervisor, later.chat_id)["reason"]
        watch.wait_for("escalation.alert", lambda d: d["chat_id"] == later.chat_id, timeout=10)
        assert eventually(lambda: stored_alert(supervisor, later.chat_id))["category"] == "self_report"
        assert supervisor.get(f"/api/v1/chats/{later.chat_id}").json()["in_danger"] is True
        # idempotent: the same yes again changes nothing and alerts no one again
        again = later.post(path, {"in_danger": True})
        assert again.status_code == 200 and again.json()["changed"] is False
        # every bad input a clear 4xx
        assert later.post(path, {"in_danger": "yes"}).status_code == 422
        assert later.post(path, {}).status_code == 422
        assert later.post(path, {"in_danger": True, "extra": 1}).status_code == 422
        assert (
            later.call("POST", path, data=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
        )
        assert other.post(path, {"in_danger": True}).status_code == 404  # another child's chat
        assert counsellor.post(path, {"in_danger": True}).status_code == 403  # staff mark with /risk
        assert supervisor.post(path, {"in_danger": True}).status_code == 403
        eventually(
            lambda: [
                e for e in watch.events if e["event"] == "escalation.alert" and e["data"]["chat_id"] == later.chat_id
            ],
            timeout=2,
        )
        alerts = [
            e
            for e in watch.events
            if e["event"] == "escalation.alert" and e["data"]["chat_id"] == later.chat_id and not e["data"]["repeat"]
        ]
        assert len(alerts) == 1
        leave(later)
        assert later.post(path, {"in_danger": True}).status_code == 409  # ended
    finally:
        watch.close()
        leave(a, later, other)


def _escalation_db(stack, sql, chat_id):
    """Read the escalation service's own database, as an operator would."""
    template = stack.extra_env.get("CHATVAKT_DB_URL")
    url = (
        db_url_from(template.replace("{service}", "escalation"))
        if template
        else f"sqlite:///{stack.workdir / 'var' / 'escalation.sqlite3'}"
    )
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), {"chat": chat_id})]
    finally:
        engine.dispose()


def _corrections(stack, chat_id):
    return _escalation_db(
        stack,
        "SELECT chat_id, at_risk, categories, sealed, actor_role FROM "
        "risk_corrections WHERE chat_id = :chat ORDER BY id",
        chat_id,
    )


def test_staff_mark_risk_by_hand_kept_as_an_example_and_the_queue_follows(stack):
    supervisor = staff(stack, "supervisor")
    counsellor = staff(stack, "counsellor")
    a = new_chat(stack)
    # a message the screen does not flag, so no finding races the hand mark
    marked = new_chat(stack, "hei, kan jeg spørre om noe om kompisen min?")
    try:
        eventually(lambda: entry(supervisor, marked.chat_id))
        # the screen has kept the first message (sealed) that the example is made of
        eventually(
            lambda: _escalation_db(stack, "SELECT seq FROM screen_context WHERE chat_id = :chat", marked.chat_id)
        )
        path = f"/api/v1/chats/{marked.chat_id}/risk"
        why = "Venn som ikke våkner: akutt"
        # any counsellor may mark a chat in the queue (one click from its card)
        done = counsellor.post(path, {"at_risk": True, "reason": why, "categories": ["someone_else"]})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["at_risk"] is True and body["kept_as_example"] is True and body["queue_changed"] is True
        row = eventually(lambda: entry(supervisor, marked.chat_id))
        assert row["risk"] and row["priority_source"] == "hand_mark" and "Markert i fare" in row["reason"]
        assert why not in json.dumps(row)  # the reason stays sealed with the correction
        assert before(supervisor, marked.chat_id, a.chat_id)
        stored = _corrections(stack, marked.chat_id)
        assert [(bool(r["at_risk"]), r["actor_role"]) for r in stored] == [(True, "counsellor")]
        assert why not in stored[0]["sealed"] and "kompisen" not in stored[0]["sealed"]
        # a supervisor takes it back: not at risk, back in the ordinary line
        undo = supervisor.post(path, {"at_risk": False, "reason": "Feil: fortalt om en film"})
        assert undo.status_code == 200 and undo.json()["queue_changed"] is True
        row = entry(supervisor, marked.chat_id)
        assert not row["risk"] and "ikke i fare" in row["reason"]
        assert [bool(r["at_risk"]) for r in _corrections(stack, marked.chat_id)] == [True, False]
        # a child's token may not mark; bad input is a clear 4xx; unknown chats 404
        assert marked.post(path, {"at_risk": True, "reason": "x"}).status_code in (403, 404)
        assert a.post(path, {"at_risk": True, "reason": "x"}).status_code in (403, 404)
        assert counsellor.post(path, {"at_risk": "ja", "reason": "x"}).status_code == 422
        assert counsellor.post(path, {"at_risk": True}).status_code == 422
        assert counsellor.post(path, {"at_risk": True, "reason": ""}).status_code == 422
        assert counsellor.post(path, {"at_risk": False, "reason": "x", "categories": ["suicide"]}).status_code == 422
        assert supervisor.post("/api/v1/chats/nope/risk", {"at_risk": True, "reason": "x"}).status_code == 404
        # past the queue, a counsellor marks only a chat of their own
        leave(marked)
        assert counsellor.post(path, {"at_risk": True, "reason": "x"}).status_code == 404
        assert supervisor.post(path, {"at_risk": True, "reason": "etter samtalen"}).json()["queue_changed"] is False
    finally:
        leave(a, marked)
