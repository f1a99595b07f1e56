"""nameko's web server, hardened for slow and idle clients.

nameko's WebServer reads with no deadline: a client that sends half a header,
or a Content-Length and no body, holds its connection (and, once nameko runs
the handler, one of max_workers worker slots) for good. Ours:

- gives the request line and headers CHATVAKT_HEADER_TIMEOUT_S from the moment
  the connection starts waiting for them (a new connection, or a keep-alive
  one between requests), for the whole header, not per recv; then closes;
- reads the whole body in the connection's own green thread, within
  CHATVAKT_BODY_TIMEOUT_S (408) and CHATVAKT_MAX_BODY bytes (413), before any
  handler runs, so a slow body never holds a worker slot; a chunked body is
  read like any other (werkzeug would see no length and read nothing);
- caps the open connections of one peer address (CHATVAKT_MAX_CONN_PER_ADDR);
  a trusted proxy (CHATVAKT_TRUSTED_PROXIES) carries many people's
  connections and is exempt;
- never lets a client's error escape a connection's thread: nameko treats an
  exception in a managed thread as fatal to the whole gateway.

Connections are green threads without a pool; the only fixed pool is
nameko's worker slots, which a request takes only once it is complete.

The server keeps nameko's sharing key, so every `http` entrypoint and the
websocket hub of the process bind to this one server, whichever binds first.
"""

import io
import json
import logging
import socket
from collections import defaultdict
from functools import cache, partial
from types import MappingProxyType

import eventlet
from eventlet.wsgi import Input
from greenlet import GreenletExit
from nameko.web.server import HttpOnlyProtocol, WebServer

from chatvakt import config

from . import clientaddr, metrics

log = logging.getLogger(__name__)


@cache
def limits():
    """Every limit of the edge, with its default, in one place.

    Read once per process: the configuration is fixed at start, and a request
    asks for these four or five times (a test that changes the environment
    calls `limits.cache_clear()`)."""
    return MappingProxyType(
        {
            "header_timeout": config.env_float("CHATVAKT_HEADER_TIMEOUT_S", 10.0),
            "body_timeout": config.env_float("CHATVAKT_BODY_TIMEOUT_S", 10.0),
            "max_body": config.env_int("CHATVAKT_MAX_BODY", 64 * 1024),
            # A school behind one NAT, and our own test suite from 127.0.0.1.
            "max_conn_per_addr": config.env_int("CHATVAKT_MAX_CONN_PER_ADDR", 200),
            "max_json_depth": config.env_int("CHATVAKT_MAX_JSON_DEPTH", 64),
            # nameko's 50 drops connections while the accept loop is busy.
            "backlog": config.env_int("CHATVAKT_LISTEN_BACKLOG", 1024),
        }
    )


