"""Sessions end on every replica: the revocation log, polled by each process.

Logout, a password change and `chatvakt accounts disable` delete the tokens in
the gateway's database and append a row to `revocations`. Each gateway process
reads the rows after the last it saw every CHATVAKT_REVOCATION_POLL_S (0.5 s),
drops matching entries from its token cache and closes the sockets those
tokens or accounts authenticated, so nothing revoked lives on in a replica
for more than about a second.
"""

import logging
import time

from nameko.timer import timer

from . import accounts, limits
from .base import _token_cache

log = logging.getLogger(__name__)

_state = {"last_id": None, "pruned": 0.0}
CLOSE_REASON = (1008, "Your session has ended.")


def _cache_drop(kind, ref):
    for token, (_expiry, actor) in list(_token_cache.items()):
        if (kind == "account" and actor.get("id") == ref and actor["role"] != "child") or (
            kind == "token" and accounts.digest(token) == ref
        ):
            _token_cache.pop(token, None)


def _matches(context_data, kind, ref, live):
    actor = context_data.get("actor")
    if actor is None:
        return False
    if kind == "account":
        return actor["role"] != "child" and actor.get("id") == ref and context_data.get("token_digest") not in live
    return context_data.get("token_digest") == ref


def close_sockets(hub, kind, ref, live=frozenset()):
    """Close the sockets that a revoked token or account authenticated.

    An account's revocation spares a socket whose token is still `live`: one
    issued after the revocation (a new login after a password change). The
    log is read up to half a second late, and closing by the account alone
    closed the socket a counsellor had just opened with their new token."""
    closed = 0
    for socket_id, connection in list(hub.connections.items()):
        if not _matches(connection.context_data, kind, ref, live):
            continue
        # Stop pushes at once, then close; nameko's loop cleans up after the close.
        connection.context_data.pop("actor", None)
        for channel in list(connection.subscriptions):
            hub.subscriptions.get(channel, set()).discard(socket_id)
        connection.subscriptions.clear()
        info = hub._server.sockets.get(socket_id)  # nameko keeps the ws there
        if info is not None:
            try:
                info.socket.close(close_data=CLOSE_REASON)
            except Exception:  # noqa: BLE001 - already gone is as good as closed
                pass
        closed += 1
    return closed


class Sessions:
    @timer(interval=limits.revocation_poll_s())
    def apply_revocations(self):
        try:
            if _state["last_id"] is None:
                # A process that just started caches nothing yet: start from now.
                _state["last_id"] = self._read(limits.last_revocation)
                return
            rows = self._read(limits.revocations_after, _state["last_id"])
            for row_id, kind, ref in rows:
                _cache_drop(kind, ref)
                live = self._read(accounts.live_digests, ref) if kind == "account" else frozenset()
                close_sockets(self.hub, kind, ref, live)
                _state["last_id"] = row_id
            if time.monotonic() - _state["pruned"] > 60:
                _state["pruned"] = time.monotonic()
                self._tx(limits.prune)
                self._tx(accounts.prune_tokens)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            log.warning("could not apply the revocation log (%s); trying again", type(exc).__name__)
