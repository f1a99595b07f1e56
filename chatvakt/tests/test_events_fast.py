"""The events' fast path (issue 16) against marshmallow itself: for every
schema, on payloads generated from its own fields (seeded, so a failure
repeats), `load` returns what marshmallow returns or raises as it does, and
`dump` raises ValueError where marshmallow raises. Anything the fast path
does not know must go to marshmallow."""

import copy
import random
from collections import OrderedDict

import pytest
from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, missing, post_load, validate, validates_schema

from chatvakt import events as ev

SEED = 16
PAYLOADS_PER_SCHEMA = 1500


class _Str(str):
    pass


class _Int(int):
    pass


# Not in SCHEMAS, so that the fast path's other branches meet marshmallow too:
# unknown=RAISE, a field neither required nor defaulted (left out when absent),
# callable and mutable defaults, Float with allow_nan, List of Integer and Boolean.
class _Raising(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    count = fields.Integer()
    ratio = fields.Float(allow_nan=True, allow_none=True)
    tags = fields.List(fields.Integer(), load_default=list)
    flags = fields.List(fields.Boolean(), allow_none=True, load_default=None)
    extra = fields.Dict()
    kind = fields.String(validate=validate.OneOf(("a", "b")), load_default="a")


class _Strict(ev._Event):
    seq = fields.Integer(strict=True, required=True)
    at = fields.Float(load_default=0.0)
    shared = fields.List(fields.String(), load_default=[])


EXTRA_SCHEMAS = {("test", "raising"): _Raising(), ("test", "strict"): _Strict()}
EVERY_SCHEMA = {**ev.SCHEMAS, **EXTRA_SCHEMAS}


def _text(rng):
    return rng.choice(["", "k1", "0123456789abcdef0123456789abcdef", "hei, jeg trenger hjelp", "ø\u0000\U0001f600"])


def _wrong(rng):
    """A value of a type no plain field takes as it is (or one marshmallow converts)."""
    return rng.choice(
        [
            "5",
            "true",
            "1",
            "",
            "nan",
            5,
            0,
            1,
            5.0,
            -1.5,
            float("nan"),
            float("inf"),
            True,
            False,
            b"bytes",
            b"\xff",
            [],
            ["a"],
            (),
            ("a",),
            {},
            {"a": 1},
            _Str("child"),
            _Int(3),
            10**30,
            missing,
            object(),
        ]
    )


def _value(rng, field):
    """Mostly a value the field takes as it is, sometimes one of the wrong ones."""
    if rng.random() < 0.12:
        return _wrong(rng)
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return rng.choice(list(validator.choices) + ["nobody", "Child", ""])
    if isinstance(field, fields.Boolean):
        return rng.choice([True, False])
    if isinstance(field, fields.Integer):
        return rng.choice([0, 1, -7, 42, 2**40])
    if isinstance(field, fields.Float):
        return rng.choice([0.0, 1.5, -2.25, 1e300, 3.0])
    if isinstance(field, fields.String):
        return _text(rng)
    if isinstance(field, fields.Dict):
        return rng.choice([{}, {"code": "closed", "emergency": ["113"]}, {"suspect_waiting": 2}])
    if isinstance(field, fields.List):
        items = [_value(rng, field.inner) for _ in range(rng.randrange(4))]
        if rng.random() < 0.1:
            items.append(None)
        return rng.choice([items, items, tuple(items)])
    if isinstance(field, fields.Nested):
        return _payload(rng, field.schema)
    raise AssertionError(f"no values for {type(field).__name__}: add them here")


def _payload(rng, schema):
    payload = {}
    for name, field in schema.fields.items():
        roll = rng.random()
        if roll < 0.06 if field.required else roll < 0.3:
            continue  # absent
        payload[name] = None if rng.random() < 0.06 else _value(rng, field)
    if rng.random() < 0.15:
        payload[rng.choice(["unknown", "future_field", 7, ("a",)])] = _text(rng)
    return payload


def _payloads(rng, schema):
    yield from (_payload(rng, schema) for _ in range(PAYLOADS_PER_SCHEMA))
    plain = _payload(random.Random(0), schema)
    yield from (None, [], "x", 5, [plain], OrderedDict(plain), {}, {"unknown": 1})


def _shape(value):
    """The value's types all the way down, so that 5 and 5.0 or True and 1 differ."""
    if isinstance(value, dict):
        return (dict, [(type(key), key, _shape(item)) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value), [_shape(item) for item in value])
    return type(value)


def _canon(value):
    """The value with every NaN replaced by a marker, so that two loads of "nan" compare equal."""
    if isinstance(value, float) and value != value:
        return "<nan>"
    if isinstance(value, dict):
        return {key: _canon(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(item) for item in value]
    return value


def _same(got, expected):
    """Equal values, the same keys in the same order, the same types all the way down."""
    return _canon(got) == _canon(expected) and list(got) == list(expected) and _shape(got) == _shape(expected)


def _snapshot(value):
    """Every container's identity and contents and every leaf's identity: any change to the payload shows."""
    if isinstance(value, dict):
        return (id(value), [(key, _snapshot(item)) for key, item in value.items()])
    if isinstance(value, list):
        return (id(value), [_snapshot(item) for item in value])
    return id(value)


@pytest.mark.parametrize("key", list(EVERY_SCHEMA), ids=lambda key: ".".join(key))
def test_the_fast_path_returns_what_marshmallow_returns_or_leaves_it_to_marshmallow(key, monkeypatch):
    source, name = key
    schema = EVERY_SCHEMA[key]
    if key in EXTRA_SCHEMAS:
        monkeypatch.setitem(ev.SCHEMAS, key, schema)
    fast = ev._fast_for(schema)
    rng = random.Random(f"{SEED}:{source}.{name}")
    taken = agreed = refused = 0
    for payload in _payloads(rng, schema):
        before = _snapshot(payload)
        try:
            expected = schema.load(copy.deepcopy(payload))
        except ValidationError as error:
            refused += 1
            if fast is not None:
                assert fast(payload) is None, payload
            with pytest.raises(ValidationError) as raised:
                ev.load(source, name, payload)
            assert raised.value.messages == error.messages
            # Always the ValueError, even where the keys do not sort (a non-str unknown key
            # under unknown=RAISE beside a str one was a TypeError until 2026-12-06).
            with pytest.raises(ValueError, match=f"event {source}.{name} breaks its schema"):
                ev.dump(source, name, payload)
        else:
            agreed += 1
            quick = fast(payload) if fast is not None else None
            if quick is not None:
                taken += 1
                assert _same(quick, expected), payload
            assert _same(ev.load(source, name, payload), expected), payload
            assert _same(ev.dump(source, name, payload), expected), payload
        assert _snapshot(payload) == before, "the payload was changed"
    # the generator reaches both outcomes, and the fast path where there is one
    assert agreed > 50 and refused > 50, (agreed, refused)
    if key == (ev.QUEUE, ev.QUEUE_CHANGED):
        assert fast is None  # its waiting list is Nested
    else:
        assert fast is not None and taken > 50, taken


def test_the_fast_path_copies_what_marshmallow_copies():
    payload = {
        "chat_id": "c1",
        "status": "ended",
        "ended_by": "child",
        "started_at": "s",
        "ended_at": "e",
        "phases": {"opening": 3},
    }
    data = ev.load(ev.CHAT, ev.CHAT_ENDED, payload)
    assert data["phases"] == payload["phases"] and data["phases"] is not payload["phases"]
    assert ev.load(ev.CHAT, ev.CHAT_ENDED, payload)["phases"] is not data["phases"]
    missing_phases = {key: value for key, value in payload.items() if key != "phases"}
    first, second = (ev.load(ev.CHAT, ev.CHAT_ENDED, missing_phases)["phases"] for _ in range(2))
    assert first == second == {} and first is not second  # load_default=dict: called each time
    acked = {"chat_id": "c1", "alert_ids": ["a1"], "acked_by": "k1", "acked_at": "t"}
    assert ev.load(ev.ESCALATION, ev.ALERT_ACKNOWLEDGED, acked)["alert_ids"] is not acked["alert_ids"]


MESSAGE = {
    "chat_id": "0123456789abcdef0123456789abcdef",
    "seq": 17,
    "sender": "child",
    "text": "jeg vet ikke hva jeg skal gjøre lenger...",
    "sent_at": "2026-12-06T02:00:00.123456+00:00",
    "counsellor_id": "k-42",
    "visibility": "all",
    "kind": "message",
    "author_id": None,
    "suspect": False,
}


def test_a_plain_message_posted_never_reaches_marshmallow(monkeypatch):
    schema = ev.SCHEMAS[(ev.CHAT, ev.MESSAGE_POSTED)]
    expected = schema.load(MESSAGE)
    sparse = {key: MESSAGE[key] for key in ("chat_id", "seq", "sender", "text", "sent_at")}
    sparse_expected = schema.load(sparse)

    def marshmallow_load(*args, **kwargs):
        raise AssertionError("marshmallow's load was called")

    monkeypatch.setattr(schema, "load", marshmallow_load)
    assert ev.load(ev.CHAT, ev.MESSAGE_POSTED, MESSAGE) == expected
    assert ev.dump(ev.CHAT, ev.MESSAGE_POSTED, MESSAGE) == expected
    assert ev.load(ev.CHAT, ev.MESSAGE_POSTED, {**MESSAGE, "added_later": 1}) == expected
    assert ev.load(ev.CHAT, ev.MESSAGE_POSTED, sparse) == sparse_expected


def marshmallow_calls(schema, monkeypatch):
    """The payloads `schema`'s own (marshmallow) load is called with, from now on."""
    calls = []
    real = schema.load

    def counted(data, **kwargs):
        calls.append(data)
        return real(data, **kwargs)

    monkeypatch.setattr(schema, "load", counted)
    return calls


@pytest.mark.parametrize(
    "payload",
    [
        {**MESSAGE, "seq": "17"},  # marshmallow converts it: its answer, not the fast path's
        {**MESSAGE, "seq": 17.0},
        {**MESSAGE, "seq": True},
        {**MESSAGE, "sender": "nobody"},
        {**MESSAGE, "text": None},
        {**MESSAGE, "suspect": "false"},
        {key: value for key, value in MESSAGE.items() if key != "text"},
        OrderedDict(MESSAGE),
    ],
)
def test_a_payload_that_is_not_plain_goes_to_marshmallow(payload, monkeypatch):
    schema = ev.SCHEMAS[(ev.CHAT, ev.MESSAGE_POSTED)]
    calls = marshmallow_calls(schema, monkeypatch)
    try:
        ev.load(ev.CHAT, ev.MESSAGE_POSTED, payload)
    except ValidationError:
        pass
    assert calls == [payload]


class _Plain(ev._Event):
    chat_id = fields.String(required=True)


class _Email(_Plain):
    address = fields.Email(required=True)


class _Length(_Plain):
    note = fields.String(validate=validate.Length(max=5))


class _TwoValidators(_Plain):
    sender = fields.String(validate=[validate.OneOf(("child",)), validate.OneOf(("child", "x"))])


class _OneOfList(_Plain):
    sender = fields.String(validate=validate.OneOf(["child"]))  # a list could change later


class _OneOfInteger(_Plain):
    level = fields.Integer(validate=validate.OneOf((1, 2)))


class _DataKey(_Plain):
    seq = fields.Integer(data_key="sequence")


class _Attribute(_Plain):
    seq = fields.Integer(attribute="number")


class _Dotted(_Plain):
    pass


_Dotted._declared_fields["a.b"] = fields.String()


class _Loud(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).upper()


class _Subclass(_Plain):
    text = _Loud()


class _Truthy(_Plain):
    agreed = fields.Boolean(truthy={"yes"}, falsy={"no"})


class _FieldProcessor(_Plain):
    text = fields.String(post_load=str.strip)


class _Hook(_Plain):
    @post_load
    def tag(self, data, **kwargs):
        return {**data, "tagged": True}


class _SchemaValidator(_Plain):
    @validates_schema
    def check(self, data, **kwargs):
        pass


class _Include(_Plain):
    class Meta:
        unknown = INCLUDE


class _Nested(_Plain):
    entry = fields.Nested(_Plain)


class _DictOfInts(_Plain):
    counts = fields.Dict(values=fields.Integer())


class _ListOfFloats(_Plain):
    waits = fields.List(fields.Float())


class _ListOfChoices(_Plain):
    senders = fields.List(fields.String(validate=validate.OneOf(("child",))))


class _ListValidator(_Plain):
    ids = fields.List(fields.String(), validate=validate.Length(min=1))


class _Raw(_Plain):
    blob = fields.Raw()


class _DumpOnly(_Plain):
    secret = fields.String(dump_only=True)


class _OverridesLoad(_Plain):
    def load(self, data, **kwargs):
        return super().load(data, **kwargs)


UNPLAIN = [
    (_Email(), "Email field"),
    (_Length(), "validator other than OneOf"),
    (_TwoValidators(), "validator other than OneOf"),
    (_OneOfList(), "validator other than OneOf"),
    (_OneOfInteger(), "validator other than OneOf"),
    (_DataKey(), "data_key or attribute"),
    (_Attribute(), "data_key or attribute"),
    (_Dotted(), "dotted name"),
    (_Subclass(), "_Loud field"),
    (_Truthy(), "truthy/falsy"),
    (_FieldProcessor(), "pre_load/post_load on the field"),
    (_Hook(), "hooks"),
    (_SchemaValidator(), "hooks"),
    (_Include(), "unknown=include"),
    (_Nested(), "Nested field"),
    (_DictOfInts(), "Dict with key or value fields"),
    (_ListOfFloats(), "floats"),
    (_ListOfChoices(), "validators"),
    (_ListValidator(), "validator other than OneOf"),
    (_Raw(), "Raw field"),
    (_DumpOnly(), "dump_only"),
    (_OverridesLoad(), "overrides load"),
    (_Plain(many=True), "many"),
    (_Plain(partial=True), "partial"),
    (_Plain(only=("chat_id",)), "only"),
    (_Plain(exclude=("chat_id",)), "exclude"),
]


@pytest.mark.parametrize("schema, why", UNPLAIN, ids=[type(schema).__name__ + ":" + why for schema, why in UNPLAIN])
def test_a_schema_with_anything_unplain_always_uses_marshmallow(schema, why, monkeypatch):
    with pytest.raises(ev._NotPlain, match=why):
        ev._plan(schema)
    assert ev._fast_for(schema) is None
    monkeypatch.setitem(ev.SCHEMAS, ("test", "unplain"), schema)
    calls = marshmallow_calls(schema, monkeypatch)
    try:
        ev.load("test", "unplain", {"chat_id": "c1"})
    except ValidationError:
        pass
    assert len(calls) == 1


def test_every_schema_but_queue_changed_has_a_fast_path():
    slow = {key for key, schema in ev.SCHEMAS.items() if ev._fast_for(schema) is None}
    assert slow == {(ev.QUEUE, ev.QUEUE_CHANGED)}


def test_dump_names_what_breaks_the_schema_even_when_the_keys_do_not_sort(monkeypatch):
    monkeypatch.setitem(ev.SCHEMAS, ("test", "raising"), _Raising())
    with pytest.raises(ValueError, match=r"event test\.raising breaks its schema: \['1', 'zzz'\]") as raised:
        ev.dump("test", "raising", {"name": "a secret", 1: "x", "zzz": "y"})
    assert "secret" not in str(raised.value)  # the keys, never a value
