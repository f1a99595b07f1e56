"""The child's self-report on the page (issue 14, outcome 1), in a real Chromium at
390x844 and 320x640: the question with the first message, one tap on Ja, the
"Jeg trenger hjelp nå" button in sight while waiting and working with one tap, the
queue showing the chat at risk, screenshots, and no serious or critical axe finding.

The browser part runs in a child process (tests/browser/danger_flow.py), as for
test_child_page.py."""

from pathlib import Path

from tests.browser.runner import AXE, MARKS, SCREENSHOTS, check_states, run_flow

FLOW = Path(__file__).resolve().parent / "danger_flow.py"
SIZES = ["390x844", "320x640"]
STATES = ["question", "waiting-said-at-start", "help-button", "help-said"]

pytestmark = MARKS


def test_the_child_says_they_are_in_danger_with_one_tap(stack):
    assert AXE.exists(), f"axe-core is not installed at {AXE}: run deploy/local/ensure-axe.sh"
    config = {"url": stack.url, "supervisor": ["demo-supervisor", "demo"], "out": str(SCREENSHOTS), "axe": str(AXE)}
    result = run_flow(FLOW, config, "child-danger-result.json", "CHATVAKT_CHILD_FLOW_TIMEOUT_S")
    check_states(result, "child-danger-", "danger-", SIZES, STATES)
    for size in SIZES:
        for fact in (f"start_yes_{size}", f"help_now_{size}"):
            assert result["facts"][fact]["priority"] >= 20, result["facts"][fact]
