"""Per-process limits at the edge: a token's requests and a socket's frames
per second, and a pre-filter for typing hints.

State is in this process's memory. With N gateway replicas behind a balancer
that does not pin a client to one replica, a client could get up to N times
these; they exist to stop floods, not to count exactly. The limits that must
hold across replicas are kept in a database: opening chats and wrong
passwords in the gateway's (limits.py), and what a child's page may do in a
chat (messages, danger reports, language switches) and the exact typing
throttle on the chat's row in the chat service's.

Keys are digests of tokens, never the tokens themselves, and no address is kept.
"""

import hashlib
import threading
import time
from collections import OrderedDict

from chatvakt import config


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


_typing = None


def typing_throttle():
    global _typing
    if _typing is None:
        # Half the chat service's interval: this only stops floods before the
        # RPC; the exact per-chat throttle across replicas is in its database.
        _typing = Throttle.every(config.env_float("CHATVAKT_TYPING_INTERVAL_S", 2.0) / 2)
    return _typing
