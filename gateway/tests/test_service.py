"""The gateway's routes with stubbed RPC proxies: no broker, no HTTP server.

nameko's worker_factory gives a GatewayService whose RPC proxies are mocks the
test sets and whose database is a SQLite file; a route is called as nameko
calls it, and its result or error becomes a response through the gateway's
own handler. Covered: the table that turns a service's error into a status
(API.md, Conventions), authentication, the limits that answer 429, and
that the OpenAPI document lists the routes served.
"""

import re
import time
from types import SimpleNamespace

import eventlet
import pytest
from nameko.exceptions import BadRequest, RemoteError, UnknownService, deserialize, serialize
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder

from chatvakt import errors
from chatvakt.testing import sqlite_sessions
from gateway import accounts, base, limits, openapi, ratelimit, sessions, web
from gateway.models import metadata
from gateway.routes_auth import AuthRoutes
from gateway.service import GatewayService

# API.md, Conventions. The code in each body is the error class's own `code`.
EXPECTED = {
    "Malformed": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "NotAvailable": 409,
    "Conflict": 409,
    "TooLarge": 413,
    "Invalid": 422,
    "RateLimited": 429,
    "Unavailable": 503,
}
ERROR_CLASSES = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.ChatvaktError) and cls is not errors.ChatvaktError
]
HANDLER = web.ApiHandler("GET", "/api/v1/queue")
PASSWORD = "a long enough password"


def tx(sessions_, fn, *args, **kwargs):
    with sessions_() as session, session.begin():
        return fn(session, *args, **kwargs)


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATVAKT_RPC_TIMEOUT", "0.2")
    monkeypatch.setattr(limits, "_salt_cache", {})
    monkeypatch.setattr(sessions, "_state", {"last_id": None, "pruned": 0.0})
    base._token_cache.clear()  # routes hold this very dict: emptied, not replaced
    base._chat_checked.clear()
    engine, db = sqlite_sessions(tmp_path, "gateway", metadata)
    worker = worker_factory(GatewayService, db=db, hub=SimpleNamespace(connections={}, subscriptions={}))
    worker.queue_proxy.snapshot.side_effect = lambda: {"waiting": [], "flood": {"chats": 12}}
    yield worker
    base._token_cache.clear()
    base._chat_checked.clear()
    engine.dispose()


def staff_token(gateway, role="counsellor", username=None):
    account_id = tx(gateway.db, accounts.add_account, username or role, role.title(), role, PASSWORD)
    return tx(gateway.db, accounts.start_session, account_id)["token"]


def request(token=None, method="GET", body=None, address="203.0.113.5", scheme="Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    return EnvironBuilder(
        method=method, headers=headers, json=body, environ_base={"REMOTE_ADDR": address}
    ).get_request()


def respond(route, req, *args):
    """What the client gets: the route's answer through the gateway's handler."""
    try:
        result = route(req, *args)
    except Exception as exc:  # noqa: BLE001 - every error goes through the one table
        return HANDLER.response_from_exception(exc)
    return HANDLER.response_from_result(result)


def code_of(response):
    return response.get_json()["error"]["code"]


# -- the error table --


def test_every_error_a_service_may_raise_has_its_row():
    # A class without a row would reach a client as a 500.
    assert sorted(cls.__name__ for cls in ERROR_CLASSES) == sorted(EXPECTED)
    assert {cls for cls, _status, _code in web.STATUS} == set(ERROR_CLASSES) | {BadRequest}


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_a_services_error_answers_its_status_and_code(gateway, cls):
    token = staff_token(gateway)
    # As the RPC reply carries it: serialised by the service, rebuilt here.
    gateway.queue_proxy.snapshot.side_effect = deserialize(serialize(cls("Said for a person.")))
    response = respond(gateway.get_queue, request(token))
    assert response.status_code == EXPECTED[cls.__name__]
    assert response.get_json()["error"] == {"code": cls.code, "message": "Said for a person."}
    assert ("Retry-After" in response.headers) == (cls is errors.RateLimited)
    if cls is errors.RateLimited:
        assert int(response.headers["Retry-After"]) >= 1
    assert (response.headers.get("WWW-Authenticate") == "Bearer") == (cls is errors.Unauthorized)


def test_invalid_fields_reach_the_client():
    response = HANDLER.response_from_exception(errors.Invalid("No.", {"age": ["Too old."]}))
    assert response.status_code == 422 and response.get_json()["error"]["fields"] == {"age": ["Too old."]}


def test_a_path_that_does_not_fit_is_400():
    response = HANDLER.response_from_exception(BadRequest("bad path"))
    assert response.status_code == 400 and code_of(response) == "malformed"


