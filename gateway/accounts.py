"""Counsellor accounts and bearer tokens (the gateway's own domain).

Passwords are hashed with Argon2id (argon2-cffi); tokens are 256 random bits,
handed out once and stored only as SHA-256 hashes.
"""
import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update

from chatvakt.db import parse_iso, utcnow
from chatvakt.errors import Invalid, Unauthorized

from .models import accounts, tokens

ROLES = ("counsellor", "supervisor", "admin")
COUNSELLOR_TOKEN_TTL = dt.timedelta(hours=14)  # a night's shift and then some
CHILD_TOKEN_TTL = dt.timedelta(days=2)

_hasher = PasswordHasher()
# Verifying against this when the username is unknown keeps the answer time the same.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


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
        session.execute(accounts.insert().values(
            id=account_id, username=username, name=name or username, role=role,
            password_hash=password_hash, created_at=now, updated_at=now))
        return account_id
    session.execute(update(accounts).where(accounts.c.id == row.id).values(
        name=name or row.name, role=role, password_hash=password_hash, updated_at=now))
    return row.id


def account_view(row):
    return {"id": row.id, "name": row.name, "role": row.role}


def login(session, username, password, now=None):
    now = now or utcnow()
    row = session.execute(select(accounts).where(accounts.c.username == username)).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise Unauthorized("Wrong username or password.")
    if row is None:
        raise Unauthorized("Wrong username or password.")
    token = new_token()
    session.execute(tokens.insert().values(
        token_hash=_digest(token), kind="counsellor", account_id=row.id, chat_id=None,
        created_at=now, expires_at=now + COUNSELLOR_TOKEN_TTL))
    return {"token": token, "counsellor": account_view(row)}


def issue_child_token(session, chat_id, now=None):
    now = now or utcnow()
    token = new_token()
    session.execute(tokens.insert().values(
        token_hash=_digest(token), kind="child", account_id=None, chat_id=chat_id,
        created_at=now, expires_at=now + CHILD_TOKEN_TTL))
    return token


def resolve(session, token, now=None):
    """The actor a bearer token stands for, or Unauthorized."""
    now = now or utcnow()
    if not token or len(token) > 200:
        raise Unauthorized("A valid token is required.")
    row = session.execute(select(tokens).where(tokens.c.token_hash == _digest(token))).first()
    if row is None or parse_iso(row.expires_at) < now:
        raise Unauthorized("A valid token is required.")
    if row.kind == "child":
        return {"role": "child", "chat_id": row.chat_id, "id": None}
    account = session.execute(select(accounts).where(accounts.c.id == row.account_id)).first()
    if account is None:
        raise Unauthorized("A valid token is required.")
    return {"role": account.role, "id": account.id, "name": account.name}


def revoke(session, token):
    session.execute(delete(tokens).where(tokens.c.token_hash == _digest(token)))


def find(session, account_id):
    row = session.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return account_view(row) if row else None


def list_staff(session):
    rows = session.execute(select(accounts).order_by(accounts.c.name)).all()
    return [account_view(row) for row in rows]
