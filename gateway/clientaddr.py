"""Who is on the other end: the client's address, as far as we may believe it.

The TCP peer is the client unless the peer is a proxy we trust
(CHATVAKT_TRUSTED_PROXIES: comma-separated addresses or CIDR networks). Only
then is X-Forwarded-For read, from the right, skipping our own proxies: the
left-most entries are whatever the client wrote and prove nothing.

An address is used for limits only, held in memory or as a salted hash; it is
never logged or stored in clear.
"""

import functools
import ipaddress

from chatvakt import config


@functools.lru_cache(maxsize=8)
def _networks(raw):
    out = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue  # a typo in the setting trusts nothing, never everything
    return tuple(out)


def networks(raw):
    """Addresses and CIDR networks, comma-separated; unparsable items are skipped."""
    return _networks(raw or "")


def trusted_proxies():
    return _networks(config.env("CHATVAKT_TRUSTED_PROXIES", ""))


def _parse(address):
    try:
        return ipaddress.ip_address((address or "").strip().strip("[]"))
    except ValueError:
        return None


def is_trusted(address):
    parsed = _parse(address)
    return parsed is not None and any(parsed in net for net in trusted_proxies())


def client_address(peer, forwarded_for=None):
    """The address limits apply to: the peer, or the first untrusted hop in
    X-Forwarded-For when the peer is a trusted proxy."""
    if not is_trusted(peer) or not forwarded_for:
        return peer or "unknown"
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _parse(hop) is None:
            return peer  # a garbled header: fall back to the proxy itself
        if not is_trusted(hop):
            return str(_parse(hop))
    return str(_parse(hops[0])) if hops else peer


def from_environ(environ):
    return client_address(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"))
