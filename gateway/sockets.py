"""nameko's websocket server, hardened for the open internet.

nameko.web.websocket answers whatever arrives: any Origin, frames up to
eventlet's 8 MiB, binary frames, and as many frames per second as a client
can send (each one a worker). Ours:

- refuses the upgrade (403) when a browser's Origin is neither the gateway's
  own host nor in CHATVAKT_ALLOWED_ORIGINS (comma-separated origins, or `*`);
- closes a socket (1009) whose frame is over CHATVAKT_WS_MAX_FRAME bytes, and
  answers an error result, keeping the socket, to a frame over
  CHATVAKT_WS_MAX_MESSAGE bytes, a binary frame, or one that is not a JSON
  object with a string `method`;
- throttles each socket to CHATVAKT_WS_RATE frames a second (burst
  CHATVAKT_WS_BURST): a frame over the limit gets a `RateLimited` error
  result without running a worker, and a socket that keeps flooding
  (CHATVAKT_WS_FLOOD_CLOSE refusals with no quiet second between) is
  closed (1008). Every socket is served by its own green thread, one frame
  at a time, so one client's garbage never touches another's socket;
- closes (1008) a socket that has not authenticated (the `auth` call) within
  CHATVAKT_WS_AUTH_TIMEOUT_S;
- pings every CHATVAKT_WS_PING_S and closes (1001) a socket from which
  nothing, not even a pong, arrived for CHATVAKT_WS_READ_TIMEOUT_S: browsers
  answer pings by themselves, so a quiet child keeps the socket while a
  vanished one (a phone gone under a tunnel for good) goes;
- closes with 1002/1007/1009 and a reason on a protocol error (eventlet's
  parser), and never logs a client's error as ours.

`rpc` and `HubProvider` are nameko's, bound to this server. The server shares
nameko's sharing key, so a stock `nameko.web.websocket.rpc` in the same
service lands on this one server as well (dependencies bind first).
"""

import heapq
import json
import logging
import socket
import time
from functools import cache
from types import MappingProxyType
from urllib.parse import urlsplit

import eventlet
from eventlet.websocket import WebSocketWSGI
from nameko.exceptions import serialize
from nameko.web.websocket import WebSocketHubProvider, WebSocketRpc, WebSocketServer

from chatvakt import config, errors

from . import metrics
from .ratelimit import Bucket
from .server import HardenedWebServer
from .web import CLIENT_ERRORS, check_json, json_response

log = logging.getLogger(__name__)


FLOOD_QUIET_S = 1.0


@cache
def limits():
    """Read once per process, as the edge's (server.limits)."""
    return MappingProxyType(
        {
            "max_frame": config.env_int("CHATVAKT_WS_MAX_FRAME", 64 * 1024),
            "max_message": config.env_int("CHATVAKT_WS_MAX_MESSAGE", 16 * 1024),
            "rate": config.env_float("CHATVAKT_WS_RATE", 20.0),
            "burst": config.env_float("CHATVAKT_WS_BURST", 40.0),
            # Refused frames with no quiet second between before we give up on the socket.
            "flood_close": config.env_int("CHATVAKT_WS_FLOOD_CLOSE", 200),
            "auth_timeout": config.env_float("CHATVAKT_WS_AUTH_TIMEOUT_S", 10.0),
            "ping": config.env_float("CHATVAKT_WS_PING_S", 20.0),
            # Three pings unanswered: long enough for a phone that drops for a moment.
            "read_timeout": config.env_float("CHATVAKT_WS_READ_TIMEOUT_S", 0.0)
            or 3 * config.env_float("CHATVAKT_WS_PING_S", 20.0),
        }
    )


AUTH_TIMEOUT = (1008, "Not authenticated in time; call auth first.")
NO_ANSWER = (1001, "No answer to pings.")


def verdict(now, opened_at, last_heard, authenticated, lim):
    """Why a socket must close now ((code, reason)), or None to keep it."""
    if not authenticated and now - opened_at >= lim["auth_timeout"]:
        return AUTH_TIMEOUT
    if now - last_heard >= lim["read_timeout"]:
        return NO_ANSWER
    return None


