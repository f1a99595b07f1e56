"""The two web pages in a real headless Chromium, against the real stack.

Playwright's sync API does not run under the suite's eventlet monkey patching,
so the browser part runs in a child process (tests/browser/flow.py) that
reports JSON; this test checks what it found."""

import secrets
from pathlib import Path

import requests

from tests.browser.runner import MARKS, SCREENSHOTS, run_flow

FLOW = Path(__file__).resolve().parent / "flow.py"
SHOTS = [
    "child-start-phone",
    "child-waiting-phone",
    "child-chat-phone",
    "child-start-desktop",
    "console-login-desktop",
    "console-chat-desktop",
    "console-chat-phone",
    "console-coding-desktop",
    "console-stats-desktop",
    "console-stats-phone",
    "console-alert-desktop",
    "console-transfer-desktop",
    "console-report-of-concern-desktop",
    "console-supervisor-desktop",
]

pytestmark = MARKS


def test_child_and_counsellor_hold_a_whole_chat(stack):
    suffix = secrets.token_hex(3)
    name = f"Ingrid Test{suffix}"
    password = stack.add_account(f"browser-c-{suffix}", name, "counsellor")
    sup_password = stack.add_account(f"browser-s-{suffix}", f"Vera Vakt{suffix}", "supervisor")
    config = {
        "url": stack.url,
        "counsellor": [f"browser-c-{suffix}", password, name],
        "supervisor": [f"browser-s-{suffix}", sup_password],
        "supervisor_name": f"Vera Vakt{suffix}",
        "out": str(SCREENSHOTS),
    }
    # The browser logs failed requests itself (the deliberate 422s, the socket cut while offline);
    # anything else is the pages' own error.
    result = run_flow(
        FLOW,
        config,
        "flow-result.json",
        "CHATVAKT_BROWSER_FLOW_TIMEOUT_S",
        timeout_s=240,
        tolerated=("Failed to load resource", "ERR_INTERNET_DISCONNECTED"),
    )
    facts = result["facts"]
    assert facts["storage_after_exit"] == [0, 0, ""] and facts["cookies_after_exit"] == 0
    assert facts["url_after_back"] == "about:blank"
    assert facts["charts"] >= 4
    assert facts["pdf_magic"] == "%PDF-" and facts["pdf_bytes"] > 1000
    for shot in SHOTS:
        assert (SCREENSHOTS / f"{shot}.png").stat().st_size > 1000, shot

    # What the pages did is what the system recorded.
    sup = requests.post(
        f"{stack.url}/api/v1/auth/login", timeout=10, json={"username": f"browser-s-{suffix}", "password": sup_password}
    ).json()["token"]
    headers = {"Authorization": f"Bearer {sup}"}
    chat_id = facts["chat_id"]
    chat = requests.get(f"{stack.url}/api/v1/chats/{chat_id}", headers=headers, timeout=10).json()
    assert chat["status"] == "ended" and chat["ended_by"] == "quick_exit"
    coding = requests.get(f"{stack.url}/api/v1/chats/{chat_id}/coding", headers=headers, timeout=10).json()
    assert coding["coded"] and coding["categories"] == ["violence.bullying"]
    assert coding["acute_danger_assessed"] is True
    escalations = requests.get(f"{stack.url}/api/v1/escalations", headers=headers, timeout=10).json()
    mine = [e for e in escalations["escalations"] if e["chat_id"] == chat_id]
    assert [e["kind"] for e in mine] == ["report_of_concern"]
    report = mine[0]
    assert "mobbing" in report["details"]["cause"] and report["details"]["person"]["name"] == "Ida"
    assert report["details"]["examples"] == ["Blir slått i friminuttet", "Får stygge meldinger"]
    assert report["status"] == "acknowledged" and report["deadline"]
    assert [h["status"] for h in report["history"]] == ["draft", "approved", "sent", "acknowledged"]
    # The alert the counsellor acknowledged in the console is acknowledged on the server.
    assert facts["alert_acked"], "the ack acknowledged nothing"
    alerts = requests.get(f"{stack.url}/api/v1/alerts", headers=headers, timeout=10).json()["alerts"]
    assert not [a for a in alerts if a["chat_id"] == chat_id]


def test_pages_are_served_with_a_strict_policy(stack):
    for path in (
        "/",
        "/console/",
        "/static/child/child.js",
        "/static/console/console.js",
        "/static/console/chatcard.js",
        "/static/console/charts.js",
        "/static/common/net.js",
        "/static/child/child.css",
    ):
        response = requests.get(stack.url + path, timeout=10)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "Set-Cookie" not in response.headers
    page = requests.get(stack.url + "/", timeout=10).text
    assert "<script>" not in page and "style=" not in page and "http" not in page.replace("http-equiv", "")
