"""Token buckets that keep one client's flood from starving the rest.

Per process: each gateway replica limits what it sees. Keys are digests of
tokens, never the tokens themselves, and no address is kept.
"""
import hashlib
import time
from collections import OrderedDict

from chatvakt import config


class Bucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate, burst):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self):
        """True when a unit may pass; else False (and wait() says how long)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self):
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate > 0 else 60.0


class Throttle:
    """One bucket per key, the least recently used forgotten past `size` keys."""

    def __init__(self, rate, burst, size=50_000):
        self.rate = rate
        self.burst = burst
        self.size = size
        self.buckets = OrderedDict()

    def check(self, key):
        """None when `key` may go on; else the seconds it should wait."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(self.rate, self.burst)
            if len(self.buckets) > self.size:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        return None if bucket.take() else bucket.wait()


def token_key(token):
    return hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=12).hexdigest()


def http_throttle():
    # Generous for a person (a child types far slower), tight for a script.
    return Throttle(config.env_float("CHATVAKT_TOKEN_RATE", 30.0),
                    config.env_float("CHATVAKT_TOKEN_BURST", 100.0))
