"""The routing key a message goes out under (issue 16): the risk screen binds
the child's key only, so the other half of the relay never reaches it."""

import json

import pytest
from sqlalchemy import MetaData, create_engine, select

from chatvakt import events as ev
from chatvakt.outbox import Outbox, outbox_table


def message(sender, **extra):
    return {
        "chat_id": "c1",
        "seq": 4,
        "sender": sender,
        "text": "hei",
        "sent_at": "2026-12-06T02:00:00+00:00",
        "counsellor_id": "k1",
        **extra,
    }


@pytest.mark.parametrize(
    "sender, key",
    [("child", "message_posted"), ("counsellor", "message_posted.staff"), ("system", "message_posted.staff")],
)
def test_only_the_childs_words_go_out_under_message_posted(sender, key):
    assert ev.routing_key(ev.MESSAGE_POSTED, message(sender)) == key


def test_every_other_event_goes_out_under_its_name():
    assert ev.routing_key(ev.CHAT_ENDED, {"sender": "counsellor"}) == ev.CHAT_ENDED
    assert ev.routing_key(ev.TYPING, {"sender": "counsellor"}) == ev.TYPING


def test_the_gateways_pattern_matches_both_keys_and_the_screens_only_one():
    # RabbitMQ's topic matching: words split on ".", "#" matches zero or more words.
    def matches(pattern, key):
        head = pattern.split(".")
        if head[-1] == "#":
            return key.split(".")[: len(head) - 1] == head[:-1]
        return pattern == key

    for key in (ev.MESSAGE_POSTED, ev.STAFF_MESSAGE_POSTED_KEY):
        assert matches(ev.MESSAGE_POSTED_ANY, key)
    assert matches(ev.MESSAGE_POSTED, ev.MESSAGE_POSTED)
    assert not matches(ev.MESSAGE_POSTED, ev.STAFF_MESSAGE_POSTED_KEY)


def test_the_outbox_row_keeps_the_key_it_is_published_under():
    metadata = MetaData()
    table = outbox_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    box = Outbox(table, ev.CHAT)
    with engine.begin() as connection:
        rows = [box.add(connection, ev.MESSAGE_POSTED, message(sender)) for sender in ("child", "counsellor")]
        stored = connection.execute(select(table.c.event, table.c.payload).order_by(table.c.id)).all()
    assert [row.event for row in rows] == ["message_posted", "message_posted.staff"]
    assert [row.event for row in stored] == ["message_posted", "message_posted.staff"]
    # The payload is the same contract under either key.
    assert [json.loads(row.payload)["sender"] for row in stored] == ["child", "counsellor"]
