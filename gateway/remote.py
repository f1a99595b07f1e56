"""RPC from the gateway with a deadline.

nameko's RpcProxy waits for ever inside a service; a helpline must answer,
so every call has a deadline and turns into 503 when a service does not answer
in time (or the broker is away).
"""

import time

import eventlet
from nameko.exceptions import UnknownService

from chatvakt import config, errors

from . import metrics

# Errors raised by the called service itself: these pass through unchanged.
DOMAIN_ERRORS = (errors.ChatvaktError,)


class Remote:
    def __init__(self, name, proxy, timeout=None):
        self._name = name
        self._proxy = proxy
        self._timeout = timeout or config.rpc_timeout()

    def __getattr__(self, method):
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                with eventlet.Timeout(self._timeout):
                    return getattr(self._proxy, method)(*args, **kwargs)
            except eventlet.Timeout:
                metrics.ERRORS.labels(service=self._name, kind="rpc_timeout").inc()
                raise errors.Unavailable(f"The {self._name} service did not answer in time.") from None
            except DOMAIN_ERRORS:
                raise
            except (OSError, UnknownService) as exc:  # OSError: ConnectionError and IOError too
                # UnknownService: no queue took the request (a publisher with confirms only).
                metrics.ERRORS.labels(service=self._name, kind=type(exc).__name__).inc()
                raise errors.Unavailable(f"The {self._name} service cannot be reached.") from None
            finally:
                metrics.RPC_LATENCY.labels(service=self._name, method=method).observe(time.perf_counter() - started)

        return call
