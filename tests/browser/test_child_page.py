"""The child's page at the moment of danger (issue 13, outcomes 1, 2, 3 and 12 for the
child's page): quick exit and the emergency numbers in sight and working with one tap
in every state, the newest message always above the message box, a calm waiting and
ended screen, and no serious or critical axe-core violation, at 390x844, 320x640,
1280x720 and 1440x900.

The browser part runs in a child process (tests/browser/child_flow.py) because
Playwright's sync API does not run under the suite's eventlet monkey patching."""

import secrets
from pathlib import Path

import requests

from tests.browser.runner import AXE, MARKS, SCREENSHOTS, check_states, run_flow

FLOW = Path(__file__).resolve().parent / "child_flow.py"
SIZES = ["390x844", "320x640", "1280x720", "1440x900"]
STATES = [
    "start",
    "waiting",
    "dialog-emergency",
    "waiting-long",
    "chat50",
    "dialog-end",
    "keyboard",
    "scrolled-new",
    "ended",
    "ended-cleared",
]

pytestmark = MARKS


def test_the_childs_page_keeps_the_way_out_and_the_newest_message_in_sight(stack):
    assert AXE.exists(), f"axe-core is not installed at {AXE}: run deploy/local/ensure-axe.sh (make test does)"
    # A counsellor of its own: the shared demo counsellor may be in a cool-down
    # after another test's acute-danger chat, and then takes no chat.
    username = f"child-page-{secrets.token_hex(3)}"
    password = stack.add_account(username, "Cathrine Test", "counsellor")
    config = {
        "url": stack.url,
        "counsellor": [username, password],
        "supervisor": ["demo-supervisor", "demo"],
        "out": str(SCREENSHOTS),
        "axe": str(AXE),
    }
    result = run_flow(FLOW, config, "child-flow-result.json", "CHATVAKT_CHILD_FLOW_TIMEOUT_S")

    check_states(result, "child-", "", SIZES, STATES)

    facts = result["facts"]
    for label in ("quick_exit_tap", "quick_exit_escape"):
        assert facts[label]["storage_after"] == [0, 0, ""]
        assert facts[label]["server"]["ended_by"] == "quick_exit"
    assert facts["quick_exit_tap"]["server"]["status"] == "ended"
    # The page's own 409 branch: the end learnt from a refused message, not from a push.
    assert facts["send_after_end"] == {"status": 409, "stored": False}

    # What the page did is what the system recorded: the counsellor sees the quick exit.
    counsellor = requests.post(
        f"{stack.url}/api/v1/auth/login", timeout=10, json={"username": username, "password": password}
    ).json()["token"]
    chat_id = facts["quick_exit_chat_id"]
    chat = requests.get(
        f"{stack.url}/api/v1/chats/{chat_id}", timeout=10, headers={"Authorization": f"Bearer {counsellor}"}
    ).json()
    assert chat["status"] == "ended" and chat["ended_by"] == "quick_exit"
