"""The two web pages in a real headless Chromium, against the real stack.

Playwright's sync API does not run under the suite's eventlet monkey patching,
so the browser part runs in a child process (tests/browser/flow.py) that
reports JSON; this test checks what it found."""
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
FLOW = Path(__file__).resolve().parent / "flow.py"
CHROMIUM = os.environ.get("CHATVAKT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "results" / "screenshots"
SHOTS = ["child-start-phone", "child-waiting-phone", "child-chat-phone", "child-start-desktop",
         "console-login-desktop", "console-chat-desktop", "console-chat-phone", "console-coding-desktop",
         "console-stats-desktop", "console-stats-phone", "console-alert-desktop", "console-transfer-desktop",
         "console-report-of-concern-desktop", "console-supervisor-desktop"]


def _playwright_missing():
    try:
        import playwright  # noqa: F401
    except ImportError:
        return True
    return False


pytestmark = [
    pytest.mark.browser, pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no Chromium at {CHROMIUM} (deploy/local/ensure-chromium.sh installs it)"),
    pytest.mark.skipif(_playwright_missing(), reason="the playwright package is not installed"),
]


def test_child_and_counsellor_hold_a_whole_chat(stack):
    suffix = secrets.token_hex(3)
    name = f"Ingrid Test{suffix}"
    password = stack.add_account(f"browser-c-{suffix}", name, "counsellor")
    sup_password = stack.add_account(f"browser-s-{suffix}", f"Vera Vakt{suffix}", "supervisor")
    config = {"url": stack.url, "counsellor": [f"browser-c-{suffix}", password, name],
              "supervisor": [f"browser-s-{suffix}", sup_password], "supervisor_name": f"Vera Vakt{suffix}",
              "out": str(SCREENSHOTS)}
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    proc = subprocess.run([sys.executable, str(FLOW), json.dumps(config)], capture_output=True, text=True,
                          timeout=int(os.environ.get("CHATVAKT_BROWSER_FLOW_TIMEOUT_S", "240")), env=env,
                          cwd=ROOT)
    assert proc.stdout.strip(), f"the browser flow printed nothing; stderr:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # What the flow saw (steps, skips, facts, page errors), for a person reading the screenshots.
    (SCREENSHOTS / "flow-result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    assert result["failed"] is None, (
        f"failed after step {result['failed']['step_after']!r}: {result['failed']['error']}\n"
        f"{result['failed']['trace']}\nsteps passed: {result['steps']}")

    assert result["third_party"] == [], "the pages made requests that left the gateway"
    # The browser logs failed requests itself (the deliberate 422s, the socket cut while offline);
    # anything else is the pages' own error.
    own = [e for e in result["page_errors"]
           if "Failed to load resource" not in e and "ERR_INTERNET_DISCONNECTED" not in e]
    assert own == [], "the pages threw or logged errors"
    facts = result["facts"]
    assert facts["storage_after_exit"] == [0, 0, ""] and facts["cookies_after_exit"] == 0
    assert facts["url_after_back"] == "about:blank"
    assert facts["charts"] >= 4
    assert facts["pdf_magic"] == "%PDF-" and facts["pdf_bytes"] > 1000
    for shot in SHOTS:
        assert (SCREENSHOTS / f"{shot}.png").stat().st_size > 1000, shot

    # What the pages did is what the system recorded.
    sup = requests.post(f"{stack.url}/api/v1/auth/login", timeout=10,
                        json={"username": f"browser-s-{suffix}", "password": sup_password}).json()["token"]
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
    for path in ("/", "/console/", "/static/child/child.js", "/static/console/console.js", "/static/console/chatcard.js",
                 "/static/console/charts.js", "/static/common/net.js", "/static/child/child.css"):
        response = requests.get(stack.url + path, timeout=10)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "Set-Cookie" not in response.headers
    page = requests.get(stack.url + "/", timeout=10).text
    assert "<script>" not in page and "style=" not in page and "http" not in page.replace(
        'http-equiv', '')
