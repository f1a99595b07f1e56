"""HTTP routes of a staff session: log in, log out, change the password, who am I.

A child has no login: its token comes with the chat it opens (routes_chat.py).
Wrong passwords are limited across replicas (limits.py); a session ended here
ends on every replica through the revocation log (sessions.py).
"""

from chatvakt import errors

from . import accounts, clientaddr, limits, metrics, schemas
from .base import STAFF, _token_cache
from .routes_queue import wait_warn_s
from .web import api, bearer, read_json


class AuthRoutes:
    @api("POST", "/api/v1/auth/login")
    def login(self, request):
        body = read_json(request, schemas.Login)
        account_id = self._check_password(request, body["username"], body["password"])
        return self._tx(accounts.start_session, account_id)

    def _check_password(self, request, username, password):
        """The account id when the password is right; 429 while this (account,
        address) or this address must wait; 401 otherwise (also for an unknown
        or disabled account: the same words and, through the dummy hash, the
        same time)."""
        address = clientaddr.from_environ(request.environ)
        keys = self._tx(limits.login_keys, username, address)
        wait = self._read(limits.login_wait, keys)
        if wait > 0:
            metrics.ERRORS.labels(service="gateway", kind="login_throttled").inc()
            raise errors.RateLimited(
                "Too many wrong passwords; wait before trying again.", retry_after=limits.retry_after(wait)
            )
        account_id, password_hash, disabled = self._read(accounts.login_candidate, username)
        # Off the event loop: a hash is tens of milliseconds of CPU.
        if not accounts.offload(accounts.password_matches, password_hash, password) or disabled:
            self._tx(limits.login_failed, keys)
            raise errors.Unauthorized("Wrong username or password.")
        self._tx(limits.login_succeeded, keys)
        return account_id

    @api("POST", "/api/v1/auth/logout")
    def logout(self, request):
        self._actor(request, STAFF)
        self._tx(accounts.revoke, bearer(request))
        _token_cache.pop(bearer(request), None)
        return {"ok": True}

    @api("POST", "/api/v1/auth/password")
    def change_password(self, request):
        """The logged-in person's new password: every session of theirs ends,
        on every replica; the answer carries a fresh token for this one."""
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.ChangePassword)
        username = self._read(accounts.username_of, actor["id"])
        if username is None:
            raise errors.Unauthorized("A valid token is required.")
        try:
            self._check_password(request, username, body["current"])
        except errors.Unauthorized:
            raise errors.Invalid("The current password is wrong.", {"current": ["Wrong password."]}) from None
        new_hash = accounts.offload(accounts.hash_password, body["new"])
        self._tx(accounts.set_password, actor["id"], new_hash)
        _token_cache.pop(bearer(request), None)
        return self._tx(accounts.start_session, actor["id"])

    @api("GET", "/api/v1/me")
    def me(self, request):
        actor = self._actor(request, STAFF)
        return {"id": actor["id"], "name": actor["name"], "role": actor["role"], "wait_warn_s": wait_warn_s()}
