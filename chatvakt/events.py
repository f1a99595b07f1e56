"""The event contract between services: names and payload schemas.

Every event that crosses a service boundary is named here and has a
marshmallow schema. Emitters `dump` through it, handlers `load` through it;
unknown fields are ignored on load so an older consumer keeps working when an
emitter adds a field. Payloads carry a child's text only where the receiver
needs it (message_posted, for the relay and the risk screen) — never log them.
"""

import math
from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing, validate

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


# -- the fast path (issue 16) ------------------------------------------------
#
# marshmallow's load of a message_posted costs about 18 µs (timeit on a typical
# payload, best of 15 runs of 20 000; up to 32 µs on a busy machine), and it
# runs three times for every relayed message: the chat service's dump, then
# the gateway's and the escalation service's load. Nearly every payload is
# plainly valid: the exact JSON types, nothing to convert. For those, a plan
# read once from each schema's own declared fields returns the same dict in
# 1.3 µs (the same timeit); anything it does not plainly accept (a required
# field missing, "5" or 5.0 for an Integer, None where it is not allowed, a
# field class, validator or option it does not know) goes on to marshmallow
# (about 1 µs later), which stays the one place a rule is written and the one
# that raises. No rule is written twice: what the plan checks is read from the
# fields, and test_events_fast.py holds it to marshmallow's answers on every
# schema here.


class _NotPlain(Exception):
    """Why a schema always goes to marshmallow (the message says what it met)."""


# Field classes whose load of a value of exactly this type returns that value
# unchanged (str(s), int(i), float(f), `True in truthy`), checked by exact class:
# a subclass may load otherwise. Integer takes no bool (marshmallow refuses it)
# and no float or str (marshmallow converts them), so only `int` is plain; Float
# takes only `float` (an int becomes a float).
_PLAIN = {fields.String: str, fields.Integer: int, fields.Float: float, fields.Boolean: bool}
# what marshmallow's own code does, which the plan relies on: an override could do anything
_SCHEMA_METHODS = (
    "load",
    "_do_load",
    "_deserialize",
    "_call_and_store",
    "_invoke_field_validators",
    "_invoke_schema_validators",
    "_invoke_load_processors",
)


def _plain_type(field, where):
    """The one type a simple field loads unchanged, or _NotPlain."""
    kind = _PLAIN.get(type(field))
    if kind is None:
        raise _NotPlain(f"{where}: {type(field).__name__} field")
    # custom truthy/falsy could map True and False elsewhere (or refuse them)
    if kind is bool and (field.truthy is not fields.Boolean.truthy or field.falsy is not fields.Boolean.falsy):
        raise _NotPlain(f"{where}: Boolean with its own truthy/falsy")
    return kind


def _unprocessed(field, where):
    # marshmallow 4.3's per-field pre_load/post_load callables could change any value
    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        raise _NotPlain(f"{where}: pre_load/post_load on the field")


def _items_of(item):
    def check(value):
        return all(type(each) is item for each in value)

    return check


def _field_plan(name, field):
    """(name, required, allow_none, load_default, default_is_callable, type, check, copy) for one field."""
    where = f"field {name!r}"
    if "." in name:  # marshmallow sets a dotted key as a path into nested dicts
        raise _NotPlain(f"{where}: a dotted name")
    if field.data_key not in (None, name) or field.attribute not in (None, name):
        raise _NotPlain(f"{where}: data_key or attribute other than its name")
    _unprocessed(field, where)
    check: Callable[[Any], bool] | None = None
    copy: Callable[[Any], Any] | None = None
    kind: type
    if type(field) is fields.Dict:
        # without key or value fields marshmallow returns dict(value): a copy, values untouched
        if field.key_field is not None or field.value_field is not None or field.mapping_type is not dict:
            raise _NotPlain(f"{where}: Dict with key or value fields")
        kind = copy = dict
    elif type(field) is fields.List:
        # a new list of the items, each loaded by the inner field: plain items come back unchanged
        inner = field.inner
        item = _plain_type(inner, f"{where}'s items")
        _unprocessed(inner, f"{where}'s items")
        # (an item's None would need the inner allow_none, a float item a finiteness test: marshmallow's)
        if inner.validators or item is float:
            raise _NotPlain(f"{where}: items with validators, or floats")
        kind = copy = list
        check = _items_of(item)
    else:
        kind = _plain_type(field, where)
        if kind is float and not field.allow_nan:
            check = math.isfinite
    if field.validators:
        one = field.validators[0]
        # OneOf's test is `value in choices`: over exact strs in a tuple or a frozenset
        # (so they cannot change after this) that is membership of a frozenset
        if (
            len(field.validators) != 1
            or type(one) is not validate.OneOf
            or kind is not str
            or type(one.choices) not in (tuple, frozenset)
            or not all(type(choice) is str for choice in one.choices)
        ):
            raise _NotPlain(f"{where}: a validator other than OneOf over strings")
        check = frozenset(one.choices).__contains__
    default = field.load_default
    return (name, field.required, field.allow_none, default, callable(default), kind, check, copy)


