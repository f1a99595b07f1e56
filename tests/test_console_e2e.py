"""The console's backend promises of issue 13 on the real stack: someone offline
or away cannot take a chat (409 `not_available`, so the console can offer to go
available), the queue tells the console when a wait is too long, and the counsellor
who wrote identifying details can read them back during the chat (and shortly
after), each read in the escalation's audit trail."""

import pytest

from tests.stack import Stack
from tests.test_queue_e2e import eventually, leave, new_chat, staff

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory):
    # A short read-back window so "shortly after" can be passed in a test.
    stack = Stack(
        tmp_path_factory.mktemp("console"), env={"CHATVAKT_READBACK_S": "2", "CHATVAKT_WAIT_WARN_S": "45"}
    ).start()
    yield stack
    stack.stop()


def test_offline_or_away_cannot_take_a_chat(short_stack):
    counsellor = staff(short_stack)
    child = new_chat(short_stack)
    try:
        for status in ("offline", "away"):
            assert counsellor.put("/api/v1/presence", {"status": status}).status_code == 200
            refused = counsellor.post("/api/v1/queue/take", {"chat_id": child.chat_id})
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "not_available" and error["fields"]["status"] == [status]
            assert "available" in error["message"]
            # Nor the head of the queue, and the child keeps the place.
            assert counsellor.post("/api/v1/queue/take", {}).json()["error"]["code"] == "not_available"
            assert child.get(f"/api/v1/chats/{child.chat_id}").json()["status"] == "waiting"
        # An unknown chat is still a 404, whatever the caller's presence.
        assert counsellor.post("/api/v1/queue/take", {"chat_id": "nope"}).status_code == 404
        assert counsellor.put("/api/v1/presence", {"status": "available"}).status_code == 200
        assert counsellor.post("/api/v1/queue/take", {"chat_id": child.chat_id}).status_code == 200
    finally:
        leave(child)


def test_the_console_is_told_when_a_wait_is_too_long(short_stack):
    counsellor = staff(short_stack)
    assert counsellor.get("/api/v1/queue").json()["wait_warn_s"] == 45
    assert counsellor.get("/api/v1/me").json()["wait_warn_s"] == 45


def test_identifying_details_read_back_by_their_writer_and_audited(short_stack):
    counsellor, colleague = staff(short_stack), staff(short_stack)
    supervisor = staff(short_stack, "supervisor")
    child = new_chat(short_stack, "jeg har tabletter her")
    assert counsellor.put("/api/v1/presence", {"status": "available"}).status_code == 200
    assert counsellor.post("/api/v1/queue/take", {"chat_id": child.chat_id}).status_code == 200
    raised = counsellor.post(
        f"/api/v1/chats/{child.chat_id}/escalations",
        {"kind": "acute_danger", "details": {"situation": "tabletter", "location": "Storgata 1, Bergen"}},
    )
    assert raised.status_code == 201, raised.text
    esc = raised.json()["escalation_id"]
    path = f"/api/v1/escalations/{esc}/identifying"
    # The ordinary view still hides it from a counsellor ...
    assert "location" not in counsellor.get(f"/api/v1/escalations/{esc}").json()["details"]
    # ... the read-back gives it to the one who wrote it, during the chat.
    back = counsellor.get(path)
    assert back.status_code == 200, back.text
    assert back.json()["identifying"] == {"location": "Storgata 1, Bergen"}
    # Nobody else's counsellor: 404, as for any escalation they may not see.
    assert colleague.get(path).status_code == 404
    assert colleague.get("/api/v1/escalations/not-an-id/identifying").status_code == 404
    # Ended: still readable for a short while, then 403 (a supervisor still may).
    assert child.post(f"/api/v1/chats/{child.chat_id}/end", {}).status_code == 200
    assert counsellor.get(path).status_code == 200
    eventually(lambda: counsellor.get(path).status_code == 403, timeout=10)
    assert "supervisor" in counsellor.get(path).json()["error"]["message"]
    assert supervisor.get(path).json()["identifying"]["location"] == "Storgata 1, Bergen"
    # Each read-back is in the audit trail, with who read it (the wait above read
    # it back several times, each one logged); refusals read nothing.
    trail = supervisor.get(f"/api/v1/escalations/{esc}/audit").json()["audit"]
    reads = [row for row in trail if (row["detail"] or "").startswith("identifying details read back")]
    mine = [row for row in reads if row["actor_id"] == counsellor.id]
    assert len(mine) >= 2 and all(row["role"] == "counsellor" for row in mine)
    assert len(reads) == len(mine) + 1
    assert reads[-1]["role"] == "supervisor" and "location" in reads[-1]["detail"]
    assert not [row for row in trail if row["actor_id"] == colleague.id]
