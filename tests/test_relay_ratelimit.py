"""The gateway's per-process limits, with a fake clock."""

from gateway.ratelimit import Throttle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_throttle_lets_one_through_per_interval():
    clock = Clock()
    throttle = Throttle.every(2.0, clock)
    assert throttle.allow("k") and not throttle.allow("k") and throttle.allow("other")
    clock.now += 2.0
    assert throttle.allow("k")
