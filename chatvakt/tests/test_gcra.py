"""GCRA, the one-number token bucket behind every limit kept in a database row."""

from chatvakt.gcra import gcra, retry_after

NOW = 1_800_000_000.0


def test_gcra_lets_a_burst_through_then_one_per_interval():
    tat, passed = 0.0, 0
    for _ in range(40):
        allowed, tat, _wait = gcra(tat, NOW, rate_per_s=0.1, burst=30)
        passed += allowed
    assert passed == 30
    allowed, _, wait = gcra(tat, NOW, 0.1, 30)
    assert not allowed and 9.9 < wait <= 10.0
    allowed, _, _ = gcra(tat, NOW + 10.0, 0.1, 30)
    assert allowed


def test_retry_after_is_a_whole_second_at_least():
    assert retry_after(0.01) == 1 and retry_after(2.2) == 3
