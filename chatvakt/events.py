"""The event contract between services: names and payload schemas.

Every event that crosses a service boundary is named here and has a
marshmallow schema. Emitters `dump` through it, handlers `load` through it;
unknown fields are ignored on load so an older consumer keeps working when an
emitter adds a field. Payloads carry a child's text only where the receiver
needs it (message_posted, for the relay and the risk screen) — never log them.
"""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from chatvakt.vocabulary import CHILD, END_STATUSES, GENDERS, SENDERS  # noqa: F401 - re-exported

# nameko service names (also the RPC target names).
QUEUE, CHAT, CODING, ESCALATION, GATEWAY = "queue", "chat", "coding", "escalation", "gateway"

# chat (relay)
CHAT_STARTED = "chat_started"
MESSAGE_POSTED = "message_posted"
TYPING = "typing"
CHAT_ENDED = "chat_ended"
CHAT_TRANSFERRED = "chat_transferred"
DANGER_REPORTED = "danger_reported"
# queue (intake)
CHAT_QUEUED = "chat_queued"
QUEUE_CHANGED = "queue_changed"
CHAT_ASSIGNED = "chat_assigned"
CHAT_ABANDONED = "chat_abandoned"
PRESENCE_CHANGED = "presence_changed"
CHAT_OFFERED = "chat_offered"
OFFER_WITHDRAWN = "offer_withdrawn"
COUNSELLOR_COOLDOWN = "counsellor_cooldown"
# coding
CHAT_CODED = "chat_coded"
CODING_REQUIRED = "coding_required"
# escalation
RISK_DETECTED = "risk_detected"
ESCALATION_RAISED = "escalation_raised"
ESCALATION_UPDATED = "escalation_updated"
ALERT_REPEATED = "alert_repeated"
ALERT_ACKNOWLEDGED = "alert_acknowledged"
ALERT_RAISED = "alert_raised"


class _Event(Schema):
    class Meta:
        unknown = EXCLUDE


class ChatStarted(_Event):
    chat_id = fields.String(required=True)
    started_at = fields.String(required=True)
    gender = fields.String(allow_none=True, load_default=None)
    age = fields.Integer(allow_none=True, load_default=None)
    # issue 12: a short salted hash of the child's source address (never the
    # address), and whether that source opened a flood of chats. Optional so
    # that chat_started from before they existed still loads.
    source = fields.String(allow_none=True, load_default=None)
    suspect = fields.Boolean(load_default=False)


class MessagePosted(_Event):
    chat_id = fields.String(required=True)
    seq = fields.Integer(required=True)
    sender = fields.String(required=True, validate=validate.OneOf(SENDERS))
    text = fields.String(required=True)
    sent_at = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    # "all": both sides see it; "counsellors": internal notes and whispers.
    visibility = fields.String(load_default="all")
    kind = fields.String(load_default="message")
    author_id = fields.String(allow_none=True, load_default=None)
    # the chat is part of a flood (issue 12): the risk screen records, alerts no one
    suspect = fields.Boolean(load_default=False)


class DangerReported(_Event):
    """issue 14: the child answered "Er du i fare akkurat nå?" (at the start
    or later). Sent only when the stored answer changes, so a repeated yes is
    one event; `suspect` lets the escalation service alert no one for a flood."""

    chat_id = fields.String(required=True)
    in_danger = fields.Boolean(allow_none=True, load_default=None)
    reported_at = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    suspect = fields.Boolean(load_default=False)


class Typing(_Event):
    chat_id = fields.String(required=True)
    sender = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)


class ChatEnded(_Event):
    chat_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(END_STATUSES))
    ended_by = fields.String(required=True)
    started_at = fields.String(required=True)
    assigned_at = fields.String(allow_none=True, load_default=None)
    ended_at = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    counsellor_name = fields.String(allow_none=True, load_default=None)
    gender = fields.String(allow_none=True, load_default=None)
    age = fields.Integer(allow_none=True, load_default=None)
    phases = fields.Dict(load_default=dict)


class ChatTransferred(_Event):
    chat_id = fields.String(required=True)
    from_counsellor_id = fields.String(allow_none=True, load_default=None)
    to_counsellor_id = fields.String(required=True)
    to_counsellor_name = fields.String(allow_none=True, load_default=None)


