"""bench/load.py: a level's warm-up is sent at its rate but not measured.

The generator alone, with a gateway that answers in-process: what is counted,
when the measured part begins, and that a failure in the warm-up still fails
the level. The stack itself is measured by `make bench`.
"""

import itertools
import time

import bench.__main__ as bench_main
from bench import load


class FakeGateway:
    """Http's request(): answers at once, and the pushed message "arrives" too."""

    def __init__(self, arrived, fail=(), drop=()):
        self.arrived = arrived
        self.fail = set(fail)
        self.drop = set(drop)  # answered 201, never pushed
        self.calls = []

    def request(self, method, path, body=None, token=None, timeout=30):
        mid = body["client_msg_id"]
        self.calls.append((mid, time.perf_counter()))
        if len(self.calls) in self.fail:
            return 503, None
        if len(self.calls) not in self.drop:
            self.arrived[mid] = time.perf_counter()
        return 201, {}


def cast_with(gateway):
    cast = object.__new__(load.Cast)
    cast.arrived = gateway.arrived
    cast.children = [("c1", "child-token", "counsellor-token")]
    cast.https = [gateway]
    cast._ids = itertools.count(1)
    return cast


def test_the_warmup_is_sent_at_the_rate_but_only_what_follows_is_measured():
    arrived = {}
    gateway = FakeGateway(arrived)
    began = []
    step = load.Cast.run(
        cast_with(gateway), 50, 0.4, drain=0.5, warmup=0.2, measuring=lambda: began.append(len(gateway.calls))
    )
    assert len(gateway.calls) == 10 + 20  # 0.2 s and 0.4 s at 50 a second, without a gap
    assert step["sent"] == step["relayed"] == 20
    assert step["warmup_s"] == 0.2 and step["warmup_failed"] == 0
    # The measured part begins before its first message and after the warm-up's last.
    assert began == [10]
    gaps = [b - a for (_, a), (_, b) in zip(gateway.calls, gateway.calls[1:], strict=False)]
    assert max(gaps) < 0.1  # one open loop: no pause between warm-up and measurement
    assert bench_main.sustained(step)


def test_a_failure_in_the_warmup_still_fails_the_level():
    gateway = FakeGateway({}, fail={3})
    step = load.Cast.run(cast_with(gateway), 50, 0.2, drain=0.2, warmup=0.2)
    assert step["failed"] == 0 and step["warmup_failed"] == 1
    assert not bench_main.sustained(step)


def test_without_a_warmup_every_message_is_measured():
    gateway = FakeGateway({})
    began = []
    step = load.Cast.run(cast_with(gateway), 50, 0.2, drain=0.2, warmup=0, measuring=lambda: began.append(1))
    assert step["sent"] == len(gateway.calls) == 10
    assert began == [1]


def test_a_refused_message_is_a_failure_and_only_a_taken_one_never_pushed_is_lost():
    # Past saturation the gateway answers 503 and the child sends again: the
    # bench printed those as "lost", which reads as the loss a helpline cannot have.
    gateway = FakeGateway({}, fail={2, 3}, drop={5})
    step = load.Cast.run(cast_with(gateway), 50, 0.2, drain=0.2, warmup=0)
    assert step["sent"] == 10
    assert step["failed"] == 2 and step["failures"] == {"503": 2}
    assert step["lost"] == 1
    assert step["not_relayed"] == 3 and step["relayed"] == 7
    assert not bench_main.sustained(step)
