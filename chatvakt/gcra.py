"""GCRA: a token bucket kept as one number, so a limit can live in a database
row and every replica spends from the same bucket (the gateway's limits per
address, the chat service's limits per chat). Pure functions of plain numbers."""

import math


def gcra(tat, now, rate_per_s, burst):
    """Returns (allowed, new_tat, wait_s).

    `tat` is when the bucket would be full again; a request passes while
    tat - now stays within the burst's tolerance."""
    interval = 1.0 / rate_per_s if rate_per_s > 0 else math.inf
    tolerance = (max(1.0, burst) - 1.0) * interval
    start = max(tat, now)
    if start - now <= tolerance + 1e-9:
        return True, start + interval, 0.0
    return False, tat, start - now - tolerance


def retry_after(wait_s):
    """A Retry-After a client can use: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))
