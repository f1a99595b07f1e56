"""HTTP edge: JSON in and out, and the one table that turns errors into
status codes (API.md, Conventions). No input a client can send gets a 500."""

import json
import logging
import re
import time
import uuid
from functools import partial

from eventlet.event import Event
from marshmallow import Schema, ValidationError
from nameko.exceptions import BadRequest
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from chatvakt import errors
from chatvakt.clock import parse_iso

from . import admission, metrics
from .ratelimit import http_throttle, token_key
from .server import HardenedWebServer, limits

log = logging.getLogger(__name__)
QUIET_ROUTES = ("/healthz", "/readyz", "/metrics")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

# The one table: error class -> (status, code). First match wins.
STATUS = (
    (errors.Malformed, 400, "malformed"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not_found"),
    (errors.NotAvailable, 409, "not_available"),
    (errors.Conflict, 409, "conflict"),
    (errors.TooLarge, 413, "too_large"),
    (errors.Invalid, 422, "invalid"),
    (errors.RateLimited, 429, "rate_limited"),
    (errors.Unavailable, 503, "service_unavailable"),
    (BadRequest, 400, "malformed"),  # nameko: a path that does not fit the handler
)


# A client's mistake: nameko logs these at warning, not as our error.
CLIENT_ERRORS = tuple(cls for cls, status, _ in STATUS if status < 500)


def json_response(status, payload, headers=None):
    return Response(
        json.dumps(payload, ensure_ascii=False), status=status, headers=headers or {}, mimetype="application/json"
    )


def error_response(exc):
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            body = {"error": {"code": code, "message": str(exc) or code.replace("_", " ")}}
            fields = getattr(exc, "fields", None)
            if fields:
                body["error"]["fields"] = fields
            headers = {}
            if isinstance(exc, errors.RateLimited):
                headers["Retry-After"] = str(max(1, int(exc.retry_after)))
            if isinstance(exc, errors.Unauthorized):
                headers["WWW-Authenticate"] = "Bearer"
            return json_response(status, body, headers)
    # Anything else is our bug, not the client's: say little, log the type only.
    log.error("unhandled %s in the gateway", type(exc).__name__)
    metrics.ERRORS.labels(service="gateway", kind=type(exc).__name__).inc()
    return json_response(500, {"error": {"code": "internal", "message": "Something went wrong on our side."}})


def overloaded_response():
    response = json_response(
        503,
        {"error": {"code": "overloaded", "message": "We are very busy right now. Please try again in a moment."}},
        {"Retry-After": str(admission.RETRY_AFTER_S)},
    )
    response.shed = True
    return response


class ApiHandler(HttpRequestHandler):
    """nameko's HTTP entrypoint, with our JSON results and error table."""

    server = HardenedWebServer()
    gate = None  # one per process, shared by every route (admission.py)

    def __init__(self, method, url, expected_exceptions=(), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions or CLIENT_ERRORS, **kwargs)

    def handle_request(self, request):
        started = time.perf_counter()
        request_id = request.headers.get("X-Request-Id", "")
        if not REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex[:16]
        if request.content_length and request.content_length > limits()["max_body"]:
            response = error_response(errors.TooLarge("The request body is too large."))
        elif (wait := _flooding(request)) is not None:
            response = error_response(errors.RateLimited("Too many requests; slow down.", retry_after=wait))
        else:
            response = self._admitted(request, {"request_id": request_id})
        response.headers["X-Request-Id"] = request_id
        # A child's transcript must not stay in the browser's cache after quick exit.
        response.headers.setdefault("Cache-Control", "no-store")
        elapsed = time.perf_counter() - started
        metrics.HTTP_REQUESTS.labels(method=request.method, route=self.url, status=str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(route=self.url).observe(elapsed)
        # Our access log: the route's template, never the client's address or query.
        # A client's mistake is not ours: 4xx at info, 5xx (ours) at warning
        # here, the cause is logged at error where it happened.
        # Probes and scrapes come every few seconds while nothing happens: debug
        # (a 503 from /readyz while the services start is an answer, not a fault).
        # A request shed for overload is counted and warned of by admission.py, not line by line.
        quiet = self.url in QUIET_ROUTES and response.status_code in (200, 503) or getattr(response, "shed", False)
        level = logging.DEBUG if quiet else logging.WARNING if response.status_code >= 500 else logging.INFO
        log.log(
            level,
            "%s %s %s %.1fms request_id=%s",
            request.method,
            self.url,
            response.status_code,
            elapsed * 1000,
            request_id,
        )
        return response

    def _admitted(self, request, context_data):
        """_run within this process's bound on RPC-backed requests; beyond it, 503
        once the request's short wait for a slot is over (admission.py)."""
        if not admission.admitted(request.method, self.url):
            return self._run(request, context_data)
        if ApiHandler.gate is None:
            ApiHandler.gate = admission.gate_for(self.container.max_workers)
        gate = ApiHandler.gate
        slot = gate.take(reserved=admission.reserved(request.method, self.url))
        if slot is None:
            metrics.ERRORS.labels(service="gateway", kind="overloaded").inc()
            gate.shed()
            return overloaded_response()
        try:
            return self._run(request, context_data)
        finally:
            gate.give(slot)

    def _run(self, request, context_data):
        # nameko's HttpRequestHandler.handle_request, with our context data
        # (the request id travels with every RPC and event this request causes).
        request.shallow = False
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data=context_data, handle_result=partial(self.handle_result, event)
            )
            return self.response_from_result(event.wait())
        except Exception as exc:  # noqa: BLE001 - every error goes through the one table
            return self.response_from_exception(exc)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            status, payload = result
        else:
            status, payload = 200, result
        if status == 204:
            return Response(status=204)
        return json_response(status, payload)

    def response_from_exception(self, exc):
        return error_response(exc)


api = ApiHandler.decorator

_token_throttle = []


def _flooding(request):
    """Seconds to wait when this bearer token floods the gateway; None to go on."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    if not _token_throttle:
        _token_throttle.append(http_throttle())
    wait = _token_throttle[0].check(token_key(header[7:].strip()))
    if wait is not None:
        metrics.ERRORS.labels(service="gateway", kind="token_throttled").inc()
    return wait


_schemas: dict[type, Schema] = {}


def read_json(request, schema=None):
    """The body as a validated dict: 400 when it is not JSON, 422 when it breaks
    the schema (a marshmallow Schema class).

    One instance per schema class serves every request: a Schema deep-copies
    its declared fields when it is made, and its fields point back at it, so
    one per request was a tenth of a millisecond and a reference cycle for the
    garbage collector on the relay's hot path (issue 16). Loading keeps no
    state in the instance."""
    raw = request.get_data(cache=True)
    if len(raw) > limits()["max_body"]:
        raise errors.TooLarge("The request body is too large.")
    if not raw.strip():
        body = {}
    else:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise errors.Malformed("The body is not valid JSON.") from None
        except RecursionError:
            raise errors.Malformed("The body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise errors.Malformed("The body must be a JSON object.")
    check_json(body)
    if schema is None:
        return body
    if isinstance(schema, type):
        schema = _schemas.get(schema) or _schemas.setdefault(schema, schema())
    try:
        return schema.load(body)
    except ValidationError as error:
        raise errors.Invalid("Some fields are not valid.", _flat(error.messages)) from None


def check_json(value, max_depth=None):
    """Malformed when nested deeper than max_depth; Invalid, naming the field,
    when a string holds a lone UTF-16 surrogate ("\\ud800" is valid JSON but
    no UTF-8 database, broker or browser can carry it)."""
    max_depth = limits()["max_json_depth"] if max_depth is None else max_depth
    # Iterative: a recursive walk would fail on exactly the input it guards against.
    stack = [(value, 1, None)]
    while stack:
        item, depth, field = stack.pop()
        if depth > max_depth:
            raise errors.Malformed(f"The JSON is nested deeper than {max_depth} levels.")
        if isinstance(item, str):
            if not _utf8(item):
                name = field or "_schema"
                raise errors.Invalid(
                    "A text holds an invalid character.", {name: ["Contains a lone UTF-16 surrogate."]}
                )
        elif isinstance(item, dict):
            for key, child in item.items():
                name = field if field is not None else str(key)
                if not _utf8(key):
                    raise errors.Invalid(
                        "A field name holds an invalid character.",
                        {"_schema": ["A key contains a lone UTF-16 surrogate."]},
                    )
                stack.append((child, depth + 1, name))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, field) for child in item)


def _utf8(text):
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _flat(messages):
    out = {}
    for key, value in messages.items() if isinstance(messages, dict) else [("_schema", messages)]:
        if isinstance(value, dict):
            out[str(key)] = [f"{k}: {v}" for k, v in value.items()]
        elif isinstance(value, list):
            out[str(key)] = [str(v) for v in value]
        else:
            out[str(key)] = [str(value)]
    return out


# Wide enough for any helpline's history and plans; beyond it, date
# arithmetic in the services (a day added to 9999-12-31) overflows.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def time_arg(request, name):
    """A query's ISO 8601 time as given, or None; 422 naming it when it is not
    one, or lies outside the years statistics can cover."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        parsed = parse_iso(raw)
    except (TypeError, ValueError, OverflowError):
        raise errors.Invalid(f"{name} must be an ISO 8601 time.", {name: ["Not an ISO 8601 time."]}) from None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise errors.Invalid(
            f"{name} is out of range.", {name: [f"Between the years {EARLIEST_YEAR} and {LATEST_YEAR}."]}
        )
    return raw


def bearer(request):
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise errors.Unauthorized("A bearer token is required.")
    return header[7:].strip()
