"""The child's self-report on the page (issue 14, outcome 1), in a real Chromium at
390x844 and 320x640: the question with the first message, one tap on Ja, the
"Jeg trenger hjelp nå" button in sight while waiting and working with one tap, the
queue showing the chat at risk, screenshots, and no serious or critical axe finding.

The browser part runs in a child process (tests/browser/danger_flow.py), as for
test_child_page.py."""
from pathlib import Path

import pytest

from tests.browser.runner import run_flow

from tests.browser.test_child_page import AXE, CHROMIUM, SCREENSHOTS, _playwright_missing

FLOW = Path(__file__).resolve().parent / "danger_flow.py"
SIZES = ["390x844", "320x640"]
STATES = ["question", "waiting-said-at-start", "help-button", "help-said"]

pytestmark = [
    pytest.mark.browser, pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no Chromium at {CHROMIUM} (deploy/local/ensure-chromium.sh installs it)"),
    pytest.mark.skipif(_playwright_missing(), reason="the playwright package is not installed"),
]


def test_the_child_says_they_are_in_danger_with_one_tap(stack):
    assert AXE.exists(), f"axe-core is not installed at {AXE}: run deploy/local/ensure-axe.sh"
    config = {"url": stack.url, "supervisor": ["demo-supervisor", "demo"], "out": str(SCREENSHOTS),
              "axe": str(AXE)}
    result = run_flow(FLOW, config, "child-danger-result.json", "CHATVAKT_CHILD_FLOW_TIMEOUT_S")
    for size in SIZES:
        for state in STATES:
            assert (SCREENSHOTS / f"child-danger-{state}-{size}.png").stat().st_size > 1000, (state, size)
            violations = result["axe"][f"danger-{state}-{size}"]
            assert not [v for v in violations if v["impact"] in ("serious", "critical")], (state, size)
        for fact in (f"start_yes_{size}", f"help_now_{size}"):
            assert result["facts"][fact]["priority"] >= 20, result["facts"][fact]
