"""issue 13, outcome 5, on the real stack and broker: the child's own "I am in
danger" after the screen's "suicide" leaves one stored alert that names both,
so a supervisor who logs in afterwards (GET /api/v1/alerts) sees both."""

import pytest

from tests.test_queue_e2e import eventually, leave, new_chat, staff

pytestmark = pytest.mark.e2e


def stored(supervisor, chat_id):
    return next((a for a in supervisor.get("/api/v1/alerts").json()["alerts"] if a["chat_id"] == chat_id), None)


def test_a_supervisor_who_logs_in_later_sees_the_screens_category_and_the_childs_own(stack):
    early = staff(stack, "supervisor")
    child = new_chat(stack, "jeg vil ta livet mitt i kveld")
    try:
        first = eventually(lambda: stored(early, child.chat_id))
        assert first["categories"] == ["suicide"]
        said = child.post(f"/api/v1/chats/{child.chat_id}/danger", {"in_danger": True})
        assert said.status_code == 200 and said.json()["changed"] is True
        later = staff(stack, "supervisor")
        alert = eventually(lambda: (a := stored(later, child.chat_id)) and "self_report" in a["categories"] and a)
        assert alert["alert_id"] == first["alert_id"]
        assert alert["categories"] == ["suicide", "self_report"]
        assert alert["categories_words"][0] == "Selvmordsfare / suicide risk"
        assert "says they are in danger now" in alert["categories_words"][1]
    finally:
        leave(child)
