"""The gateway's per-process limits, with a fake clock."""

import pytest

from chatvakt.errors import RateLimited
from gateway.ratelimit import SlidingWindow, Throttle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_sliding_window_limits_per_key_and_says_when_to_retry():
    clock = Clock()
    window = SlidingWindow(3, 60, clock)
    for _ in range(3):
        window.acquire("a")
        clock.now += 10
    window.acquire("b")  # another chat is not affected
    with pytest.raises(RateLimited) as caught:
        window.acquire("a")
    assert caught.value.retry_after == 30  # the first of the three leaves the window at 1060
    clock.now = 1060.0
    window.acquire("a")


def test_a_released_place_is_given_back():
    clock = Clock()
    window = SlidingWindow(1, 60, clock)
    place = window.acquire("a")
    window.release("a", place)
    window.acquire("a")
    with pytest.raises(RateLimited):
        window.acquire("a")


def test_throttle_lets_one_through_per_interval():
    clock = Clock()
    throttle = Throttle.every(2.0, clock)
    assert throttle.allow("k") and not throttle.allow("k") and throttle.allow("other")
    clock.now += 2.0
    assert throttle.allow("k")
