"""The counsellor console at the moment of danger (issue 13: outcomes 1 console side,
4, 7, 9, 11, 12 and 13 for the console) at 1280x720, 1440x900 and 390x844: the
browser part runs in tests/browser/console_flow.py (Playwright's sync API does not
run under the suite's eventlet monkey patching)."""

import secrets
from pathlib import Path

import pytest

from tests.browser import runner
from tests.browser.runner import AXE, MARKS, SCREENSHOTS, check_states
from tests.stack import Stack

FLOW = Path(__file__).resolve().parent / "console_flow.py"
SIZES = ["1280x720", "1440x900", "390x844"]
STATES = [
    "login",
    "login-en",
    "queue-new-child",
    "not-available",
    "chat",
    "escalation-panel",
    "readback",
    "referral-preview",
    "quick-exit",
    "cooldown",
    "supervisor-quick-exit",
    "folded",
    "english",
    "self-report",
    "alert",
    "alert-reload",
    "alert-en",
    "flagged",
    "flagged-en",
    "stats",
    "stats-en",
]
# Once, at 1280x720: the child's page in English with a tel: link, the card after the switch,
# the coding dialog's prefill and validation in both languages (outcome 8), and the
# supervisor approving a report of concern beside the transcript (outcome 10), the
# referral's message to the child previewed in English.
ONCE = {
    "child-tel-390x844",
    "child-lang-1280x720",
    "coding-validation-nb-1280x720",
    "coding-validation-en-1280x720",
    "supervisor-approve-1280x720",
    "referral-preview-en-1280x720",
}

pytestmark = MARKS


def run_flow(config):
    return runner.run_flow(
        FLOW, config, f"console-{config.get('mode', 'flow')}-result.json", "CHATVAKT_CONSOLE_FLOW_TIMEOUT_S"
    )


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory):
    """A stack of its own: the shared one carries other tests' open alerts,
    and the console's tab title and alert list must start from a quiet night."""
    stack = Stack(tmp_path_factory.mktemp("console")).start()
    yield stack
    stack.stop()


def test_the_console_never_loses_the_child(console_stack):
    stack = console_stack
    assert AXE.exists(), f"axe-core is not installed at {AXE}: run deploy/local/ensure-axe.sh (make test does)"
    suffix = secrets.token_hex(3)
    password = stack.add_account(f"console-c-{suffix}", f"Cathrine Test{suffix}", "counsellor")
    sup_password = stack.add_account(f"console-s-{suffix}", f"Vera Vakt{suffix}", "supervisor")
    result = run_flow(
        {
            "url": stack.url,
            "counsellor": [f"console-c-{suffix}", password],
            "supervisor": [f"console-s-{suffix}", sup_password],
            "out": str(SCREENSHOTS),
            "axe": str(AXE),
        }
    )
    check_states(result, "console-", "", SIZES, STATES)
    for name in ONCE:
        assert (SCREENSHOTS / f"console-{name}.png").stat().st_size > 1000, name
        assert not [v for v in result["axe"][name] if v["impact"] in ("serious", "critical")], name


@pytest.fixture(scope="module")
def offer_stack(tmp_path_factory):
    """Offered assignment on (the shared stack turns it off for the other e2e tests);
    offers last long enough for a browser to answer them."""
    stack = Stack(
        tmp_path_factory.mktemp("console-offers"),
        env={"CHATVAKT_AUTO_ASSIGN": "1", "CHATVAKT_OFFER_TIMEOUT_S": "60", "CHATVAKT_QUEUE_TICK_S": "0.3"},
    ).start()
    yield stack
    stack.stop()


def test_an_offer_rings_can_be_muted_and_passes_on_when_declined(offer_stack):
    """Outcome 9: the offer rings; declined, it goes to the other available counsellor;
    a muted console shows the next offer without a sound."""
    assert AXE.exists(), f"axe-core is not installed at {AXE}: run deploy/local/ensure-axe.sh (make test does)"
    suffix = secrets.token_hex(3)
    accounts = [
        [f"offer-{n}-{suffix}", offer_stack.add_account(f"offer-{n}-{suffix}", f"Olav Tilbud{n}{suffix}")]
        for n in (1, 2)
    ]
    result = run_flow(
        {
            "url": offer_stack.url,
            "mode": "offers",
            "counsellor": accounts[0],
            "counsellor2": accounts[1],
            "out": str(SCREENSHOTS),
            "axe": str(AXE),
        }
    )
    check_states(result, "console-", "", ["1280x720"], ["offer", "offer-passed", "offer-muted"])
