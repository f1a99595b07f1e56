"""The OpenAPI document served at /api/v1/openapi.json.

Built from the same marshmallow schemas the gateway validates with, so the
document and the behaviour cannot drift apart on request bodies.
"""

import functools

from marshmallow import fields, validate

from . import schemas

ERROR = {"$ref": "#/components/schemas/Error"}


def _field(field):
    if isinstance(field, fields.Integer):
        out = {"type": "integer"}
    elif isinstance(field, fields.Boolean):
        out = {"type": "boolean"}
    elif isinstance(field, fields.Dict):
        out = {"type": "object"}
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": _field(field.inner)}
    else:
        out = {"type": "string"}
    validators = field.validators if hasattr(field, "validators") else []
    for rule in validators:
        if isinstance(rule, validate.OneOf):
            out["enum"] = list(rule.choices)
        elif isinstance(rule, validate.Range):
            if rule.min is not None:
                out["minimum"] = rule.min
            if rule.max is not None:
                out["maximum"] = rule.max
        elif isinstance(rule, validate.Length):
            key = "Items" if out["type"] == "array" else "Length"
            if rule.min is not None:
                out[f"min{key}"] = rule.min
            if rule.max is not None:
                out[f"max{key}"] = rule.max
    if field.allow_none:
        out["nullable"] = True
    return out


def _schema(schema_cls):
    schema = schema_cls()
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _field(f) for name, f in schema.fields.items()},
        "required": [name for name, f in schema.fields.items() if f.required],
    }


def _op(summary, body=None, ok=200, auth=True, params=(), responses=()):
    op = {"summary": summary, "responses": {str(ok): {"description": "OK"}}}
    for code in (400, 401, 403, 404, 409, 413, 422, 429, 503) if auth else (400, 413, 422, 429, 503):
        op["responses"][str(code)] = {"description": "error", "content": {"application/json": {"schema": ERROR}}}
    for code in responses:
        op["responses"][str(code)] = {"description": "see API.md"}
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
        }
    if auth:
        op["security"] = [{"bearer": []}]
    if params:
        op["parameters"] = list(params)
    return op


CHAT_ID = {"name": "chat_id", "in": "path", "required": True, "schema": {"type": "string"}}
ESCALATION_ID = {"name": "escalation_id", "in": "path", "required": True, "schema": {"type": "string"}}
AFTER = {"name": "after", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}


