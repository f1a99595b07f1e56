"""Clients that come from another address on this machine.

All of 127.0.0.0/8 is loopback: a socket bound to 127.0.0.N before it
connects is, to the gateway, a different person. Every attacker in this
suite is one of these, and every flood is bounded in count and time and
targets loopback only.
"""

import socket
import time

import requests
from requests.adapters import HTTPAdapter

REAL_CHILD = "127.0.0.1"


class _SourceAdapter(HTTPAdapter):
    def __init__(self, address, **kwargs):
        self._source = (address, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def session_from(address, pool=10):
    """A requests session whose connections leave from `address` (127.x.y.z)."""
    assert address.startswith("127."), "floods only ever target loopback"
    session = requests.Session()
    adapter = _SourceAdapter(address, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    return session


def flood_of_chats(session, url, body_of, most, seconds):
    """Chats started through `session` as fast as it goes, at most `most` of
    them and for at most `seconds`: (the JSON of those started, {status: count})."""
    started, statuses = [], {}
    deadline = time.monotonic() + seconds
    for i in range(most):
        if time.monotonic() > deadline:
            break
        response = session.post(url + "/api/v1/chats", json=body_of(i), timeout=10)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 201:
            started.append(response.json())
    return started, statuses


def raw_socket_from(address, port, timeout=10):
    """A plain TCP connection to the gateway, from `address`."""
    assert address.startswith("127."), "floods only ever target loopback"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", port))
    return sock