def next_check(now, opened_at, last_heard, last_ping, authenticated, lim):
    """Seconds until the watchdog must look again (auth deadline, ping, read deadline)."""
    due = [last_ping + lim["ping"], last_heard + lim["read_timeout"]]
    if not authenticated:
        due.append(opened_at + lim["auth_timeout"])
    return max(0.05, min(due) - now)


class _Heard:
    """The socket under an eventlet WebSocket, noting when anything (a pong
    too, which eventlet swallows) last arrived."""

    def __init__(self, sock):
        self._sock = sock
        self.last = time.monotonic()

    def recv(self, *args):
        data = self._sock.recv(*args)
        self.last = time.monotonic()
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class Watchdog:
    """One green thread watching every socket of the process (auth deadline,
    pings, read deadline), instead of one sleeping thread per socket: a
    sleeping green thread kept about 7 KiB a socket (issue 16). Each socket
    is due again at next_check(); a heap orders them. Pings and closes run in
    short-lived green threads, so one full socket never holds up the others.
    """

    TICK = 0.25  # the longest sleep, so a socket added meanwhile is never late

    def __init__(self):
        self.heap = []
        self.order = 0
        self.thread = None

    def add(self, ws, heard, context_data, lim):
        now = time.monotonic()
        # [ws, heard, context_data, lim, opened_at, last_ping, open]
        entry = [ws, heard, context_data, lim, now, now, True]
        self._schedule(entry, now + next_check(now, now, heard.last, now, False, lim))
        if self.thread is None:
            self.thread = eventlet.spawn(self._run)
        return entry

    @staticmethod
    def remove(entry):
        entry[6] = False

    def _schedule(self, entry, due):
        self.order += 1
        heapq.heappush(self.heap, (due, self.order, entry))

    def _run(self):
        try:
            while self.heap:
                now = time.monotonic()
                while self.heap and self.heap[0][0] <= now:
                    _due, _order, entry = heapq.heappop(self.heap)
                    if entry[6]:
                        self._check(entry, now)
                wait = self.TICK if not self.heap else min(self.TICK, self.heap[0][0] - time.monotonic())
                eventlet.sleep(max(0.0, wait))
        finally:
            self.thread = None

    def _check(self, entry, now):
        ws, heard, context_data, lim, opened_at, last_ping, _open = entry
        authenticated = context_data.get("actor") is not None
        reason = verdict(now, opened_at, heard.last, authenticated, lim)
        if reason is not None:
            entry[6] = False
            kind = "ws_auth_timeout" if reason is AUTH_TIMEOUT else "ws_read_timeout"
            metrics.ERRORS.labels(service="gateway", kind=kind).inc()
            eventlet.spawn_n(_close_with, ws, heard, reason)
            return
        if now - last_ping >= lim["ping"]:
            entry[5] = last_ping = now
            eventlet.spawn_n(_ping, ws, lim)
        self._schedule(entry, now + next_check(now, opened_at, heard.last, last_ping, authenticated, lim))


def _ping(ws, lim):
    # A send that blocks means a full buffer: the read deadline decides.
    with eventlet.Timeout(lim["ping"], False):
        try:
            ws.send(b"", control_code=0x9)
        except OSError:
            pass


_watchdog = Watchdog()


def _close_with(ws, heard, close_data):
    with eventlet.Timeout(2, False):
        try:
            ws._send_closing_frame(ignore_send_errors=True, close_data=close_data)
        except OSError:
            pass
    # Wakes the reader (EOF) so the socket's own thread ends it cleanly.
    try:
        heard.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def allowed_origins():
    raw = config.env("CHATVAKT_ALLOWED_ORIGINS", "")
    return {item.strip().rstrip("/").lower() for item in raw.split(",") if item.strip()}


