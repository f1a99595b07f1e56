"""Per-process limits at the edge: a child's messages per minute, a token's
requests and a socket's frames per second, and a pre-filter for typing hints.

State is in this process's memory. With N gateway replicas behind a balancer
that does not pin a child to one replica, a child could send up to N times the
limit; the limit exists to stop floods, not to count exactly, and the chat
service keeps the exact typing throttle in its database. The limits that must
hold across replicas (opening chats, wrong passwords) are kept in the
gateway's database instead: limits.py.

Keys are digests of tokens, never the tokens themselves, and no address is kept.
"""

import collections
import hashlib
import math
import threading
import time
from collections import OrderedDict

from chatvakt import config, errors


def child_msgs_per_min():
    return config.env_int("CHATVAKT_CHILD_MSGS_PER_MIN", 30)


class SlidingWindow:
    """At most `limit` events per `window_s` per key, over a sliding window."""

    def __init__(self, limit, window_s=60.0, clock=time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._hits = {}
        self._lock = threading.Lock()
        self._calls = 0

    def acquire(self, key):
        """Count one event for `key`, or raise RateLimited with the seconds to wait.

        Returns a token for `release` (a send that stored nothing gives its place back).
        """
        now = self.clock()
        with self._lock:
            self._calls += 1
            if self._calls % 1000 == 0:
                self._prune(now)
            hits = self._hits.setdefault(key, collections.deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                wait = hits[0] + self.window_s - now
                raise errors.RateLimited("Too many messages; wait a little.", retry_after=max(1, math.ceil(wait)))
            hits.append(now)
            return now

    def release(self, key, token):
        with self._lock:
            hits = self._hits.get(key)
            if hits:
                try:
                    hits.remove(token)
                except ValueError:
                    pass

    def _prune(self, now):
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s]:
            del self._hits[key]


class Bucket:
    """A token bucket: `rate` units a second, at most `burst` saved up."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "clock")

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.clock = clock
        self.stamp = clock()

    def take(self):
        """True when a unit may pass; else False (and wait() says how long)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        # The tolerance: refills summed over several calls may round just under one.
        if self.tokens >= 1 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1)
            return True
        return False

    def wait(self):
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate > 0 else 60.0


class Throttle:
    """One bucket per key, the least recently used forgotten past `size` keys."""

    def __init__(self, rate, burst, size=50_000, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.size = size
        self.clock = clock
        self.buckets = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def every(cls, interval_s, clock=time.monotonic):
        """One event per key every `interval_s`, nothing saved up."""
        return cls(1.0 / max(interval_s, 1e-6), 1, clock=clock)

    def check(self, key):
        """None when `key` may go on; else the seconds it should wait."""
        with self._lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket(self.rate, self.burst, self.clock)
                if len(self.buckets) > self.size:
                    self.buckets.popitem(last=False)
            else:
                self.buckets.move_to_end(key)
            return None if bucket.take() else bucket.wait()

    def allow(self, key):
        """Whether `key` may go on now; the caller drops what may not, quietly."""
        return self.check(key) is None


def token_key(token):
    return hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=12).hexdigest()


def http_throttle():
    # Generous for a person (a child types far slower), tight for a script.
    return Throttle(config.env_float("CHATVAKT_TOKEN_RATE", 30.0), config.env_float("CHATVAKT_TOKEN_BURST", 100.0))


_child_messages = None
_typing = None
_danger = None


def danger_reports():
    """issue 14: changes of a chat's "I am in danger" answer per minute. A
    child needs one or two; the same answer again gives its place back."""
    global _danger
    if _danger is None:
        _danger = SlidingWindow(config.env_int("CHATVAKT_DANGER_REPORTS_PER_MIN", 4))
    return _danger


_lang = None


def lang_switches():
    """issue 13: language switches of a chat per minute (each one is a line in
    the counsellor's transcript); the same language again gives its place back."""
    global _lang
    if _lang is None:
        _lang = SlidingWindow(config.env_int("CHATVAKT_LANG_SWITCHES_PER_MIN", 6))
    return _lang


def child_messages():
    global _child_messages
    if _child_messages is None:
        _child_messages = SlidingWindow(child_msgs_per_min())
    return _child_messages


def typing_throttle():
    global _typing
    if _typing is None:
        # Half the chat service's interval: this only stops floods before the
        # RPC; the exact per-chat throttle across replicas is in its database.
        _typing = Throttle.every(config.env_float("CHATVAKT_TYPING_INTERVAL_S", 2.0) / 2)
    return _typing
