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

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "results" / "screenshots"


def run_flow(flow, config, result_name, timeout_env):
    """The flow's result; it failed no step, reached nothing outside the
    gateway, and the page threw or logged no error of its own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    proc = subprocess.run([sys.executable, str(flow), json.dumps(config)], capture_output=True, text=True,
                          timeout=int(os.environ.get(timeout_env, "600")), env=env, cwd=ROOT)
    assert proc.stdout.strip(), f"the browser flow printed nothing; stderr:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / result_name).write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    assert result["failed"] is None, (
        f"failed after step {result['failed']['step_after']!r}: {result['failed']['error']}\n"
        f"{result['failed']['trace']}\nsteps passed: {result['steps']}")
    assert result["third_party"] == [], "the page made requests that left the gateway"
    own = [e for e in result["page_errors"] if "Failed to load resource" not in e]
    assert own == [], "the page threw or logged errors"
    return result
