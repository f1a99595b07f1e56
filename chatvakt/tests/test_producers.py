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


class DeadChannel:
    def __init__(self, error):
        self.error = error
        self.sent = []

    def basic_publish(self, message, **kwargs):
        if self.error is not None:
            raise self.error
        self.sent.append((message, kwargs))


def lean_pool(monkeypatch, errors):
    """A lean RPC publisher whose producers' channels raise `errors` in turn."""
    from chatvakt import broker

    made: list[FakeConnection] = []
    channels: list[DeadChannel] = []

    def producer(connection):
        channel = DeadChannel(errors[len(channels)] if len(channels) < len(errors) else None)
        channels.append(channel)
        return type("Producer", (), {"channel": channel})()

    pool = Producers(lambda: FakeConnection(made), producer, 3)
    monkeypatch.setattr(broker, "producer_pool", lambda *args: pool)
    return broker._lean_publisher_cls()("amqp://nowhere/"), pool, made, channels


def test_a_lean_publish_that_loses_its_connection_goes_out_once_more_on_a_new_one(monkeypatch):
    publisher, pool, made, channels = lean_pool(monkeypatch, [])
    for error in (BrokenPipeError(), ConnectionResetError()):  # two kept, both dead
        pool.free.append((type("Producer", (), {"channel": DeadChannel(error)})(), FakeConnection(made)))
    publisher.publish({"n": 1}, exchange="", routing_key="rpc-chat", reply_to="r", correlation_id="c")
    # One kept failed: both were dropped, and the retry went out on a new one.
    assert made[0].closed and made[1].closed and len(made) == 3
    (sent,) = channels[0].sent
    assert sent[1] == {"exchange": "", "routing_key": "rpc-chat", "mandatory": False}
    assert sent[0].body == '{"n": 1}' and sent[0].properties["reply_to"] == "r"
    assert pool.free == [(pool.free[0][0], made[2])]


def test_a_lean_publish_that_fails_twice_is_a_connection_error(monkeypatch):
    from amqp import RecoverableConnectionError

    publisher, _pool, made, _channels = lean_pool(monkeypatch, [OSError(), RecoverableConnectionError()])
    with pytest.raises(ConnectionError):
        publisher.publish({"n": 1}, exchange="", routing_key="rpc-chat")
    assert len(made) == 2 and all(c.closed for c in made)


def test_a_publish_with_options_the_lean_path_does_not_know_goes_through_nameko(monkeypatch):
    from nameko.amqp.publish import Publisher

    publisher, _pool, _made, channels = lean_pool(monkeypatch, [])
    through = []
    monkeypatch.setattr(Publisher, "publish", lambda self, payload, **kwargs: through.append(kwargs))
    publisher.publish({"n": 1}, exchange="", routing_key="q", expiration=5)
    assert through == [{"exchange": "", "routing_key": "q", "expiration": 5}] and channels == []
