"""Counsellor accounts and bearer tokens (the gateway's own domain).

Passwords are hashed with Argon2id (argon2-cffi); tokens are 256 random bits,
handed out once and stored only as SHA-256 hashes.

Hashing takes tens of milliseconds of CPU: on the gateway it runs in real
threads (`offload`), a few at a time, never on the event loop that serves
children's messages. A password change, `disable` and logout write a row to
`revocations`, which every gateway process polls to drop its cached tokens
and close that person's sockets.
"""

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update

from chatvakt.clock import parse_iso, utcnow
from chatvakt.errors import Conflict, Invalid, Unauthorized
from chatvakt.vocabulary import ROLES

from . import limits
from .models import accounts, tokens

COUNSELLOR_TOKEN_TTL = dt.timedelta(hours=14)  # a night's shift and then some
CHILD_TOKEN_TTL = dt.timedelta(days=2)
# A child's token once its chat has ended (end_chat_tokens), and what it is told.
ENDED = "ended"
CHAT_ENDED = "This chat has ended."

_hasher = PasswordHasher()
_dummy: list[str] = []


def _dummy_hash():
    """Verifying against this when the username is unknown keeps the answer
    time the same. Made on first use, not at import: a hash is ~160 ms of CPU
    that the launcher and every gateway process paid at start."""
    if not _dummy:
        _dummy.append(_hasher.hash(secrets.token_hex(8)))
    return _dummy[0]


def _digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token():
    return secrets.token_urlsafe(32)


