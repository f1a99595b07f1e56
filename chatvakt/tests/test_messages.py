"""The message shape clients see (chatvakt/messages.py, issue 15): one builder
for the socket push and the transcript, a child never sees the visibility."""

from chatvakt.messages import client_message

# What a child is shown of a message, and the event it comes from.
SHOWN = {
    "chat_id": "c1",
    "seq": 3,
    "sender": "child",
    "text": "hei",
    "sent_at": "2026-01-01T00:00:00Z",
    "kind": "message",
}
POSTED = {**SHOWN, "visibility": "all", "counsellor_id": "k1", "author_id": None, "suspect": False}


def test_a_push_to_the_child_and_to_staff():
    child = client_message(POSTED, staff=False, chat_id=True)
    assert child == SHOWN
    assert client_message(POSTED, staff=True, chat_id=True) == {**child, "visibility": "all"}


def test_a_transcript_entry_has_no_chat_id_and_nothing_internal():
    entry = client_message(POSTED, staff=True)
    assert list(entry) == ["seq", "sender", "text", "sent_at", "kind", "visibility"]
    assert "counsellor_id" not in client_message(POSTED, staff=False)
