"""Issue 13, outcomes 5, 6, 8 and 10 through the real processes on the real
broker: acute danger stays loud (a stored alert, repeated, raised, found by a
supervisor who logs in later), the risk marker survives a reload, reasons
never quote the child, coding follows the chat in the console's language, and
the report of concern is ready to send with the chat beside it."""

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.stack import Stack
from tests.test_escalation_e2e import FAST_ALERTS, RAISE_S, REPEAT_S, Socket, active_chat, patch, raise_, staff

pytestmark = pytest.mark.e2e

RISKY = "han gjør ting med meg som jeg ikke vil og jeg vil ta livet mitt i kveld"
SHOTS = Path(__file__).resolve().parent.parent / "results" / "screenshots"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(
        tmp_path_factory.mktemp("alerts"),
        env={
            **FAST_ALERTS,
            "CHATVAKT_TIMEZONE": "Europe/Oslo",
            "CHATVAKT_HELPLINE_CONTACT": "Alarmtelefonen for barn og unge, 116 111",
        },
    ).start()
    yield running
    running.stop()


def no_quote(reason, child_text):
    assert reason and "«" not in reason and "»" not in reason, reason
    assert child_text not in reason
    assert "gjør ting med meg som jeg ikke vil" not in reason and "i kveld" not in reason
    assert " / " in reason and "matched: " in reason or reason.startswith("Akutt fare")


# --- 5: acute danger stays loud --------------------------------------------------


def test_acute_danger_escalation_raises_a_stored_alert_repeated_raised_and_fetchable(stack):
    counsellor, supervisor = staff(stack), staff(stack, "supervisor")
    chat_id, _child = active_chat(stack, counsellor)
    watching = Socket(stack.url, supervisor.token)
    try:
        raised = raise_(counsellor, chat_id, "acute_danger", {"situation": "tabletter"})
        assert raised["alert_id"]
        first = watching.wait_for("escalation.alert", lambda d: d["alert_id"] == raised["alert_id"], timeout=5)
        assert first["kind"] == "acute_danger" and first["escalation_id"] == raised["escalation_id"]
        assert first["repeat"] == 0 and first["raised"] is False and first["severity"] == "high"
        again = watching.wait_for(
            "escalation.alert", lambda d: d["alert_id"] == raised["alert_id"] and d["repeat"] >= 1, timeout=REPEAT_S + 3
        )
        assert again["kind"] == "acute_danger"
        lifted = watching.wait_for(
            "escalation.alert", lambda d: d["alert_id"] == raised["alert_id"] and d["raised"], timeout=RAISE_S + 3
        )
        assert lifted["kind"] == "acute_danger"
    finally:
        watching.close()

    # a supervisor who logs in later finds it (and so does the console after a reload)
    later = staff(stack, "supervisor")
    listed = later.get("/api/v1/alerts?status=open")
    assert listed.status_code == 200
    mine = [a for a in listed.json()["alerts"] if a["alert_id"] == raised["alert_id"]]
    assert mine and mine[0]["kind"] == "acute_danger" and mine[0]["raised"] is True
    assert mine[0]["escalation_id"] == raised["escalation_id"]
    assert raised["alert_id"] in [a["alert_id"] for a in counsellor.get("/api/v1/alerts").json()["alerts"]]
    assert later.get("/api/v1/alerts?status=acked").status_code == 422

    # the chat card's marker survives a reload, for the counsellor and the supervisor
    for who in (counsellor, later):
        card = next(c for c in who.get("/api/v1/chats?status=active").json()["chats"] if c["chat_id"] == chat_id)
        assert card["risk"] is True and card["acute_danger"] is True and card["acute_danger_open"] is True
        one = who.get(f"/api/v1/chats/{chat_id}").json()
        assert one["risk"] is True and one["acute_danger"] is True and one["reason"].startswith("Akutt fare")

    acked = later.post(f"/api/v1/alerts/{chat_id}/ack", {"alert_id": raised["alert_id"]})
    assert acked.status_code == 200 and acked.json()["acknowledged"] == [raised["alert_id"]]
    assert raised["alert_id"] not in [a["alert_id"] for a in later.get("/api/v1/alerts").json()["alerts"]]


# --- 5 and 6: the risk marker, its reason and the child's message by seq -----------


def test_the_risk_marker_survives_a_reload_with_words_not_quotes_and_seq(stack):
    counsellor, supervisor = staff(stack), staff(stack, "supervisor")
    chat_id, child = active_chat(stack, counsellor)
    posted = child.post(f"/api/v1/chats/{chat_id}/messages", {"text": RISKY})
    seq = posted.json()["seq"]
    deadline = time.monotonic() + 10
    card = None
    while time.monotonic() < deadline:
        card = next(c for c in counsellor.get("/api/v1/chats").json()["chats"] if c["chat_id"] == chat_id)
        if card["risk"]:
            break
        time.sleep(0.2)
    for who in (counsellor, supervisor):
        card = next(c for c in who.get("/api/v1/chats?status=active").json()["chats"] if c["chat_id"] == chat_id)
        assert card["risk"] is True and card["seq"] == seq and card["category"] in ("suicide", "sexual_abuse")
        assert " / " in card["category_words"]
        no_quote(card["reason"], RISKY)
        one = who.get(f"/api/v1/chats/{chat_id}").json()
        assert one["flags"] and {f["seq"] for f in one["flags"]} == {seq}
        for flag in one["flags"]:
            no_quote(flag["reason"], RISKY)
    alerts = [a for a in supervisor.get("/api/v1/alerts").json()["alerts"] if a["chat_id"] == chat_id]
    assert alerts and alerts[0]["seq"] == seq
    no_quote(alerts[0]["reason"], RISKY)
    # a child's own words are not in what a counsellor's list carries about risk
    assert "tabletter" not in str(card)


