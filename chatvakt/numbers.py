"""Numbers every part of the house reports the same way."""

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0 to 100) by the nearest-rank method: the smallest
    observed value with at least p % of the values at or below it, so always an
    observation and never an interpolation. None when there are no values.

    The services' statistics, the benchmarks and the tests all count with it,
    so a p90 means one thing wherever it is shown."""
    if not 0 <= p <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {p}")
    ordered = sorted(values)
    if not ordered:
        return None
    # p * n first: exact for whole p, where p / 100 * n can land a hair above a whole rank
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]
