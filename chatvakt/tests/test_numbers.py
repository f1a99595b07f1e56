"""chatvakt.numbers: the one percentile."""

import random

import pytest

from chatvakt.numbers import percentile


def by_definition(values, p):
    """The smallest observed value with at least p % of the values at or below it."""
    return min(v for v in values if sum(x <= v for x in values) * 100 >= p * len(values))


def test_nearest_rank_on_small_lists():
    assert percentile([], 50) is None
    assert percentile([7.0], 1) == 7.0 and percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 51) == 3
    assert percentile([1, 2, 3], 0) == 1 and percentile([1, 2, 3], 100) == 3
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0


def test_any_order_and_any_iterable():
    assert percentile((x for x in [5, 1, 4, 2, 3]), 50) == 3
    values = [3.0, 1.0, 2.0]
    percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]  # the caller's list is left as it was


def test_whole_ranks_are_not_pushed_up_by_rounding():
    # 7 / 100 * 100 is 7.000000000000001 in floating point; the 7th value is the answer
    assert percentile(range(1, 101), 7) == 7
    assert percentile(range(1, 1001), 99.9) == 999


def test_always_an_observation_and_the_definition():
    rnd = random.Random(15)
    for _ in range(200):
        values = [round(rnd.uniform(0, 50), rnd.choice([0, 1, 3])) for _ in range(rnd.randint(1, 40))]
        for p in (0.1, 1, 7, 25, 50, 90, 99, 99.9, 100):
            assert percentile(values, p) == by_definition(values, p) and percentile(values, p) in values


@pytest.mark.parametrize("p", [-1, 100.5, float("nan")])
def test_a_percentile_outside_0_to_100_is_refused(p):
    with pytest.raises(ValueError):
        percentile([1, 2], p)
