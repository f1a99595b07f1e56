"""Metrics and request ids for every process, as nameko dependencies.

`Observed` times every worker (RPC, event handler, timer, HTTP) into
chatvakt_rpc_latency_seconds{service, method}, counts failures into
chatvakt_errors_total, serves /metrics on METRICS_PORT when that is set, and
keeps the request id of the call it serves so log lines carry it. The
gateway puts a request id in the nameko context of each HTTP request; nameko
passes context data along with every RPC and event, so the id follows a call
across services.
"""

import logging
import threading
import time
import uuid

from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from chatvakt import config

log = logging.getLogger(__name__)

RPC_LATENCY = Histogram("chatvakt_rpc_latency_seconds", "Time a worker took, by entrypoint", ["service", "method"])
ERRORS = Counter("chatvakt_errors_total", "Errors", ["service", "kind"])

# Read from each service's own database by a timer, so every replica reports
# the same figure (dashboards take the max over replicas).
QUEUE_WAITING = Gauge("chatvakt_queue_waiting", "Children waiting in the queue")
QUEUE_OLDEST_WAIT = Gauge("chatvakt_queue_oldest_wait_seconds", "How long the longest waiting child has waited")
QUEUE_WAIT = Histogram(
    "chatvakt_queue_wait_seconds",
    "Wait from start to a counsellor taking the chat",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
CHATS_ACTIVE = Gauge("chatvakt_chats_active", "Chats with a counsellor now")
ESCALATIONS_OPEN = Gauge("chatvakt_escalations_open", "Escalations not yet finished")
ESCALATIONS_OVERDUE = Gauge("chatvakt_escalations_overdue", "Open escalations past their deadline")
METRICS_INTERVAL_S = 5.0
# Entrypoints that probes and the launcher call over and over (logged at debug).
HEALTH_METHODS = ("ping", "healthz", "readyz", "metrics", "dead_letters")

PER_MESSAGE = "chatvakt_per_message"


def per_message(entrypoint):
    """Marks an entrypoint that runs for every relayed message (the chat
    service's post_message, the risk screen's on_message_posted): it writes no
    line per unit of work. The gateway's access line already has the
    request, its id and its time, and the latency histogram counts every
    worker; a line each cost a relayed message some 30 µs in each process
    (issue 16). A failure that is not the client's is still logged."""
    setattr(entrypoint, PER_MESSAGE, True)
    return entrypoint


def _is_per_message(worker_ctx, method):
    service = getattr(worker_ctx, "service", None)
    return getattr(getattr(service, method, None), PER_MESSAGE, False)


# With eventlet's monkey patching this is local to each green thread (worker).
_local = threading.local()
_metrics_started: list[str] = []


def current_request_id():
    return getattr(_local, "request_id", None)


def set_request_id(value):
    _local.request_id = value


class Observed(DependencyProvider):
    def setup(self):
        port = config.env("METRICS_PORT")
        if port and not _metrics_started:
            start_http_server(int(port), addr=config.env("METRICS_HOST", "0.0.0.0"))
            _metrics_started.append(port)

    def get_dependency(self, worker_ctx):
        return None

    def worker_setup(self, worker_ctx):
        request_id = worker_ctx.data.get("request_id")
        if request_id is None:
            request_id = uuid.uuid4().hex[:16]
            worker_ctx.data["request_id"] = request_id
        set_request_id(request_id)
        worker_ctx.data.setdefault("_started", time.perf_counter())

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = worker_ctx.data.pop("_started", None)
        service = self.container.service_name
        method = worker_ctx.entrypoint.method_name
        if started is not None:
            elapsed = time.perf_counter() - started
            RPC_LATENCY.labels(service=service, method=method).observe(elapsed)
            # An HTTP request has its access line (gateway/web.py), which says
            # more: a second line for it only cost the relay's hot path (issue 16).
            if not (
                method.startswith(("sweep_", "push_"))
                or isinstance(worker_ctx.entrypoint, HttpRequestHandler)
                or _is_per_message(worker_ctx, method)
            ):
                # One line per unit of work: names and timings only, never arguments.
                # Timers and health checks run while nothing happens: debug.
                routine = isinstance(worker_ctx.entrypoint, Timer) or method in HEALTH_METHODS
                log.log(
                    logging.DEBUG if routine else logging.INFO,
                    "%s.%s %s %.1fms",
                    service,
                    method,
                    "failed" if exc_info else "ok",
                    elapsed * 1000,
                )
        if exc_info is not None:
            exc_type = exc_info[0]
            from chatvakt.errors import ChatvaktError

            if not issubclass(exc_type, ChatvaktError):
                # A domain error (404, 409, 422 …) is the client's; anything else is ours.
                ERRORS.labels(service=service, kind=exc_type.__name__).inc()
                log.error("%s.%s failed with %s", service, worker_ctx.entrypoint.method_name, exc_type.__name__)

    def worker_teardown(self, worker_ctx):
        set_request_id(None)