class QueueEntry(_Event):
    chat_id = fields.String(required=True)
    position = fields.Integer(required=True)
    waiting_since = fields.String(required=True)
    priority = fields.Integer(required=True)
    risk = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, load_default=None)
    gender = fields.String(allow_none=True, load_default=None)
    age = fields.Integer(allow_none=True, load_default=None)
    estimated_wait_s = fields.Integer(allow_none=True, load_default=None)
    # "risk_screen" or "supervisor": who set the priority the reason explains
    priority_source = fields.String(allow_none=True, load_default=None)
    offered_to = fields.String(allow_none=True, load_default=None)
    # served after every chat that is not part of a flood (issue 12)
    suspect = fields.Boolean(load_default=False)


class QueueChanged(_Event):
    waiting = fields.List(fields.Nested(QueueEntry), required=True)
    available_counsellors = fields.Integer(required=True)
    open = fields.Boolean(load_default=True)
    # what every waiting child is told when the helpline is closed or nobody is
    # available: {code, message_nb, message_en, emergency: [...]}, or None
    notice = fields.Dict(allow_none=True, load_default=None)
    # for supervisors, while flood chats wait: {suspect_waiting, since, sources}
    # (counts and a time only, never an address), else None
    flood = fields.Dict(allow_none=True, load_default=None)


class ChatQueued(_Event):
    chat_id = fields.String(required=True)
    queued_at = fields.String(required=True)


class ChatAssigned(_Event):
    chat_id = fields.String(required=True)
    counsellor_id = fields.String(required=True)
    counsellor_name = fields.String(required=True)
    assigned_at = fields.String(required=True)
    waited_s = fields.Float(required=True)


class ChatAbandoned(_Event):
    chat_id = fields.String(required=True)
    waited_s = fields.Float(required=True)
    # "absent": the queue let the chat go because its child's page was gone
    # longer than the grace (issue 12); the chat service then ends it. None:
    # the chat ended first (the child left), nothing more to do.
    why = fields.String(allow_none=True, load_default=None)


class PresenceChanged(_Event):
    counsellor_id = fields.String(required=True)
    status = fields.String(required=True)
    capacity = fields.Integer(required=True)
    active_chats = fields.Integer(required=True)


class RiskDetected(_Event):
    chat_id = fields.String(required=True)
    seq = fields.Integer(allow_none=True, load_default=None)
    category = fields.String(required=True)
    severity = fields.String(required=True)
    reason = fields.String(required=True)
    detected_at = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    # the open alert this finding raised or refreshed (acknowledge it by id)
    alert_id = fields.String(allow_none=True, load_default=None)
    # a flood chat: the finding still orders the queue, but raised no alert
    suspect = fields.Boolean(load_default=False)


class AlertRepeated(RiskDetected):
    """Nobody acknowledged a risk alert: sent again; `raised` once it goes to every supervisor."""

    repeat = fields.Integer(required=True)
    raised = fields.Boolean(load_default=False)
    # issue 13: "risk" (the screen) or "acute_danger" (a counsellor's
    # escalation, with its id); optional so older payloads still load
    kind = fields.String(load_default="risk")
    escalation_id = fields.String(allow_none=True, load_default=None)
    # issue 13: every category the open alert was found with, most severe
    # first, and each in words ("Selvmordsfare / suicide risk"); optional so
    # older payloads still load (then `category` is all there is)
    categories = fields.List(fields.String(), allow_none=True, load_default=None)
    categories_words = fields.List(fields.String(), allow_none=True, load_default=None)


class AlertAcknowledged(_Event):
    chat_id = fields.String(required=True)
    alert_ids = fields.List(fields.String(), required=True)
    acked_by = fields.String(required=True)
    acked_at = fields.String(required=True)


class EscalationChanged(_Event):
    escalation_id = fields.String(required=True)
    chat_id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    # false once the escalation no longer holds its chat's transcript from retention
    open = fields.Boolean(allow_none=True, load_default=None)


class ChatCoded(_Event):
    chat_id = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    coded_at = fields.String(required=True)
    # the counsellor's assessment: acute danger was found (starts a cool-down)
    acute_danger = fields.Boolean(allow_none=True, load_default=None)
    # a later correction of a coding already saved (not a new assessment)
    corrected = fields.Boolean(load_default=False)


class ChatOffered(_Event):
    """Auto-assign: a waiting chat is offered to one counsellor until expires_at."""

    chat_id = fields.String(required=True)
    counsellor_id = fields.String(required=True)
    expires_at = fields.String(required=True)
    priority = fields.Integer(load_default=0)
    risk = fields.Boolean(load_default=False)
    reason = fields.String(allow_none=True, load_default=None)
    gender = fields.String(allow_none=True, load_default=None)
    age = fields.Integer(allow_none=True, load_default=None)