def raw_response(status, reason, code, message, extra=()):
    """A whole HTTP/1.1 answer in API.md's error shape, for the moments before
    any WSGI application runs; it always closes the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        "Cache-Control: no-store",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


REFUSED = raw_response(
    429, "Too Many Requests", "rate_limited", "Too many open connections from your address.", [("Retry-After", "10")]
)


class ConnectionCounter:
    """Open connections per peer address, in memory only."""

    def __init__(self):
        self._open = defaultdict(int)

    def acquire(self, peer, cap):
        if clientaddr.is_trusted(peer):
            return True
        if self._open[peer] >= cap:
            return False
        self._open[peer] += 1
        return True

    def release(self, peer):
        if peer not in self._open:
            return
        self._open[peer] -= 1
        if self._open[peer] <= 0:
            del self._open[peer]

    def open(self, peer):
        return self._open.get(peer, 0)


class BodyRefused(Exception):
    def __init__(self, answer):
        super().__init__(answer[:40])
        self.answer = answer


def read_body(request_input, lim):
    """The whole body of a request, or BodyRefused with the answer to give."""
    chunked = request_input.chunked_input
    length = request_input.content_length or 0
    if not chunked and length > lim["max_body"]:
        raise BodyRefused(raw_response(413, "Payload Too Large", "too_large", "The request body is too large."))
    timer = eventlet.Timeout(lim["body_timeout"])
    try:
        body = request_input.read(lim["max_body"] + 1 if chunked else length)
    except eventlet.Timeout as fired:
        if fired is not timer:
            raise
        metrics.ERRORS.labels(service="gateway", kind="body_timeout").inc()
        raise BodyRefused(
            raw_response(408, "Request Timeout", "timeout", "The request body did not arrive in time.")
        ) from None
    except (ValueError, OSError):
        # eventlet's ChunkReadError is a ValueError: a garbled chunk size.
        raise BodyRefused(raw_response(400, "Bad Request", "malformed", "The chunked body is malformed.")) from None
    finally:
        timer.cancel()
    if len(body) > lim["max_body"]:
        raise BodyRefused(raw_response(413, "Payload Too Large", "too_large", "The request body is too large."))
    if not chunked and len(body) < length:
        raise BodyRefused(b"")  # the client went away mid-body: nobody to answer
    return body


class HardenedProtocol(HttpOnlyProtocol):
    _deadline = None
    # Buffers live as long as the connection, and a websocket holds its
    # connection for hours: eventlet's 16 KiB write and 8 KiB read buffer made
    # half of a socket's memory (issue 16). Requests and answers here are small.
    rbufsize = 2 << 10
    wbufsize = 2 << 10

    _served = False

    def handle_one_request(self):
        # From the first wait for a request line (keep-alive idle included)
        # until the last header: a drip-fed header cannot reset it.
        self._deadline = eventlet.Timeout(limits()["header_timeout"])
        try:
            super().handle_one_request()
        except eventlet.Timeout as fired:
            if fired is not self._deadline:
                raise
            # A browser's idle keep-alive connection ends here too: only a
            # connection that never got a whole request counts as slow.
            if not self._served:
                metrics.ERRORS.labels(service="gateway", kind="header_timeout").inc()
            self.close_connection = 1
        finally:
            self._deadline.cancel()

    def parse_request(self):
        ok = super().parse_request()
        self._deadline.cancel()
        return ok

    def handle_one_response(self):
        self._served = True
        request_input = self.environ["eventlet.input"]
        if request_input.chunked_input or request_input.content_length:
            try:
                body = read_body(request_input, limits())
            except BodyRefused as refused:
                self.close_connection = 1
                if refused.answer:
                    try:
                        self.wfile.write(refused.answer)
                        self.wfile.flush()
                    except OSError:
                        pass
                return
            # The handler sees a plain, complete body of known length.
            replacement = Input(io.BytesIO(body), len(body), self.connection)
            self.environ["wsgi.input"] = self.environ["eventlet.input"] = replacement
            self.environ["CONTENT_LENGTH"] = str(len(body))
            self.environ.pop("HTTP_TRANSFER_ENCODING", None)
        super().handle_one_response()


class HardenedWebServer(WebServer):
    def __init__(self):
        super().__init__()
        self.connections = ConnectionCounter()

    @property
    def sharing_key(self):
        return WebServer

    def start(self):
        if not self._starting:
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, backlog=limits()["backlog"])
            self._sock.settimeout(None)
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def get_wsgi_server(self, sock, wsgi_app, protocol=HardenedProtocol, debug=False):
        return super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)

    def run(self):
        while self._is_accepting:
            try:
                sock, addr = self._sock.accept()
            except OSError:
                # Out of file descriptors, or a connection reset before we took
                # it: the accept loop must outlive both.
                metrics.ERRORS.labels(service="gateway", kind="accept_failed").inc()
                eventlet.sleep(0.05)
                continue
            peer = addr[0] if isinstance(addr, tuple) else str(addr)
            if not self.connections.acquire(peer, limits()["max_conn_per_addr"]):
                metrics.ERRORS.labels(service="gateway", kind="conn_per_addr_refused").inc()
                _refuse(sock)
                continue
            sock.settimeout(self._serv.socket_timeout)
            self.container.spawn_managed_thread(partial(self.process_request, sock, addr, peer))

    def process_request(self, sock, address, peer=None):
        try:
            super().process_request(sock, address)
        except GreenletExit:
            raise
        except Exception as exc:  # noqa: BLE001 - one connection's trouble is never the gateway's
            # The type only: the message may carry what the client sent.
            log.warning("connection dropped after %s", type(exc).__name__)
        finally:
            _close(sock)
            if peer is not None:
                self.connections.release(peer)


def _refuse(sock):
    try:
        sock.settimeout(0)
        sock.send(REFUSED)
    except OSError:
        pass
    _close(sock)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