def test_a_waiting_child_at_risk_carries_category_and_seq_in_the_queue(stack):
    counsellor = staff(stack)
    from tests.client import Api

    started = Api(stack.url).post("/api/v1/chats", {"message": RISKY}).json()
    deadline = time.monotonic() + 10
    entry = None
    while time.monotonic() < deadline:
        entry = next(
            (w for w in counsellor.get("/api/v1/queue").json()["waiting"] if w["chat_id"] == started["chat_id"]), None
        )
        if entry and entry.get("risk") and entry.get("seq"):
            break
        time.sleep(0.2)
    # the child's first message (after the service's welcome)
    assert entry and entry["risk"] is True and isinstance(entry["seq"], int) and entry["category"]
    no_quote(entry["reason"], RISKY)
    Api(stack.url, started["token"]).post(f"/api/v1/chats/{started['chat_id']}/end")


# --- 8: coding follows the chat ----------------------------------------------------


def test_coding_is_prefilled_from_the_escalation_and_speaks_nb_and_en(stack):
    counsellor = staff(stack)
    chat_id, child = active_chat(stack, counsellor)
    raise_(counsellor, chat_id, "acute_danger", {})
    assert child.post(f"/api/v1/chats/{chat_id}/end").status_code == 200
    coding = counsellor.get(f"/api/v1/chats/{chat_id}/coding")
    assert coding.status_code == 200, coding.text
    data = coding.json()
    assert data["coded"] is False and data["acute_danger_assessed"] is True and data["acute_danger"] is True
    assert data["prefilled"]["source"] == "escalation"

    bad = {"gender": "girl", "categories": [], "acute_danger_assessed": False, "acute_danger": True}
    url = f"/api/v1/chats/{chat_id}/coding"
    nb = counsellor.put(url, bad, headers={"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"})
    en = counsellor.put(url, bad, headers={"Accept-Language": "en-GB,en;q=0.9"})
    default = counsellor.put(url, bad)
    query = counsellor.put(url + "?lang=en", bad, headers={"Accept-Language": "nb"})
    for response in (nb, en, default, query):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid"
        assert set(response.json()["error"]["fields"]) == {"categories", "acute_danger_assessed", "acute_danger"}
    assert "Bekreft at du har vurdert akutt fare" in nb.json()["error"]["fields"]["acute_danger_assessed"][0]
    assert "Velg minst én kategori" in nb.json()["error"]["fields"]["categories"][0]
    assert "Confirm that you assessed acute danger" in en.json()["error"]["fields"]["acute_danger_assessed"][0]
    assert default.json()["error"]["fields"] == nb.json()["error"]["fields"]
    assert query.json()["error"]["fields"] == en.json()["error"]["fields"]
    wrong = counsellor.put(url, {"gender": "robot"}, headers={"Accept-Language": "nb"})
    assert wrong.status_code == 422 and wrong.json()["error"]["fields"]["categories"] == ["Må fylles ut."]


# --- 10: the report of concern, ready to send, with the chat beside it ----------------


def test_report_of_concern_is_ready_to_send_and_the_supervisor_reads_the_chat(stack):
    counsellor, supervisor = staff(stack), staff(stack, "supervisor")
    chat_id, child = active_chat(stack, counsellor, gender="girl", age=13)
    child.post(f"/api/v1/chats/{chat_id}/messages", {"text": "pappa slår meg når han drikker"})
    report = raise_(counsellor, chat_id, "report_of_concern", {})
    eid = report["escalation_id"]
    assert (
        patch(
            counsellor,
            eid,
            {
                "details": {
                    "cause": "Barnet forteller om slag hjemme når faren drikker.",
                    "examples": ["Blåmerker på armen."],
                    "duration": "over_time",
                    "recipient": "Barneverntjenesten i Bergen",
                }
            },
        ).status_code
        == 200
    )

    # the supervisor reads the chat beside the draft: audited, supervisors only
    transcript = supervisor.get(f"/api/v1/escalations/{eid}/transcript")
    assert transcript.status_code == 200, transcript.text
    texts = [m["text"] for m in transcript.json()["messages"]]
    assert "pappa slår meg når han drikker" in texts
    assert all(isinstance(m["seq"], int) for m in transcript.json()["messages"])
    assert counsellor.get(f"/api/v1/escalations/{eid}/transcript").status_code == 403
    assert supervisor.get("/api/v1/escalations/nope/transcript").status_code == 404
    audit = supervisor.get(f"/api/v1/escalations/{eid}/audit").json()["audit"]
    assert any(a["action"] == "read" and a["detail"] == "transcript" for a in audit)

    assert patch(supervisor, eid, {"status": "approved"}).status_code == 200
    sent = patch(counsellor, eid, {"details": {"sent_via": "digital"}, "status": "sent"})
    assert sent.status_code == 200
    pdf = supervisor.get(f"/api/v1/escalations/{eid}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils, deploy/local/ensure-poppler.sh) is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / "report-of-concern.pdf"
    path.write_bytes(pdf.content)
    text = " ".join(
        subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout.split()
    )
    head = text.split("1. Hvem meldingen gjelder")[0]
    assert f"Vår referanse: {eid}" in head and "frist" in head and "innen 7 dager" in head
    assert "Alarmtelefonen for barn og unge, 116 111" in head
    assert "UTC" not in text and "—" not in text and "sendt —" not in text
    assert re.search(r"\d\d\.\d\d\.\d{4} kl\. \d\d:\d\d", text)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "80",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(path),
            str(SHOTS / "report-of-concern-page1"),
        ],
        check=True,
    )
    assert (SHOTS / "report-of-concern-page1.png").stat().st_size > 5000
    path.unlink()