def test_an_rpc_that_times_out_is_503(gateway):
    token = staff_token(gateway)
    gateway.queue_proxy.snapshot.side_effect = lambda: eventlet.sleep(2)
    started = time.monotonic()
    response = respond(gateway.get_queue, request(token))
    assert time.monotonic() - started < 1.5  # the deadline is 0.2 s
    assert response.status_code == 503 and code_of(response) == "service_unavailable"
    assert "queue" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "error", [ConnectionRefusedError(111, "refused"), ConnectionError("lost"), UnknownService("queue")]
)
def test_an_unreachable_broker_or_service_is_503(gateway, error):
    # UnknownService: no queue took the request (it was a 500 until 2026-12-06).
    token = staff_token(gateway)
    gateway.queue_proxy.snapshot.side_effect = error
    response = respond(gateway.get_queue, request(token))
    assert response.status_code == 503 and code_of(response) == "service_unavailable"


def test_a_services_bug_is_a_500_that_tells_nothing(gateway):
    token = staff_token(gateway)
    gateway.queue_proxy.snapshot.side_effect = RemoteError("KeyError", "secret detail")
    response = respond(gateway.get_queue, request(token))
    assert response.status_code == 500 and code_of(response) == "internal"
    assert "secret" not in response.get_data(as_text=True)


# -- authentication --


@pytest.mark.parametrize("token,scheme", [(None, "Bearer"), ("not-a-token", "Bearer"), ("whatever", "Basic")])
def test_no_valid_bearer_token_is_401(gateway, token, scheme):
    response = respond(gateway.get_queue, request(token, scheme=scheme))
    assert response.status_code == 401 and code_of(response) == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    gateway.queue_proxy.snapshot.assert_not_called()


def test_a_role_that_may_not_is_403(gateway):
    counsellor = staff_token(gateway)
    response = respond(gateway.queue_counsellors, request(counsellor))
    assert response.status_code == 403 and code_of(response) == "forbidden"
    gateway.queue_proxy.counsellors.assert_not_called()
    gateway.chat_proxy.get_chat.return_value = {"chat_id": "c1", "status": "waiting"}
    child = tx(gateway.db, accounts.issue_child_token, "c1")
    assert respond(gateway.get_queue, request(child)).status_code == 403
    gateway.queue_proxy.snapshot.assert_not_called()


def test_a_good_token_gets_its_answer_for_its_role(gateway):
    counsellor = respond(gateway.get_queue, request(staff_token(gateway)))
    assert counsellor.status_code == 200 and "flood" not in counsellor.get_json()
    supervisor = respond(gateway.get_queue, request(staff_token(gateway, "supervisor")))
    assert supervisor.status_code == 200 and supervisor.get_json()["flood"] == {"chats": 12}
    gateway.queue_proxy.counsellors.return_value = []
    token = staff_token(gateway, "supervisor", "sup2")
    assert respond(gateway.queue_counsellors, request(token)).status_code == 200


def test_login_gives_a_token_and_a_wrong_password_is_401(gateway):
    staff_token(gateway, username="anne")
    wrong = respond(gateway.login, request(method="POST", body={"username": "anne", "password": "no"}))
    assert wrong.status_code == 401 and wrong.get_json()["error"]["message"] == "Wrong username or password."
    unknown = respond(gateway.login, request(method="POST", body={"username": "bo", "password": "no"}))
    assert unknown.get_json() == wrong.get_json()
    good = respond(gateway.login, request(method="POST", body={"username": "anne", "password": PASSWORD}))
    assert good.status_code == 200
    me = respond(gateway.me, request(good.get_json()["token"]))
    assert me.status_code == 200 and me.get_json()["role"] == "counsellor"


def test_a_logged_out_session_is_401(gateway):
    token = staff_token(gateway)
    assert respond(gateway.get_queue, request(token)).status_code == 200  # now in the cache
    assert respond(gateway.logout, request(token, "POST")).status_code == 200
    assert respond(gateway.get_queue, request(token)).status_code == 401


def test_a_session_revoked_on_another_replica_is_401_after_the_next_poll(gateway):
    token = staff_token(gateway)
    gateway.apply_revocations()  # a process starts reading the log from now
    assert respond(gateway.get_queue, request(token)).status_code == 200  # now in the cache
    tx(gateway.db, accounts.revoke, token)  # the other replica's logout
    gateway.apply_revocations()
    assert respond(gateway.get_queue, request(token)).status_code == 401


def test_a_password_change_ends_the_old_session_and_gives_a_new_one(gateway):
    token = staff_token(gateway)
    body = {"current": PASSWORD, "new": "another long password"}
    changed = respond(gateway.change_password, request(token, "POST", body))
    assert changed.status_code == 200
    assert respond(gateway.me, request(token)).status_code == 401
    assert respond(gateway.me, request(changed.get_json()["token"])).status_code == 200


def test_a_password_change_closes_the_old_sessions_sockets_and_not_one_opened_after_it(gateway):
    # The revocation log is read every half second: a counsellor who changed
    # their password and opened a socket with the new token before this
    # process read the log had that new socket closed too (and went offline
    # after the presence grace; tests/test_queue_replicas.py).
    old = staff_token(gateway)
    account_id = tx(gateway.db, accounts.resolve, old)["id"]
    gateway.apply_revocations()  # a process starts reading the log from now
    closed = []

    def socket(socket_id, token):
        gateway.hub.connections[socket_id] = SimpleNamespace(
            context_data={"actor": {"id": account_id, "role": "counsellor"}, "token_digest": accounts.digest(token)},
            subscriptions=set(),
        )
        return SimpleNamespace(socket=SimpleNamespace(close=lambda close_data: closed.append(socket_id)))

    body = {"current": PASSWORD, "new": "another long password"}
    new = respond(gateway.change_password, request(old, "POST", body)).get_json()["token"]
    gateway.hub._server = SimpleNamespace(sockets={"s-old": socket("s-old", old), "s-new": socket("s-new", new)})
    gateway.apply_revocations()
    assert closed == ["s-old"]
    assert "actor" in gateway.hub.connections["s-new"].context_data


