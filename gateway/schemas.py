"""marshmallow schemas for what clients send the gateway (API.md)."""

from marshmallow import RAISE, Schema, fields, validate

from chatvakt.vocabulary import GENDERS


class _Body(Schema):
    class Meta:
        unknown = RAISE


class StartChat(_Body):
    gender = fields.String(validate=validate.OneOf(GENDERS), allow_none=True, load_default=None)
    age = fields.Integer(strict=True, validate=validate.Range(min=5, max=25), allow_none=True, load_default=None)
    nickname = fields.String(validate=validate.Length(max=40), allow_none=True, load_default=None)
    message = fields.String(validate=validate.Length(max=4000 + 200), allow_none=True, load_default=None)
    lang = fields.String(validate=validate.OneOf(("nb", "en")), load_default="nb")
    # issue 14: "Er du i fare akkurat nå?" - yes, no, or null (rather not say / not asked)
    in_danger = fields.Boolean(truthy={True}, falsy={False}, allow_none=True, load_default=None)


class PostMessage(_Body):
    text = fields.String(required=True)
    client_msg_id = fields.String(validate=validate.Length(min=1, max=64), allow_none=True, load_default=None)


class EndChat(_Body):
    reason = fields.String(
        validate=validate.OneOf(("child", "quick_exit", "counsellor")), load_default=None, allow_none=True
    )


class Login(_Body):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class ChangePassword(_Body):
    current = fields.String(required=True, validate=validate.Length(min=1, max=256))
    new = fields.String(required=True, validate=validate.Length(min=8, max=256))


class Presence(_Body):
    status = fields.String(required=True, validate=validate.OneOf(("available", "away", "offline")))
    capacity = fields.Integer(strict=True, validate=validate.Range(min=1, max=10), load_default=None, allow_none=True)
    # true: ready for chats again during a cool-down after a chat with acute danger
    opt_in = fields.Boolean(truthy={True}, falsy={False}, load_default=None, allow_none=True)


class Take(_Body):
    chat_id = fields.String(validate=validate.Length(min=1, max=64), load_default=None, allow_none=True)


class Transfer(_Body):
    to = fields.String(required=True, validate=validate.Length(min=1, max=64))
    note = fields.String(validate=validate.Length(max=2000), load_default=None, allow_none=True)


class Escalation(_Body):
    kind = fields.String(
        required=True, validate=validate.OneOf(("acute_danger", "report_of_concern", "network_contact", "referral"))
    )
    details = fields.Dict(load_default=dict)


class Priority(_Body):
    priority = fields.Integer(strict=True, required=True, validate=validate.Range(min=-100, max=100))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class Note(_Body):
    """An internal note or a supervisor's whisper (1-4000 characters after trimming)."""

    text = fields.String(required=True)


class Phase(_Body):
    phase = fields.String(
        required=True,
        validate=validate.OneOf(("opening", "request_and_goal", "options_for_action", "summary_and_close")),
    )


class EscalationUpdate(_Body):
    """PATCH an escalation: edit details (merged; null removes a field) and/or move its status."""

    details = fields.Dict(load_default=None, allow_none=True)
    status = fields.String(validate=validate.Length(min=1, max=24), load_default=None, allow_none=True)
    refresh_facts = fields.Boolean(load_default=False)


class AlertAck(_Body):
    alert_id = fields.String(validate=validate.Length(min=1, max=40), load_default=None, allow_none=True)


class Lang(_Body):
    """issue 13: the child's page switched language during the chat."""

    lang = fields.String(required=True, validate=validate.OneOf(("nb", "en")))


class Danger(_Body):
    """The child says later whether they are in danger now ("Jeg trenger hjelp nå")."""

    in_danger = fields.Boolean(required=True, truthy={True}, falsy={False})


class RiskMark(_Body):
    """A counsellor's or supervisor's hand mark: at risk or not, and why (sealed)."""

    at_risk = fields.Boolean(required=True, truthy={True}, falsy={False})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    categories = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        validate=validate.Length(max=10),
        load_default=None,
        allow_none=True,
    )