def origin_allowed(headers):
    """A browser always sends Origin; other clients may omit it (and could forge it)."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    extra = allowed_origins()
    if "*" in extra or origin in extra:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    # A browser cannot set X-Forwarded-Host on a websocket: a proxy in front did.
    hosts = {h.strip().lower() for h in (headers.get("Host", ""), headers.get("X-Forwarded-Host", "")) if h.strip()}
    default_port = {"http": ":80", "https": ":443"}[parts.scheme]
    netloc = parts.netloc
    return (
        netloc in hosts
        or (netloc + default_port) in hosts
        or any(h == netloc.removesuffix(default_port) for h in hosts)
    )


def _error_frame(exc, correlation_id=None):
    error = serialize(exc)
    error["code"] = getattr(exc, "code", "error")
    if isinstance(exc, errors.RateLimited):
        error["retry_after"] = round(exc.retry_after, 3)
    return json.dumps({"type": "result", "success": False, "error": error, "correlation_id": correlation_id})


def _correlation(frame):
    value = frame.get("correlation_id") if isinstance(frame, dict) else None
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) <= 64):
        return value
    return None


class GuardedWebSocketServer(WebSocketServer):
    wsgi_server = HardenedWebServer()

    @property
    def sharing_key(self):
        return WebSocketServer

    def handle_request(self, request):
        if not origin_allowed(request.headers):
            metrics.ERRORS.labels(service="gateway", kind="ws_origin_refused").inc()
            return json_response(
                403, {"error": {"code": "forbidden", "message": "This origin may not open a socket here."}}
            )
        return super().handle_request(request)

    def websocket_mainloop(self, initial_context_data):
        lim = limits()

        def handler(ws):
            socket_id, context_data = self.add_websocket(ws, initial_context_data)
            bucket = Bucket(lim["rate"], lim["burst"])
            refused, last_refused = 0, 0.0
            heard = ws.socket = _Heard(ws.socket)
            watched = _watchdog.add(ws, heard, context_data, lim)
            try:
                ws.send(self.serialize_event("connected", {"socket_id": socket_id}))
                while True:
                    raw = ws.wait()
                    if raw is None:
                        break
                    if not bucket.take():
                        # Counted until a second passes without a refusal: a flooder
                        # the bucket lets through now and then (the gateway slowed
                        # down, or the client sends just over the rate) is still one.
                        now = time.monotonic()
                        if now - last_refused > FLOOD_QUIET_S:
                            refused = 0
                        last_refused = now
                        refused += 1
                        if refused >= lim["flood_close"]:
                            metrics.ERRORS.labels(service="gateway", kind="ws_flood_closed").inc()
                            ws.close(close_data=(1008, "Too many frames."))
                            break
                        ws.send(
                            _error_frame(errors.RateLimited("Too many frames; slow down.", retry_after=bucket.wait()))
                        )
                        continue
                    ws.send(self.handle_websocket_request(socket_id, context_data, raw))
            except Exception as exc:  # noqa: BLE001 - eventlet's parser raises a client's error as anything
                # The client went away, or broke the protocol: theirs, not ours.
                log.info("websocket closed after %s", type(exc).__name__)
            finally:
                _watchdog.remove(watched)
                self.remove_socket(socket_id)

        app = WebSocketWSGI(handler, max_frame_length=lim["max_frame"])
        # hixie-76 predates masking and close codes: no browser needs it.
        app.support_legacy_versions = False
        return app

    def handle_websocket_request(self, socket_id, context_data, raw_req):
        lim = limits()
        if isinstance(raw_req, (bytes, bytearray)):
            return _error_frame(errors.Malformed("Binary frames are not accepted; send JSON text."))
        if len(raw_req) > lim["max_message"]:
            return _error_frame(errors.TooLarge("The frame is too large."))
        try:
            frame = json.loads(raw_req)
            check_json(frame)
        except (ValueError, RecursionError):
            return _error_frame(errors.Malformed("The frame is not valid JSON."))
        except (errors.Malformed, errors.Invalid) as exc:
            return _error_frame(exc)
        correlation_id = _correlation(frame)
        if (
            not isinstance(frame, dict)
            or not isinstance(frame.get("method"), str)
            or not isinstance(frame.get("data", {}) or {}, dict)
        ):
            return _error_frame(
                errors.Malformed('A frame is {"method": "...", "data": {...}, "correlation_id": "..."}.'),
                correlation_id,
            )
        if frame.get("correlation_id") is not None and correlation_id is None:
            return _error_frame(errors.Malformed("correlation_id must be a short string."))
        return super().handle_websocket_request(socket_id, context_data, raw_req)


class GuardedWebSocketRpc(WebSocketRpc):
    server = GuardedWebSocketServer()

    def __init__(self, expected_exceptions=(), **kwargs):
        super().__init__(expected_exceptions=expected_exceptions or CLIENT_ERRORS, **kwargs)


class HubProvider(WebSocketHubProvider):
    server = GuardedWebSocketServer()


rpc = GuardedWebSocketRpc.decorator
