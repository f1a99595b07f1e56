"""Issue 15, outcome 6: `make run` greets with its banner and then stays quiet
while nothing happens; readable lines, JSON only when LOG_FORMAT=json."""

import json
import time

import pytest

from tests.stack import Stack

pytestmark = pytest.mark.e2e

IDLE_S = 10


@pytest.fixture(scope="module")
def idle_outputs(tmp_path_factory):
    """Two stacks idle side by side for IDLE_S: as `make run` (no LOG_FORMAT,
    no LOG_LEVEL) and with LOG_FORMAT=json at INFO; what each wrote."""
    stacks = {
        "readable": Stack(tmp_path_factory.mktemp("readable"), env={"LOG_FORMAT": None, "LOG_LEVEL": None}),
        "json": Stack(tmp_path_factory.mktemp("json"), env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}),
    }
    try:
        for stack in stacks.values():
            stack.start(wait=False)
        for stack in stacks.values():
            assert stack.wait_ready(120), f"not ready; see {stack.log_path}"
        time.sleep(IDLE_S)
        return {name: stack.logs() for name, stack in stacks.items()}
    finally:
        for stack in stacks.values():
            stack.stop()


def _json_lines(text):
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return [line for line in found if isinstance(line, dict)]


def test_an_idle_stack_is_quiet_and_readable(idle_outputs):
    out = idle_outputs["readable"]
    lines = [line for line in out.splitlines() if line.strip()]
    assert "chatvakt is running." in out
    assert "Eventlet is deprecated" not in out and "pkg_resources" not in out
    assert _json_lines(out) == []
    # the banner (about 8 lines) and hardly anything else after ~10 s idle
    assert len(lines) <= 15, lines


def test_json_lines_when_asked(idle_outputs):
    out = idle_outputs["json"]
    lines = _json_lines(out)
    assert lines and all({"ts", "level", "service", "msg"} <= set(line) for line in lines)
    # timers and health checks are at debug: an idle stack says little even at INFO
    routine = [
        line["msg"]
        for line in lines
        if any(word in line["msg"] for word in ("report_metrics", "readyz", "healthz", "ping"))
    ]
    assert routine == []
