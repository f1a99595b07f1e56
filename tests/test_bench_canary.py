"""bench/canary.py: the sleeper that tells a stall of the machine from one of the stack."""

import json
import signal
import subprocess
import sys
import time

from bench import canary
from tests.stack import ROOT


def test_late_wakeups_are_counted_by_second_of_the_run_keeping_the_longest():
    started = 1000.0
    late = [[999.5, 40.0], [1000.2, 30.0], [1000.9, 80.0], [1003.1, 26.0]]
    assert canary.by_second(late, started) == {0: 80.0, 3: 26.0}  # before the run: not counted


def test_the_sleeper_reports_as_json_when_interrupted():
    watch = subprocess.Popen([sys.executable, "-m", "bench.canary"], cwd=ROOT, stdout=subprocess.PIPE)
    time.sleep(0.5)
    watch.send_signal(signal.SIGINT)
    out, _ = watch.communicate(timeout=10)
    assert watch.returncode == 0
    assert all(over > canary.LATE_MS for _, over in json.loads(out))
