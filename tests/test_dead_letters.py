"""Issue 15, outcome 5: parked events expire, and ops list, replay and drop
them with `chatvakt dead-letters` without ever seeing a body."""

import pytest
from kombu import Connection
from nameko.standalone.events import event_dispatcher

from chatvakt.handlers import DEAD_LETTER_QUEUE, dead_letter_count, event_handler
from launcher import cli, deadletters
from tests.client import until

SECRET = "jeg er redd for pappa"
state = {"fail": True, "got": []}


class Failing(Exception):
    pass


class Subject:
    """Fails while state["fail"] is set, so each event is parked after its one try."""

    name = "deadtest"

    @event_handler("deadsrc", "hurt")
    def handle(self, payload):
        if state["fail"]:
            raise Failing()
        state["got"].append(payload)


@pytest.fixture
def parked(rabbit_config, container_factory, monkeypatch):
    monkeypatch.setenv("CHATVAKT_MAX_TRIES", "1")
    monkeypatch.setenv("CHATVAKT_DEAD_LETTER_TTL_S", "3600")
    monkeypatch.setenv("AMQP_URI", rabbit_config["AMQP_URI"])
    state.update(fail=True, got=[])
    container = container_factory(Subject, rabbit_config)
    container.start()
    dispatch = event_dispatcher(rabbit_config)
    for n in range(3):
        dispatch("deadsrc", "hurt", {"text": SECRET, "n": n})
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        assert until(lambda: dead_letter_count(connection) == 3)
    return rabbit_config["AMQP_URI"]


def test_a_parked_event_carries_its_expiry(parked):
    with Connection(parked) as connection:
        queue = connection.SimpleQueue(DEAD_LETTER_QUEUE, no_ack=False)
        try:
            message = queue.get(timeout=5)
            assert message.properties["expiration"] == "3600000"  # ms, from CHATVAKT_DEAD_LETTER_TTL_S
            message.requeue()
        finally:
            queue.close()


def test_list_shows_counts_and_names_never_text(parked, capsys):
    assert cli.main(["dead-letters", "list"]) == 0
    out = capsys.readouterr().out
    assert "3 parked event(s)" in out
    assert "deadsrc.hurt -> deadtest.handle" in out and "Failing 3" in out
    assert SECRET not in out and "redd" not in out
    with Connection(parked) as connection:
        assert dead_letter_count(connection) == 3  # listing takes nothing away


def test_replay_sends_them_back_to_the_handler(parked):
    state["fail"] = False
    assert deadletters.replay(parked) == 3
    assert until(lambda: len(state["got"]) == 3)
    assert sorted(p["n"] for p in state["got"]) == [0, 1, 2]
    with Connection(parked) as connection:
        assert dead_letter_count(connection) == 0


def test_drop_deletes_them(parked, capsys):
    assert deadletters.drop(parked, event="another") == 0
    assert cli.main(["dead-letters", "drop"]) == 0
    assert "3 event(s) dropped" in capsys.readouterr().out
    with Connection(parked) as connection:
        assert dead_letter_count(connection) == 0