def add_account(session, username, name, role, password, now=None):
    """Create or update an account; returns its id."""
    now = now or utcnow()
    if role not in ROLES:
        raise Invalid("Unknown role.", {"role": [f"One of {', '.join(ROLES)}."]})
    if not username or not password:
        raise Invalid("Username and password are required.")
    password_hash = _hasher.hash(password)
    row = session.execute(select(accounts).where(accounts.c.username == username)).first()
    if row is None:
        account_id = secrets.token_hex(8)
        session.execute(
            accounts.insert().values(
                id=account_id,
                username=username,
                name=name or username,
                role=role,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
        )
        return account_id
    session.execute(
        update(accounts)
        .where(accounts.c.id == row.id)
        .values(name=name or row.name, role=role, password_hash=password_hash, updated_at=now)
    )
    # `accounts add` on an existing user is a password change: old sessions end.
    end_sessions(session, row.id)
    return row.id


def account_view(row):
    return {"id": row.id, "name": row.name, "role": row.role}


_hash_slots = []


def offload(fn, *args):
    """Run a CPU-bound hash in a real thread, at most CHATVAKT_HASH_CONCURRENCY
    at once per process, so the event loop keeps serving everyone else."""
    from eventlet import tpool
    from eventlet.semaphore import Semaphore

    if not _hash_slots:
        _hash_slots.append(Semaphore(max(1, limits.hash_concurrency())))
    with _hash_slots[0]:
        return tpool.execute(fn, *args)


def password_matches(password_hash, password):
    """Argon2 verify; an unknown account is checked against a dummy hash so it
    costs the same time as a known one. Blocking: call through `offload`."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_password(password):
    return _hasher.hash(password)


def login_candidate(session, username):
    """(account id, password hash, disabled) for a username, or (None, None, False)."""
    row = session.execute(select(accounts).where(accounts.c.username == username)).first()
    if row is None:
        return None, None, False
    return row.id, row.password_hash, row.disabled_at is not None


def start_session(session, account_id, now=None):
    """A new counsellor token for an account that just proved its password."""
    now = now or utcnow()
    row = session.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if row is None or row.disabled_at is not None:
        raise Unauthorized("Wrong username or password.")
    token = new_token()
    session.execute(
        tokens.insert().values(
            token_hash=_digest(token),
            kind="counsellor",
            account_id=row.id,
            chat_id=None,
            created_at=now,
            expires_at=now + COUNSELLOR_TOKEN_TTL,
        )
    )
    return {"token": token, "counsellor": account_view(row)}


def login(session, username, password, now=None):
    """Blocking login for tools and tests (the gateway's route offloads the hash)."""
    account_id, password_hash, disabled = login_candidate(session, username)
    if not password_matches(password_hash, password) or disabled:
        raise Unauthorized("Wrong username or password.")
    return start_session(session, account_id, now)


def end_sessions(session, account_id):
    """Every token of this person ends, here and (through the log) in every
    gateway process's cache and sockets."""
    session.execute(delete(tokens).where(tokens.c.account_id == account_id))
    limits.revoke(session, "account", account_id)


def set_password(session, account_id, password_hash, now=None):
    session.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(password_hash=password_hash, updated_at=now or utcnow())
    )
    end_sessions(session, account_id)


def set_disabled(session, username, disabled, now=None):
    """Disable (or enable) an account by username; returns its id or None."""
    now = now or utcnow()
    row = session.execute(select(accounts).where(accounts.c.username == username)).first()
    if row is None:
        return None
    session.execute(
        update(accounts).where(accounts.c.id == row.id).values(disabled_at=now if disabled else None, updated_at=now)
    )
    if disabled:
        end_sessions(session, row.id)
    return row.id


def issue_child_token(session, chat_id, now=None):
    now = now or utcnow()
    token = new_token()
    session.execute(
        tokens.insert().values(
            token_hash=_digest(token),
            kind="child",
            account_id=None,
            chat_id=chat_id,
            created_at=now,
            expires_at=now + CHILD_TOKEN_TTL,
        )
    )
    return token


def resolve(session, token, now=None):
    """The actor a bearer token stands for, or Unauthorized."""
    now = now or utcnow()
    if not token or len(token) > 200:
        raise Unauthorized("A valid token is required.")
    row = session.execute(select(tokens).where(tokens.c.token_hash == _digest(token))).first()
    if row is None or parse_iso(row.expires_at) < now:
        raise Unauthorized("A valid token is required.")
    if row.kind == ENDED:
        raise Conflict(CHAT_ENDED)
    if row.kind == "child":
        return {"role": "child", "chat_id": row.chat_id, "id": None}
    account = session.execute(select(accounts).where(accounts.c.id == row.account_id)).first()
    if account is None or account.disabled_at is not None:
        raise Unauthorized("A valid token is required.")
    return {"role": account.role, "id": account.id, "name": account.name}


def revoke(session, token):
    """Logout: this token ends in every gateway process."""
    session.execute(delete(tokens).where(tokens.c.token_hash == _digest(token)))
    limits.revoke(session, "token", _digest(token))


def end_chat_tokens(session, chat_id):
    """The chat has ended: its child's tokens stop working. Idempotent, so
    every replica that sees chat_ended may run it.

    A token is kept, until it would have expired, as one of an ended chat:
    it opens nothing (no transcript, no socket), and what it asks is answered
    409 "This chat has ended.", as API.md promises a message sent after the
    end, where a deleted token could only be 401 (no or bad token)."""
    session.execute(update(tokens).where(tokens.c.kind == "child", tokens.c.chat_id == chat_id).values(kind=ENDED))


def prune_tokens(session, now=None):
    """Forget tokens past their expiry (an ended chat's included)."""
    session.execute(delete(tokens).where(tokens.c.expires_at < (now or utcnow())))


def digest(token):
    return _digest(token)


def live_digests(session, account_id):
    """The digests of this person's tokens that are still valid: the ones
    issued after their sessions last ended (a new login after a password
    change, on this replica or another)."""
    return frozenset(session.execute(select(tokens.c.token_hash).where(tokens.c.account_id == account_id)).scalars())


def find(session, account_id):
    row = session.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return account_view(row) if row else None


def username_of(session, account_id):
    row = session.execute(select(accounts.c.username).where(accounts.c.id == account_id)).first()
    return row.username if row else None


def list_staff(session):
    rows = session.execute(select(accounts).order_by(accounts.c.name)).all()
    return [account_view(row) for row in rows]
