"""The launcher (`chatvakt run`) keeps every process up from its first moment."""

import os
import signal
import time

import pytest

from tests.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_service_that_dies_while_the_stack_starts_is_restarted(tmp_path):
    # The launcher once waited up to 90 s for /readyz before it watched its
    # processes: a service that died in that window (the rolling restart test
    # stopped one the moment its own probe saw the stack ready) stayed down.
    stack = Stack(tmp_path).start(wait=False)
    try:
        deadline = time.monotonic() + 60
        while not stack.pids("chat") and time.monotonic() < deadline:
            time.sleep(0.05)
        first = stack.pids("chat")
        assert first, "the launcher never started the chat service"
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not set(stack.pids("chat")) - set(first):
            time.sleep(0.2)
        assert set(stack.pids("chat")) - set(first), "the chat service was not restarted within 20 s"
        assert stack.wait_ready(60)
        assert "chat-1 exited (-9); restarting" in stack.logs()
    finally:
        stack.stop()
