"""The bounded pool of publishing connections (chatvakt/broker.py, issue 16)."""

import eventlet
import pytest

from chatvakt.broker import Producers


class FakeConnection:
    def __init__(self, made):
        made.append(self)
        self.closed = False

    def close(self):
        self.closed = True


def pool_of(size):
    made: list[FakeConnection] = []
    return Producers(lambda: FakeConnection(made), lambda connection: ("producer", connection), size), made


def test_at_most_size_connections_serve_many_publishers_at_once():
    pool, made = pool_of(3)
    busy = [0]
    most = [0]

    def publish(_):
        with pool.producer():
            busy[0] += 1
            most[0] = max(most[0], busy[0])
            eventlet.sleep(0.001)  # the confirm's round trip
            busy[0] -= 1

    list(eventlet.GreenPool(20).imap(publish, range(60)))
    assert len(made) == 3 and most[0] == 3
    assert len(pool.free) == 3 and not any(c.closed for c in made)


def test_a_publish_that_raised_closes_its_connection_and_frees_its_place():
    pool, made = pool_of(1)
    with pytest.raises(OSError):
        with pool.producer():
            raise OSError("connection reset")
    assert made[0].closed and pool.free == []
    with pool.producer() as (_, connection):
        assert connection is made[1]
    assert pool.free == [(("producer", made[1]), made[1])]


def test_a_waiting_publisher_gives_up_at_its_callers_deadline():
    pool, _ = pool_of(1)
    with pool.producer():
        with pytest.raises(eventlet.Timeout):
            with eventlet.Timeout(0.05):
                with pool.producer():
                    pass
    with pool.producer():  # the slot the waiter never got is not lost
        pass
