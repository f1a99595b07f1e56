"""The gateway's Prometheus metrics (names shared with deploy/grafana)."""

from prometheus_client import Counter, Gauge, Histogram

# Shared with every service process (one registry per process).
from chatvakt.observability import ERRORS, QUEUE_WAITING, RPC_LATENCY  # noqa: F401

HTTP_REQUESTS = Counter("chatvakt_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("chatvakt_http_request_seconds", "HTTP request latency", ["route"])
ADMISSION_WAITS = Counter(
    "chatvakt_admission_waits_total",
    "API requests that found every slot in use and waited for one, by how the wait ended",
    ["outcome"],  # admitted, timed_out (then answered 503 overloaded)
)
WEBSOCKETS = Gauge("chatvakt_websockets_connected", "Open websockets on this gateway process")
RELAY_LATENCY = Histogram(
    "chatvakt_relay_latency_seconds",
    "Time from a message being stored to its push to sockets",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
