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
  result without running a worker, and a socket that keeps flooding is
  closed (1008). Every socket is served by its own green thread, one frame
  at a time, so one client's garbage never touches another's socket.

`rpc` and `HubProvider` are nameko's, bound to this server. The server shares
nameko's sharing key, so a stock `nameko.web.websocket.rpc` in the same
service lands on this one server as well (dependencies bind first).
"""
import json
import logging
from urllib.parse import urlsplit

from eventlet.websocket import WebSocketWSGI
from nameko.exceptions import serialize
from nameko.web.websocket import WebSocketHubProvider, WebSocketRpc, WebSocketServer

from chatvakt import config, errors

from . import metrics
from .throttle import Bucket
from .web import json_response

log = logging.getLogger(__name__)


def limits():
    return {
        "max_frame": config.env_int("CHATVAKT_WS_MAX_FRAME", 64 * 1024),
        "max_message": config.env_int("CHATVAKT_WS_MAX_MESSAGE", 16 * 1024),
        "rate": config.env_float("CHATVAKT_WS_RATE", 20.0),
        "burst": config.env_float("CHATVAKT_WS_BURST", 40.0),
        # Refused frames in a row before we give up on the socket.
        "flood_close": config.env_int("CHATVAKT_WS_FLOOD_CLOSE", 200),
    }


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
    hosts = {h.strip().lower() for h in (headers.get("Host", ""),
                                         headers.get("X-Forwarded-Host", "")) if h.strip()}
    default_port = {"http": ":80", "https": ":443"}[parts.scheme]
    netloc = parts.netloc
    return netloc in hosts or (netloc + default_port) in hosts or \
        any(h == netloc.removesuffix(default_port) for h in hosts)


def _error_frame(exc, correlation_id=None):
    error = serialize(exc)
    error["code"] = getattr(exc, "code", "error")
    if isinstance(exc, errors.RateLimited):
        error["retry_after"] = round(exc.retry_after, 3)
    return json.dumps({"type": "result", "success": False, "error": error,
                       "correlation_id": correlation_id})


def _correlation(frame):
    value = frame.get("correlation_id") if isinstance(frame, dict) else None
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)
                         and len(str(value)) <= 64):
        return value
    return None


class GuardedWebSocketServer(WebSocketServer):
    @property
    def sharing_key(self):
        return WebSocketServer

    def handle_request(self, request):
        if not origin_allowed(request.headers):
            metrics.ERRORS.labels(service="gateway", kind="ws_origin_refused").inc()
            return json_response(403, {"error": {
                "code": "forbidden", "message": "This origin may not open a socket here."}})
        return super().handle_request(request)

    def websocket_mainloop(self, initial_context_data):
        lim = limits()

        def handler(ws):
            socket_id, context_data = self.add_websocket(ws, initial_context_data)
            bucket = Bucket(lim["rate"], lim["burst"])
            refused = 0
            try:
                ws.send(self.serialize_event("connected", {"socket_id": socket_id}))
                while True:
                    raw = ws.wait()
                    if raw is None:
                        break
                    if not bucket.take():
                        refused += 1
                        if refused >= lim["flood_close"]:
                            metrics.ERRORS.labels(service="gateway", kind="ws_flood_closed").inc()
                            ws.close(close_data=(1008, "Too many frames."))
                            break
                        ws.send(_error_frame(errors.RateLimited("Too many frames; slow down.",
                                                                retry_after=bucket.wait())))
                        continue
                    refused = 0
                    ws.send(self.handle_websocket_request(socket_id, context_data, raw))
            finally:
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
        except ValueError:
            return _error_frame(errors.Malformed("The frame is not valid JSON."))
        correlation_id = _correlation(frame)
        if not isinstance(frame, dict) or not isinstance(frame.get("method"), str) \
                or not isinstance(frame.get("data", {}) or {}, dict):
            return _error_frame(errors.Malformed(
                'A frame is {"method": "...", "data": {...}, "correlation_id": "..."}.'),
                correlation_id)
        if frame.get("correlation_id") is not None and correlation_id is None:
            return _error_frame(errors.Malformed("correlation_id must be a short string."))
        return super().handle_websocket_request(socket_id, context_data, raw_req)


class GuardedWebSocketRpc(WebSocketRpc):
    server = GuardedWebSocketServer()


class HubProvider(WebSocketHubProvider):
    server = GuardedWebSocketServer()


rpc = GuardedWebSocketRpc.decorator