def _plan(schema):
    """Every loaded field's plan, in marshmallow's order (so the output's keys come in its order)."""
    name = type(schema).__name__
    for method in _SCHEMA_METHODS:
        if getattr(type(schema), method) is not getattr(Schema, method):
            raise _NotPlain(f"{name}: overrides {method}")
    if any(schema._hooks.values()):  # pre_load, post_load, validates, validates_schema
        raise _NotPlain(f"{name}: has hooks")
    if schema.many or schema.partial is not None or schema.only is not None or schema.exclude:
        raise _NotPlain(f"{name}: many, partial, only or exclude")
    if schema.dump_only or any(field.dump_only for field in schema.fields.values()):
        raise _NotPlain(f"{name}: dump_only fields")
    if schema.dict_class is not dict:
        raise _NotPlain(f"{name}: its own dict_class")
    if schema.unknown not in (EXCLUDE, RAISE):  # INCLUDE copies unknown keys in
        raise _NotPlain(f"{name}: unknown={schema.unknown}")
    try:
        return tuple(_field_plan(key, field) for key, field in schema.load_fields.items())
    except _NotPlain as error:
        raise _NotPlain(f"{name}: {error}") from None


def _fast_loader(schema):
    """A function that returns marshmallow's result for a plainly valid payload, else None."""
    plan = _plan(schema)
    # RAISE: a key no field reads is an error, which is marshmallow's to raise
    known = frozenset(entry[0] for entry in plan) if schema.unknown == RAISE else None

    def fast(payload):
        if type(payload) is not dict or (known is not None and not known.issuperset(payload)):
            return None
        out = {}
        get = payload.get
        for name, required, allow_none, default, default_is_callable, kind, check, copy in plan:
            # marshmallow reads a key through `data.get(key, missing)`: the same test
            value = get(name, missing)
            if value is missing:
                if required:
                    return None
                if default is not missing:  # no load_default: the key stays out
                    out[name] = default() if default_is_callable else default
            elif value is None:
                if not allow_none:
                    return None
                out[name] = None  # neither the type nor a validator is checked on None
            elif type(value) is kind and (check is None or check(value)):
                out[name] = value if copy is None else copy(value)
            else:
                return None
        return out

    return fast


# schema -> its fast loader, or None for one that always goes to marshmallow
_FAST: dict[Schema, Callable[[Any], dict | None] | None] = {}


def _fast_for(schema):
    try:
        return _FAST[schema]
    except KeyError:
        pass
    try:
        fast = _fast_loader(schema)
    except _NotPlain:
        fast = None
    _FAST[schema] = fast
    return fast


def _load(schema, payload):
    """marshmallow's answer: the plan's when it plainly accepts the payload, else marshmallow's own."""
    fast = _fast_for(schema)
    if fast is not None:
        data = fast(payload)
        if data is not None:
            return data
    return schema.load(payload)


for _schema in SCHEMAS.values():  # at import, so that no event pays for it
    _fast_for(_schema)
del _schema


def dump(source, name, payload):
    """Validate an outgoing payload against the contract and return it as JSON-ready.

    One pass: `load` both checks the payload and returns it with only the
    contract's fields (every field is a JSON type), where validate-then-dump
    ran marshmallow twice per event on the relay's hot path. The defaults it
    fills in are the ones every receiver's `load` would fill in anyway. A
    plainly valid payload skips marshmallow altogether (the plan above)."""
    try:
        return _load(SCHEMAS[(source, name)], payload)
    except ValidationError as error:
        # The offending keys only, never their values; an unknown key need not be a str.
        raise ValueError(f"event {source}.{name} breaks its schema: {sorted(map(str, error.messages))}") from None


def load(source, name, payload):
    return _load(SCHEMAS[(source, name)], payload)


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
