"""A poison message: a handler that fails every time, on the real broker.

It must be tried a bounded number of times, then land in chatvakt.dead-letter
with enough headers for ops to know where it came from; it must never loop
and never vanish. A handler that fails only at first must get the message.
"""

import eventlet
import pytest
from kombu import Connection
from nameko.standalone.events import event_dispatcher

from chatvakt.handlers import DEAD_LETTER_QUEUE, RETRY_PREFIX, dead_letter_count, event_handler
from tests.client import until

pytestmark = pytest.mark.faults

calls = {"poison": 0, "flaky": 0, "flaky_done": 0}


class Poisoned(Exception):
    pass


class Subject:
    name = "poisontest"

    @event_handler("poisonsrc", "boom")
    def always_fails(self, payload):
        calls["poison"] += 1
        raise Poisoned()

    @event_handler("poisonsrc", "blip")
    def fails_twice(self, payload):
        calls["flaky"] += 1
        if calls["flaky"] <= 2:
            raise Poisoned()
        calls["flaky_done"] += 1


def test_a_poison_message_is_tried_a_bounded_number_of_times_then_parked(rabbit_config, container_factory, monkeypatch):
    monkeypatch.setenv("CHATVAKT_MAX_TRIES", "3")
    monkeypatch.setenv("CHATVAKT_RETRY_DELAY_MS", "50")
    calls.update(poison=0, flaky=0, flaky_done=0)
    container = container_factory(Subject, rabbit_config)
    container.start()
    dispatch = event_dispatcher(rabbit_config)
    dispatch("poisonsrc", "boom", {"chat_id": "c-1"})
    dispatch("poisonsrc", "blip", {"chat_id": "c-2"})

    uri = rabbit_config["AMQP_URI"]
    with Connection(uri) as connection:
        assert until(lambda: dead_letter_count(connection) == 1)
    assert calls["poison"] == 3
    assert until(lambda: calls["flaky_done"] == 1)
    assert calls["flaky"] == 3

    # No loop: nothing is tried again once parked.
    eventlet.sleep(0.5)
    assert calls["poison"] == 3

    with Connection(uri) as connection:
        assert dead_letter_count(connection) == 1
        queue = connection.SimpleQueue(DEAD_LETTER_QUEUE, no_ack=False)
        try:
            parked = queue.get(timeout=5)
            assert parked.payload == {"chat_id": "c-1"}
            headers = parked.headers
            assert headers["x-chatvakt-tries"] == 3
            assert headers["x-chatvakt-error"] == "Poisoned"
            assert headers["x-chatvakt-service"] == "poisontest"
            assert headers["x-chatvakt-handler"] == "always_fails"
            assert headers["x-chatvakt-event"] == "boom"
            assert headers["x-chatvakt-queue"] == "evt-poisonsrc-boom--poisontest.always_fails"
            parked.requeue()
        finally:
            queue.close()
        # The retry queue is empty once the message is parked.
        channel = connection.channel()
        _name, waiting, _ = channel.queue_declare(
            RETRY_PREFIX + "evt-poisonsrc-boom--poisontest.always_fails", passive=True
        )
        assert waiting == 0
        channel.close()
