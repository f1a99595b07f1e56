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
         "console-stats-desktop", "console-stats-phone"]


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
              "supervisor": [f"browser-s-{suffix}", sup_password], "out": str(SCREENSHOTS)}
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    proc = subprocess.run([sys.executable, str(FLOW), json.dumps(config)], capture_output=True, text=True,
                          timeout=int(os.environ.get("CHATVAKT_BROWSER_FLOW_TIMEOUT_S", "240")), env=env,
                          cwd=ROOT)
    assert proc.stdout.strip(), f"the browser flow printed nothing; stderr:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] is None, (
        f"failed after step {result['failed']['step_after']!r}: {result['failed']['error']}\n"
        f"{result['failed']['trace']}\nsteps passed: {result['steps']}")

    assert result["third_party"] == [], "the pages made requests that left the gateway"
    facts = result["facts"]
    assert facts["storage_after_exit"] == [0, 0, ""] and facts["cookies_after_exit"] == 0
    assert facts["url_after_back"] == "about:blank"
    assert facts["charts"] >= 4
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
    assert "mobbing" in mine[0]["details"]["what"]


def test_pages_are_served_with_a_strict_policy(stack):
    for path in ("/", "/console/", "/static/child/child.js", "/static/console/console.js",
                 "/static/console/charts.js", "/static/common/net.js", "/static/child/child.css"):
        response = requests.get(stack.url + path, timeout=10)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "Set-Cookie" not in response.headers
    page = requests.get(stack.url + "/", timeout=10).text
    assert "<script>" not in page and "style=" not in page and "http" not in page.replace(
        'http-equiv', '')
