"""Per-process limits at the edge: a child's messages per minute, and a
pre-filter for typing hints.

State is in this process's memory. With N gateway replicas behind a balancer
that does not pin a child to one replica, a child could send up to N times the
limit; the limit exists to stop floods, not to count exactly, and the chat
service keeps the exact typing throttle in its database. Sharing the window
(e.g. in the gateway's database) is the step up if that ever matters.
"""
import collections
import math
import threading
import time

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
                raise errors.RateLimited("Too many messages; wait a little.",
                                         retry_after=max(1, math.ceil(wait)))
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


class Throttle:
    """Let one event per key through every `interval_s`; drop the rest quietly."""

    def __init__(self, interval_s, clock=time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._last = {}
        self._lock = threading.Lock()

    def allow(self, key):
        now = self.clock()
        with self._lock:
            if len(self._last) > 10000:
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval_s}
            if now - self._last.get(key, -math.inf) < self.interval_s:
                return False
            self._last[key] = now
            return True


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
        _typing = Throttle(config.env_float("CHATVAKT_TYPING_INTERVAL_S", 2.0) / 2)
    return _typing