def test_a_childs_token_dies_with_its_chat(gateway):
    child = tx(gateway.db, accounts.issue_child_token, "c1")
    gateway.chat_proxy.get_chat.return_value = {"chat_id": "c1", "status": "ended"}
    response = respond(gateway.get_chat, request(child), "c1")
    assert response.status_code == 409 and response.get_json()["error"]["message"] == "This chat has ended."


# -- limits: 429 with Retry-After --


def assert_429(response):
    assert response.status_code == 429 and code_of(response) == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    return int(response.headers["Retry-After"])


def test_wrong_passwords_are_429_with_retry_after_even_for_the_right_one(gateway, monkeypatch):
    monkeypatch.setenv("CHATVAKT_LOGIN_FREE_FAILURES", "2")
    monkeypatch.setenv("CHATVAKT_LOGIN_BASE_DELAY_S", "30")
    staff_token(gateway, username="anne")
    attempt = {"username": "anne", "password": "guess"}
    assert [respond(gateway.login, request(method="POST", body=attempt)).status_code for _ in range(2)] == [
        401,
        401,
    ]  # the second starts a 30 s block
    assert assert_429(respond(gateway.login, request(method="POST", body=attempt))) == 30
    right = {"username": "anne", "password": PASSWORD}
    assert_429(respond(gateway.login, request(method="POST", body=right)))
    # Another address is not blocked by this one's guesses.
    other = respond(gateway.login, request(method="POST", body=right, address="198.51.100.7"))
    assert other.status_code == 200


def test_a_childs_messages_past_the_chats_limit_are_429_with_the_chat_services_wait(gateway):
    # The chat service counts a chat's messages (on its row, across replicas);
    # its refusal crosses the RPC as nameko rebuilds it, wait included.
    refused = deserialize(serialize(errors.RateLimited("Too many messages; wait a little.", retry_after=17)))
    gateway.chat_proxy.get_chat.return_value = {"chat_id": "c1", "status": "active"}
    gateway.chat_proxy.post_message.side_effect = refused
    child = tx(gateway.db, accounts.issue_child_token, "c1")
    response = respond(gateway.post_message, request(child, "POST", {"text": "hei"}), "c1")
    assert assert_429(response) == 17


def test_chats_opened_past_the_addresss_limit_are_429(gateway, monkeypatch):
    monkeypatch.setenv("CHATVAKT_CHAT_OPEN_BURST", "1")
    monkeypatch.setenv("CHATVAKT_CHAT_OPEN_PER_MIN", "1")
    gateway.chat_proxy.start_chat.side_effect = lambda **kw: {
        "chat_id": "c1",
        "started_at": "2026-01-01T00:00:00Z",
        "welcome": "Hei",
    }
    gateway.queue_proxy.enqueue.return_value = {"position": 1}
    assert respond(gateway.start_chat, request(method="POST", body={})).status_code == 201
    assert assert_429(respond(gateway.start_chat, request(method="POST", body={}))) == 60
    assert gateway.chat_proxy.start_chat.call_count == 1
    other = respond(gateway.start_chat, request(method="POST", body={}, address="198.51.100.7"))
    assert other.status_code == 201


def test_a_token_that_floods_is_429_before_any_route_runs(monkeypatch):
    monkeypatch.setattr(web, "_token_throttle", [ratelimit.Throttle(rate=0.5, burst=1)])
    assert web._flooding(request("token-a")) is None
    response = HANDLER.handle_request(request("token-a"))  # no container: refused before one is needed
    assert assert_429(response) in (1, 2)  # one request per 2 s: a whole second at least
    assert web._flooding(request("token-b")) is None  # another token is not slowed


# -- the routes and their document --

# Served but not in the OpenAPI document: the document itself.
UNDOCUMENTED = {("get", "/api/v1/openapi.json")}


def served_routes():
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, web.ApiHandler) and entrypoint.url.startswith("/api/"):
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", entrypoint.url)
                yield from ((method.lower(), path, name) for method in entrypoint.method.split(","))


def test_every_api_route_served_is_in_the_openapi_document():
    paths = openapi.spec()["paths"]
    served = {(method, path): name for method, path, name in served_routes()}
    assert {(method, path) for method, path in served if method not in paths.get(path, {})} == UNDOCUMENTED
    # The session's routes are their own mixin's (routes_auth.py).
    auth = {key for key, name in served.items() if hasattr(AuthRoutes, name)}
    assert auth == {
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/password"),
        ("get", "/api/v1/me"),
    }
