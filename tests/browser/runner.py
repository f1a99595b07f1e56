"""Run one browser flow script in a child process and check what it reports.

Playwright's sync API does not run under the suite's eventlet monkey
patching, so each flow (flow.py, child_flow.py, danger_flow.py,
console_flow.py) runs in its own process and prints JSON; every browser test
checks the same things of it here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "results" / "screenshots"
CHROMIUM = os.environ.get("CHATVAKT_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def _playwright_missing():
    try:
        import playwright  # noqa: F401
    except ImportError:
        return True
    return False


# Every browser test module: pytestmark = MARKS.
MARKS = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (deploy/local/ensure-chromium.sh installs it)"
    ),
    pytest.mark.skipif(_playwright_missing(), reason="the playwright package is not installed"),
]


def run_flow(flow, config, result_name, timeout_env, timeout_s=600, tolerated=("Failed to load resource",)):
    """The flow's result; it failed no step, reached nothing outside the
    gateway, and the page threw or logged no error of its own (`tolerated`:
    what the browser logs itself, such as a deliberate 4xx)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    proc = subprocess.run(
        [sys.executable, str(flow), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=int(os.environ.get(timeout_env, str(timeout_s))),
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout.strip(), f"the browser flow printed nothing; stderr:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / result_name).write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    assert result["failed"] is None, (
        f"failed after step {result['failed']['step_after']!r}: {result['failed']['error']}\n"
        f"{result['failed']['trace']}\nsteps passed: {result['steps']}"
    )
    assert result["third_party"] == [], "the page made requests that left the gateway"
    own = [e for e in result["page_errors"] if not any(text in e for text in tolerated)]
    assert own == [], "the page threw or logged errors"
    return result


def check_states(result, shot_prefix, axe_prefix, sizes, states):
    """Every state at every size: a screenshot, and axe-core found nothing serious or critical."""
    for size in sizes:
        for state in states:
            assert (SCREENSHOTS / f"{shot_prefix}{state}-{size}.png").stat().st_size > 1000, (state, size)
            violations = result["axe"][f"{axe_prefix}{state}-{size}"]
            assert not [v for v in violations if v["impact"] in SERIOUS], (state, size)
