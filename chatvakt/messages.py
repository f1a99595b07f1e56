"""A chat message as clients see it (API.md): one shape for the socket's
chat.message push and the transcript's GET .../messages, so the two never
drift apart. Built in the kernel because the gateway (the push, the routes)
and the chat service (list_messages) both need it and neither may import
the other."""

FIELDS = ("seq", "sender", "text", "sent_at", "kind")


def client_message(message, staff, chat_id=False):
    """`message`: a mapping with FIELDS (sent_at already ISO 8601) and
    `visibility`, e.g. a message_posted payload or a list_messages entry.
    Staff also see the visibility (internal notes and whispers are
    "counsellors"); `chat_id=True` puts the chat's id first, as a push does."""
    out = {"chat_id": message["chat_id"]} if chat_id else {}
    for field in FIELDS:
        out[field] = message[field]
    if staff:
        out["visibility"] = message["visibility"]
    return out