@functools.lru_cache(maxsize=1)
def spec():
    bodies = (
        schemas.StartChat,
        schemas.PostMessage,
        schemas.EndChat,
        schemas.Login,
        schemas.Presence,
        schemas.Take,
        schemas.Transfer,
        schemas.Escalation,
        schemas.Priority,
        schemas.ChangePassword,
        schemas.Note,
        schemas.Phase,
        schemas.EscalationUpdate,
        schemas.AlertAck,
        schemas.Danger,
        schemas.RiskMark,
        schemas.Lang,
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "chatvakt gateway",
            "version": "1",
            "description": "The public contract of API.md. Endpoints and fields may be added; "
            "none named in API.md are renamed or removed.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "fields": {"type": "object"},
                            },
                        }
                    },
                },
                **{cls.__name__: _schema(cls) for cls in bodies},
            },
        },
        "paths": {
            "/api/v1/chats": {
                "post": _op(
                    "Start a chat (child); 403 from a foreign Origin, 429 past the per-address limit",
                    schemas.StartChat,
                    201,
                    auth=False,
                    responses=(403,),
                ),
                "get": _op(
                    "Chats by status: a counsellor's own, all for a supervisor",
                    params=[
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["waiting", "active", "ended", "abandoned", "timed_out"],
                            },
                        }
                    ],
                ),
            },
            "/api/v1/chats/{chat_id}/notes": {
                "post": _op("Internal note (staff; the child never sees it)", schemas.Note, 201, params=[CHAT_ID])
            },
            "/api/v1/chats/{chat_id}/whisper": {
                "post": _op("Whisper to the chat's counsellor (supervisor)", schemas.Note, 201, params=[CHAT_ID])
            },
            "/api/v1/chats/{chat_id}/phase": {
                "put": _op("Move to a phase of the conversation model", schemas.Phase, params=[CHAT_ID])
            },
            "/api/v1/chats/{chat_id}": {"get": _op("Read a chat", params=[CHAT_ID])},
            "/api/v1/chats/{chat_id}/messages": {
                "post": _op("Send a message", schemas.PostMessage, 201, params=[CHAT_ID]),
                "get": _op("Messages after seq N", params=[CHAT_ID, AFTER]),
            },
            "/api/v1/chats/{chat_id}/danger": {
                "post": _op(
                    "The child says whether they are in danger now (issue 14); yes puts a waiting chat "
                    "in the at-risk tier and alerts supervisors; the same answer again changes nothing; "
                    "403 for staff, 429 past a few changes a minute",
                    schemas.Danger,
                    params=[CHAT_ID],
                )
            },
            "/api/v1/chats/{chat_id}/risk": {
                "post": _op(
                    "Mark a chat at risk or not by hand, with a reason (staff); kept as a labelled "
                    "example for `chatvakt risk retrain`; a waiting chat moves in or out of the "
                    "at-risk tier",
                    schemas.RiskMark,
                    params=[CHAT_ID],
                )
            },
            "/api/v1/chats/{chat_id}/lang": {
                "post": _op(
                    "The child's page switched language during the chat (child); staff are told",
                    schemas.Lang,
                    params=[CHAT_ID],
                )
            },
            "/api/v1/chats/{chat_id}/end": {"post": _op("End a chat", None, params=[CHAT_ID])},
            "/api/v1/chats/{chat_id}/typing": {"post": _op("Typing", None, 202, params=[CHAT_ID])},
            "/api/v1/auth/login": {"post": _op("Log in", schemas.Login, auth=False, responses=(401,))},
            "/api/v1/auth/logout": {"post": _op("Log out")},
            "/api/v1/auth/password": {
                "post": _op(
                    "Change my password; every session of mine ends, the answer carries a new token",
                    schemas.ChangePassword,
                )
            },
            "/api/v1/me": {"get": _op("Who am I")},
            "/api/v1/presence": {
                "put": _op("Presence and capacity", schemas.Presence),
                "get": _op("My presence, capacity, load and cool-down"),
            },
            "/api/v1/queue": {"get": _op("The queue as it will be served")},
            "/api/v1/queue/take": {"post": _op("Take the next or a named chat", schemas.Take, responses=(204,))},
            "/api/v1/queue/{chat_id}/priority": {
                "put": _op("Set a waiting chat's priority", schemas.Priority, params=[CHAT_ID])
            },
            "/api/v1/queue/offers/{chat_id}/accept": {
                "post": _op("Accept a chat offered to me (auto-assign)", params=[CHAT_ID])
            },
            "/api/v1/queue/offers/{chat_id}/decline": {"post": _op("Let an offered chat pass", params=[CHAT_ID])},
            "/api/v1/counsellors": {"get": _op("Colleagues with their presence (staff)")},
            "/api/v1/queue/counsellors": {"get": _op("Counsellors' presence, load and cool-down (supervisor)")},
            "/api/v1/queue/stats": {
                "get": _op(
                    "Waits of answered and abandoned chats (supervisor)",
                    params=[
                        {"name": "from", "in": "query", "schema": {"type": "string"}},
                        {"name": "to", "in": "query", "schema": {"type": "string"}},
                    ],
                )
            },
            "/api/v1/chats/{chat_id}/transfer": {"post": _op("Transfer", schemas.Transfer, params=[CHAT_ID])},
            "/api/v1/taxonomy": {
                "get": _op(
                    "The category taxonomy (current, or ?version=)",
                    auth=False,
                    params=[
                        {"name": "version", "in": "query", "schema": {"type": "string", "maxLength": 40}},
                        {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["nb", "en"]}},
                    ],
                    responses=(404,),
                )
            },
            "/api/v1/chats/{chat_id}/coding": {
                "get": _op("Read the coding", params=[CHAT_ID]),
                "put": _op("Save the coding", None, params=[CHAT_ID]),
            },
            "/api/v1/chats/{chat_id}/coding/history": {
                "get": _op("Every saved version of the coding, with who and when", params=[CHAT_ID])
            },
            "/api/v1/coding/uncoded": {"get": _op("Ended chats without coding")},
            "/api/v1/stats": {
                "get": _op(
                    "Statistics (supervisor)",
                    params=[
                        {"name": "from", "in": "query", "schema": {"type": "string"}},
                        {"name": "to", "in": "query", "schema": {"type": "string"}},
                        {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
                    ],
                )
            },
            "/api/v1/chats/{chat_id}/escalations": {
                "post": _op("Escalate", schemas.Escalation, 201, params=[CHAT_ID]),
                "get": _op("A chat's escalations", params=[CHAT_ID]),
            },
            "/api/v1/escalations": {
                "get": _op(
                    "Escalations (supervisor)", params=[{"name": "status", "in": "query", "schema": {"type": "string"}}]
                )
            },
            "/api/v1/escalations/{escalation_id}": {
                "get": _op(
                    "One escalation with its status history (identifying details: supervisors)", params=[ESCALATION_ID]
                ),
                "patch": _op(
                    "Edit details and/or move the status (409 on an illegal move)",
                    schemas.EscalationUpdate,
                    params=[ESCALATION_ID],
                ),
            },
            "/api/v1/escalations/{escalation_id}/identifying": {
                "get": _op(
                    "Read back the identifying details one wrote (the writer, audited) while the chat "
                    "lasts and CHATVAKT_READBACK_S after; 403 later",
                    params=[ESCALATION_ID],
                )
            },
            "/api/v1/escalations/{escalation_id}/transcript": {
                "get": _op(
                    "The chat beside the draft, for the supervisor who approves it (audited)", params=[ESCALATION_ID]
                )
            },
            "/api/v1/escalations/{escalation_id}/audit": {
                "get": _op("Who read and changed the escalation, when (supervisor)", params=[ESCALATION_ID])
            },
            "/api/v1/escalations/{escalation_id}/report.pdf": {
                "get": _op("The report of concern as a PDF (supervisor)", params=[ESCALATION_ID])
            },
            "/api/v1/alerts": {"get": _op("Unacknowledged risk alerts the caller should see")},
            "/api/v1/alerts/{chat_id}/ack": {
                "post": _op("Acknowledge a chat's alerts (or one, by alert_id)", schemas.AlertAck, params=[CHAT_ID])
            },
            "/api/v1/services": {"get": _op("Directory of other services", auth=False)},
            "/healthz": {"get": _op("Process is up", auth=False)},
            "/readyz": {"get": _op("Broker and services answer", auth=False)},
        },
    }