class OfferWithdrawn(_Event):
    chat_id = fields.String(required=True)
    counsellor_id = fields.String(required=True)
    why = fields.String(required=True)  # expired, declined, taken, left


class CounsellorCooldown(_Event):
    """Wellbeing: a chat with acute danger ended; supervisors arrange a debrief."""

    counsellor_id = fields.String(required=True)
    counsellor_name = fields.String(allow_none=True, load_default=None)
    chat_id = fields.String(allow_none=True, load_default=None)
    state = fields.String(required=True)  # started, opted_in
    until = fields.String(allow_none=True, load_default=None)


class CodingRequired(_Event):
    chat_id = fields.String(required=True)
    counsellor_id = fields.String(allow_none=True, load_default=None)
    # the counsellor's uncoded chats now; 0 for the first push, N for the Nth re-reminder
    uncoded = fields.Integer(allow_none=True, load_default=None)
    reminder = fields.Integer(load_default=0)
    # the last re-reminder: supervisors are told too
    overdue = fields.Boolean(load_default=False)


SCHEMAS = {
    (CHAT, CHAT_STARTED): ChatStarted(),
    (CHAT, MESSAGE_POSTED): MessagePosted(),
    (CHAT, TYPING): Typing(),
    (CHAT, CHAT_ENDED): ChatEnded(),
    (CHAT, CHAT_TRANSFERRED): ChatTransferred(),
    (CHAT, DANGER_REPORTED): DangerReported(),
    (QUEUE, CHAT_QUEUED): ChatQueued(),
    (QUEUE, QUEUE_CHANGED): QueueChanged(),
    (QUEUE, CHAT_ASSIGNED): ChatAssigned(),
    (QUEUE, CHAT_ABANDONED): ChatAbandoned(),
    (QUEUE, PRESENCE_CHANGED): PresenceChanged(),
    (QUEUE, CHAT_OFFERED): ChatOffered(),
    (QUEUE, OFFER_WITHDRAWN): OfferWithdrawn(),
    (QUEUE, COUNSELLOR_COOLDOWN): CounsellorCooldown(),
    (ESCALATION, RISK_DETECTED): RiskDetected(),
    (ESCALATION, ESCALATION_RAISED): EscalationChanged(),
    (ESCALATION, ESCALATION_UPDATED): EscalationChanged(),
    (ESCALATION, ALERT_REPEATED): AlertRepeated(),
    (ESCALATION, ALERT_ACKNOWLEDGED): AlertAcknowledged(),
    # a stored alert not from the screen (a counsellor's acute-danger escalation)
    (ESCALATION, ALERT_RAISED): AlertRepeated(),
    (CODING, CHAT_CODED): ChatCoded(),
    (CODING, CODING_REQUIRED): CodingRequired(),
}


def dump(source, name, payload):
    """Validate an outgoing payload against the contract and return it as JSON-ready.

    One pass: `load` both checks the payload and returns it with only the
    contract's fields (every field is a JSON type), where validate-then-dump
    ran marshmallow twice per event on the relay's hot path. The defaults it
    fills in are the ones every receiver's `load` would fill in anyway."""
    try:
        return SCHEMAS[(source, name)].load(payload)
    except ValidationError as error:
        raise ValueError(f"event {source}.{name} breaks its schema: {sorted(error.messages)}") from None


def load(source, name, payload):
    return SCHEMAS[(source, name)].load(payload)


# A message that is not the child's (the counsellor's, a whisper, a system
# line) goes out under its own routing key. The risk screen reads only the
# child's words and binds `message_posted` alone, so it is never handed the
# other half of the relay (a consume, a worker and an ack each, issue 16);
# the gateway pushes every message and binds MESSAGE_POSTED_ANY. The event's
# name and payload are the same under both keys.
STAFF_MESSAGE_POSTED_KEY = MESSAGE_POSTED + ".staff"
MESSAGE_POSTED_ANY = MESSAGE_POSTED + ".#"  # a topic pattern: "#" also matches no word


def routing_key(name, payload):
    """The routing key an event is published under (its name, but for the above)."""
    if name == MESSAGE_POSTED and payload.get("sender") != CHILD:
        return STAFF_MESSAGE_POSTED_KEY
    return name
