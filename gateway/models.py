"""The gateway's own tables: accounts, bearer tokens, and (issue 12) shared limits."""

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("name", String(120), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Only a hash of each token is stored: a copy of the database opens nothing.
tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # counsellor | child
    Column("account_id", String(40), index=True),
    Column("chat_id", String(40), index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# -- issue 12: limits and revocations shared by every gateway replica --

# When set, the account cannot log in and its tokens are gone (`chatvakt
# accounts disable`). Declared on `accounts` above through append_column so the
# table keeps one definition.
accounts.append_column(Column("disabled_at", DateTime(timezone=True), nullable=True))

# The day's random salt for hashing client addresses. Every replica reads the
# same row; yesterday's is deleted, so old hashes can no longer be linked to
# anything.
address_salts = Table(
    "address_salts",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("salt", String(64), nullable=False),
)

# One row per limited key (a keyed hash, never an address): a GCRA bucket
# (`tat`, the theoretical arrival time, epoch seconds) plus a window count
# (opens in the last few minutes) and, for logins, failures and a block.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("tat", Float, nullable=False, default=0.0),
    Column("win_start", Float, nullable=False, default=0.0),
    Column("win_count", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("blocked_until", Float, nullable=False, default=0.0),
    Column("touched", Float, nullable=False, index=True),
)

# An append-only log every gateway process polls (~0.5 s) to drop cached
# tokens and close sockets of what was revoked on any replica:
# kind `token` (ref = the token's hash) or `account` (ref = account id).
revocations = Table(
    "revocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("at", Float, nullable=False, index=True),
)
