"""Issue 15, outcome 6: `make run` greets with its banner and then stays quiet
while nothing happens; readable lines, JSON only when LOG_FORMAT=json."""

import json
import time

import pytest

from tests.stack import Stack

pytestmark = pytest.mark.e2e

IDLE_S = 10


def _idle_output(tmp_path, **env):
    stack = Stack(tmp_path, env=env)
    stack.start()
    try:
        time.sleep(IDLE_S)
        return stack.logs()
    finally:
        stack.stop()


def _json_lines(text):
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return [line for line in found if isinstance(line, dict)]


def test_an_idle_stack_is_quiet_and_readable(tmp_path, monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    out = _idle_output(tmp_path, LOG_FORMAT=None, LOG_LEVEL=None)  # as `make run`
    lines = [line for line in out.splitlines() if line.strip()]
    assert "chatvakt is running." in out
    assert "Eventlet is deprecated" not in out and "pkg_resources" not in out
    assert _json_lines(out) == []
    # the banner (about 8 lines) and hardly anything else after ~10 s idle
    assert len(lines) <= 15, lines


def test_json_lines_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    out = _idle_output(tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO")
    lines = _json_lines(out)
    assert lines and all({"ts", "level", "service", "msg"} <= set(line) for line in lines)
    # timers and health checks are at debug: an idle stack says little even at INFO
    routine = [
        line["msg"]
        for line in lines
        if any(word in line["msg"] for word in ("report_metrics", "readyz", "healthz", "ping"))
    ]
    assert routine == []
