"""Limits on the anonymous edge and on logins, shared by every gateway replica.

State lives in the gateway's database (SQLite file shared by the processes on
one machine, PostgreSQL in production), never in one process: two replicas
behind a balancer must give the same limits as one. Every change is one
conditional UPDATE (compare-and-set) or an INSERT that a racing replica's
INSERT makes a no-op, so two replicas never both spend the last unit. (The
per-process limits, in memory and cheaper, are in ratelimit.py.)

A client's address is never stored or logged: keys are HMACs of it under a
random salt that rotates daily (`address_salts`); yesterday's salt is deleted,
so older rows can no longer be linked to an address. Rotation also resets every
counter at midnight UTC, which is a small gift to an attacker and fine for
limits meant to stop floods, not to count exactly.

The decisions (how long to wait, whether to block) are pure functions of plain
numbers; the thin SQL steps around them are tested on SQLite.
"""

import datetime as dt
import hashlib
import hmac
import secrets
import time

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from chatvakt import config, errors
from chatvakt.gcra import gcra, retry_after

from .models import address_salts, rate_limits, revocations

# -- every limit, its variable and its default, in one place --


def chat_open_burst():
    """Chats one address may open at once: a school class on one NAT address."""
    return config.env_float("CHATVAKT_CHAT_OPEN_BURST", 30.0)


def chat_open_per_min():
    """Chats one address may open per minute once its burst is spent."""
    return config.env_float("CHATVAKT_CHAT_OPEN_PER_MIN", 6.0)


def flood_suspect():
    """More chats than this from one address in FLOOD_WINDOW_S: the queue serves them last."""
    return config.env_int("CHATVAKT_FLOOD_SUSPECT", 10)


FLOOD_WINDOW_S = 600.0  # the "last 10 minutes" of CHATVAKT_FLOOD_SUSPECT


def login_free_failures():
    """Wrong passwords per (account, address) before the first delay."""
    return config.env_int("CHATVAKT_LOGIN_FREE_FAILURES", 5)


def login_address_free_failures():
    """Wrong passwords per address (any account) before the first delay."""
    return config.env_int("CHATVAKT_LOGIN_ADDRESS_FREE_FAILURES", 20)


def login_base_delay_s():
    return config.env_float("CHATVAKT_LOGIN_BASE_DELAY_S", 1.0)


def login_max_delay_s():
    return config.env_float("CHATVAKT_LOGIN_MAX_DELAY_S", 300.0)


LOGIN_FORGET_S = 3600.0  # failures older than this (no new one since) are forgotten
CAS_TRIES = 10  # compare-and-set rounds lost to racing replicas before we say "try again"


def hash_concurrency():
    """Argon2 hashes run at once per gateway process (real threads, off the event loop)."""
    return config.env_int("CHATVAKT_HASH_CONCURRENCY", 2)


def revocation_poll_s():
    return config.env_float("CHATVAKT_REVOCATION_POLL_S", 0.5)


# -- pure decisions (GCRA itself is chatvakt/gcra.py) --


def login_delay(failures, free, base_s, max_s):
    """Seconds a key is blocked after its `failures`-th wrong password:
    nothing for the first `free`, then base, 2*base, 4*base ... up to max."""
    if failures < free:
        return 0.0
    return min(max_s, base_s * (2 ** min(30, failures - free)))


# -- the day's salt and keyed hashes of addresses --

_salt_cache = {}


def _today(now):
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y-%m-%d")


