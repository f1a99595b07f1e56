"""Operations (health, readiness, metrics, the OpenAPI document) and the two pages.

/metrics tells an outsider how busy the helpline is and which routes fail.
API.md names it on the gateway, so it stays here for the addresses in
CHATVAKT_METRICS_ALLOW (this machine by default) and is a 404, like any
unknown path, for everyone else; Prometheus in a cluster scrapes METRICS_PORT
(chatvakt/observability.py), which no public listener exposes."""

import ipaddress

import eventlet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from chatvakt import config, errors
from chatvakt import events as ev

from . import clientaddr
from .base import CONTENT_TYPES, STATIC
from .openapi import spec
from .remote import Remote
from .web import api


class OpsRoutes:
    @api("GET", "/healthz")
    def healthz(self, request):
        return {"ok": True}

    @api("GET", "/readyz")
    def readyz(self, request):
        proxies = {
            ev.QUEUE: self.queue_proxy,
            ev.CHAT: self.chat_proxy,
            ev.CODING: self.coding_proxy,
            ev.ESCALATION: self.escalation_proxy,
        }
        results = {}

        def ping(name):
            try:
                Remote(name, proxies[name], timeout=2.0).ping()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
                results[name] = "unavailable" if isinstance(exc, errors.Unavailable) else type(exc).__name__

        pool = eventlet.GreenPool()
        for name in proxies:
            pool.spawn_n(ping, name)
        pool.waitall()
        ready = all(value == "ok" for value in results.values())
        return (200 if ready else 503), {"ready": ready, "services": results}

    @api("GET", "/metrics")
    def metrics(self, request):
        if not metrics_allowed(clientaddr.from_environ(request.environ)):
            raise errors.NotFound("No such endpoint.")
        return Response(generate_latest(), status=200, content_type=CONTENT_TYPE_LATEST)

    @api("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return spec()

    def _file(self, relative):
        path = (STATIC / relative).resolve()
        if STATIC not in path.parents or not path.is_file():
            raise errors.NotFound("No such file.")
        headers = {
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
            "img-src 'self' data:; frame-ancestors 'none'",
        }
        return Response(
            path.read_bytes(),
            status=200,
            headers=headers,
            content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
        )

    @api("GET", "/")
    def child_page(self, request):
        return self._file("child/index.html")

    @api("GET", "/console/")
    def console_page(self, request):
        return self._file("console/index.html")

    @api("GET", "/static/<path:path>")
    def static(self, request, path):
        return self._file(path)

    @api("GET,POST,PUT,PATCH,DELETE", "/<path:unknown>")
    def unknown(self, request, unknown):
        # Werkzeug would answer an HTML page; clients expect API.md's error shape.
        raise errors.NotFound("No such endpoint.")


def metrics_allowed(address):
    """The client (after trusted proxies) is in CHATVAKT_METRICS_ALLOW."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        parsed in network
        for network in clientaddr.networks(config.env("CHATVAKT_METRICS_ALLOW", "127.0.0.0/8,::1/128"))
    )