def day_salt(session, now=None):
    """This day's salt, made by whichever replica asks first."""
    day = _today(now or time.time())
    if day in _salt_cache:
        return _salt_cache[day]
    row = session.execute(select(address_salts.c.salt).where(address_salts.c.day == day)).first()
    if row is None:
        try:
            with session.begin_nested():
                session.execute(insert(address_salts).values(day=day, salt=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another replica made it first: use theirs
        row = session.execute(select(address_salts.c.salt).where(address_salts.c.day == day)).first()
        # Forget the older salts: their hashes can no longer be tied to anyone.
        session.execute(delete(address_salts).where(address_salts.c.day < day))
    _salt_cache.clear()
    _salt_cache[day] = row.salt
    return row.salt


def keyed(salt, *parts):
    """A keyed hash of parts (an address, a username): never reversible without the salt."""
    message = "\x1f".join(parts).encode("utf-8", "replace")
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).hexdigest()


def source_tag(salt, address):
    """What the chat service may know of an address: 16 hex chars, today only."""
    return keyed(salt, "source", address)[:16]


# -- opening chats --


def open_chat(session, address, now=None):
    """Count one chat opened from `address`. Returns {source, suspect} or raises
    RateLimited. One compare-and-set UPDATE; a racing replica re-reads."""
    now = now or time.time()
    salt = day_salt(session, now)
    key = "chat:" + keyed(salt, "chat", address)[:40]
    rate, burst = chat_open_per_min() / 60.0, chat_open_burst()
    for _ in range(CAS_TRIES):
        row = session.execute(select(rate_limits).where(rate_limits.c.key == key)).first()
        if row is None:
            allowed, new_tat, _wait = gcra(0.0, now, rate, burst)
            try:
                with session.begin_nested():
                    session.execute(
                        insert(rate_limits).values(
                            key=key, tat=new_tat, win_start=now, win_count=1, failures=0, blocked_until=0.0, touched=now
                        )
                    )
            except IntegrityError:
                continue  # another replica inserted first: go again with its row
            count = 1
        else:
            allowed, new_tat, wait = gcra(row.tat, now, rate, burst)
            if not allowed:
                raise errors.RateLimited(
                    "Too many chats were opened from your network just now. Please wait a little and try again.",
                    retry_after=retry_after(wait),
                )
            fresh = row.win_start <= now - FLOOD_WINDOW_S
            count = 1 if fresh else row.win_count + 1
            done = session.execute(
                update(rate_limits)
                .where(
                    and_(
                        rate_limits.c.key == key, rate_limits.c.tat == row.tat, rate_limits.c.win_count == row.win_count
                    )
                )
                .values(tat=new_tat, win_count=count, win_start=now if fresh else row.win_start, touched=now)
                .returning(rate_limits.c.win_count)
            ).first()
            if done is None:
                continue  # another replica spent a unit between our read and write
        return {"source": source_tag(salt, address), "suspect": count > flood_suspect()}
    raise errors.RateLimited("Too many chats are being opened right now; try again.", retry_after=1)


# -- logins --


def login_keys(session, username, address, now=None):
    salt = day_salt(session, now)
    return (
        "login:" + keyed(salt, "login", username.lower(), address)[:40],
        "laddr:" + keyed(salt, "laddr", address)[:40],
    )


def login_wait(session, keys, now=None):
    """Seconds until these keys may try again (0 when they may now)."""
    now = now or time.time()
    rows = session.execute(
        select(rate_limits.c.blocked_until, rate_limits.c.touched).where(rate_limits.c.key.in_(keys))
    ).all()
    return max([row.blocked_until - now for row in rows if row.touched > now - LOGIN_FORGET_S] + [0.0])


def login_failed(session, keys, now=None):
    """Count one wrong password for each key; returns the longest block set."""
    now = now or time.time()
    frees = {keys[0]: login_free_failures(), keys[1]: login_address_free_failures()}
    longest = 0.0
    for key in keys:
        for _ in range(CAS_TRIES):
            row = session.execute(select(rate_limits).where(rate_limits.c.key == key)).first()
            if row is None:
                failures = 1
                delay = login_delay(failures, frees[key], login_base_delay_s(), login_max_delay_s())
                try:
                    with session.begin_nested():
                        session.execute(
                            insert(rate_limits).values(
                                key=key,
                                tat=0.0,
                                win_start=now,
                                win_count=0,
                                failures=failures,
                                blocked_until=now + delay if delay else 0.0,
                                touched=now,
                            )
                        )
                except IntegrityError:
                    continue
                break
            stale = row.touched <= now - LOGIN_FORGET_S
            failures = 1 if stale else row.failures + 1
            delay = login_delay(failures, frees[key], login_base_delay_s(), login_max_delay_s())
            done = session.execute(
                update(rate_limits)
                .where(
                    and_(
                        rate_limits.c.key == key,
                        rate_limits.c.failures == row.failures,
                        rate_limits.c.touched == row.touched,
                    )
                )
                .values(failures=failures, blocked_until=now + delay if delay else 0.0, touched=now)
                .returning(rate_limits.c.failures)
            ).first()
            if done is not None:
                break
        longest = max(longest, delay)
    return longest


def login_succeeded(session, keys):
    """The owner got in from here: forget this (account, address)'s failures.
    The address's own count stays: one good account must not launder guesses."""
    session.execute(delete(rate_limits).where(rate_limits.c.key == keys[0]))


def prune(session, now=None):
    """Forget rows nobody touched for a day (their salt is gone anyway)."""
    now = now or time.time()
    session.execute(delete(rate_limits).where(rate_limits.c.touched < now - 86400))
    session.execute(delete(revocations).where(revocations.c.at < now - 3600))


# -- revocations --


def revoke(session, kind, ref, now=None):
    session.execute(insert(revocations).values(kind=kind, ref=ref, at=now or time.time()))


def revocations_after(session, last_id):
    rows = session.execute(
        select(revocations).where(revocations.c.id > last_id).order_by(revocations.c.id).limit(1000)
    ).all()
    return [(row.id, row.kind, row.ref) for row in rows]


def last_revocation(session):
    row = session.execute(select(revocations.c.id).order_by(revocations.c.id.desc()).limit(1)).first()
    return row.id if row else 0
