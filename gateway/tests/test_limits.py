"""The limiter's decisions and its shared state, without a broker: pure
functions with plain numbers, and the SQL steps on a SQLite file that two
engines share as two gateway replicas would."""

import datetime as dt
import functools

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from chatvakt import errors
from chatvakt.clock import utcnow
from chatvakt.db import make_engine
from chatvakt.migrations import upgrade
from chatvakt.testing import kept_postgres, postgres_available
from gateway import accounts, limits
from gateway.models import address_salts, metadata, rate_limits, revocations, tokens

NOW = 1_800_000_000.0


def test_login_delay_grows_and_stops_growing():
    delays = [limits.login_delay(n, free=5, base_s=1, max_s=300) for n in range(1, 16)]
    assert delays[:4] == [0, 0, 0, 0]
    assert delays[4:10] == [1, 2, 4, 8, 16, 32]
    assert max(delays) == 300 and delays[-1] == 300


@functools.cache
def _postgres_answers():
    return postgres_available()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def replicas(request, tmp_path, monkeypatch):
    """Two engines on one database: two gateway processes (one SQLite file on
    one machine, or PostgreSQL as in production)."""
    monkeypatch.setattr(limits, "_salt_cache", {})
    if request.param == "postgres":
        if not _postgres_answers():
            pytest.skip("PostgreSQL does not answer")
        url, empty = kept_postgres("gateway", metadata)  # migrated once for the run
        engines = [make_engine(url), make_engine(url)]
    else:
        url, empty = f"sqlite:///{tmp_path / 'gateway.sqlite3'}", (lambda: None)
        engines = [make_engine(url), make_engine(url)]
        upgrade("gateway", engines[0], metadata)
    yield [sessionmaker(bind=e, expire_on_commit=False) for e in engines]
    for engine in engines:
        engine.dispose()
    empty()


def tx(factory, fn, *args, **kwargs):
    with factory() as session, session.begin():
        return fn(session, *args, **kwargs)


def test_chat_opens_share_one_limit_across_replicas(replicas, monkeypatch):
    monkeypatch.setenv("CHATVAKT_CHAT_OPEN_BURST", "30")
    monkeypatch.setenv("CHATVAKT_CHAT_OPEN_PER_MIN", "6")
    outcomes = []
    for i in range(40):
        try:
            tx(replicas[i % 2], limits.open_chat, "203.0.113.7", now=NOW)
            outcomes.append("ok")
        except errors.RateLimited as exc:
            outcomes.append(exc.retry_after)
    assert outcomes[:30] == ["ok"] * 30
    assert all(wait == 10 for wait in outcomes[30:])  # 6 a minute: one every 10 s
    # Another address (another school) is untouched by the first one's flood.
    assert tx(replicas[1], limits.open_chat, "198.51.100.2", now=NOW)["suspect"] is False
    # Ten seconds on, one more passes.
    tx(replicas[0], limits.open_chat, "203.0.113.7", now=NOW + 10.0)


def test_suspect_after_the_flood_threshold_and_source_is_a_short_hash(replicas, monkeypatch):
    monkeypatch.setenv("CHATVAKT_FLOOD_SUSPECT", "10")
    seen = [tx(replicas[0], limits.open_chat, "203.0.113.7", now=NOW + i) for i in range(12)]
    assert [s["suspect"] for s in seen] == [False] * 10 + [True] * 2
    assert len({s["source"] for s in seen}) == 1
    # A salted hash in hex: it could hold "203" by chance (it once did), never the address.
    assert len(seen[0]["source"]) == 16 and set(seen[0]["source"]) <= set("0123456789abcdef")
    # Ten minutes later the window starts again.
    later = tx(replicas[0], limits.open_chat, "203.0.113.7", now=NOW + 700)
    assert later["suspect"] is False


def test_no_address_is_stored_in_clear(replicas):
    tx(replicas[0], limits.open_chat, "203.0.113.7", now=NOW)
    tx(replicas[0], limits.login_failed, tx(replicas[0], limits.login_keys, "someone", "203.0.113.7", now=NOW), now=NOW)
    with replicas[0]() as session:
        keys = [row.key for row in session.execute(select(rate_limits)).all()]
        salts = session.execute(select(address_salts)).all()
    assert keys and all("203.0.113.7" not in key and "someone" not in key for key in keys)
    assert len(salts) == 1


def test_the_salt_rotates_daily_and_old_salts_are_forgotten(replicas, monkeypatch):
    first = tx(replicas[0], limits.day_salt, now=NOW)
    assert tx(replicas[1], limits.day_salt, now=NOW) == first  # shared by replicas
    monkeypatch.setattr(limits, "_salt_cache", {})
    second = tx(replicas[1], limits.day_salt, now=NOW + 86400)
    assert second != first
    with replicas[0]() as session:
        assert [row.salt for row in session.execute(select(address_salts)).all()] == [second]


def test_login_failures_block_with_growing_delays_per_account_and_address(replicas):
    keys = tx(replicas[0], limits.login_keys, "demo", "203.0.113.9", now=NOW)
    delays = [tx(replicas[i % 2], limits.login_failed, keys, now=NOW + i * 1000) for i in range(8)]
    # failures spaced out (each after the block ended): 5 free, then 1, 2, 4 s
    assert delays == [0, 0, 0, 0, 1, 2, 4, 8]
    assert tx(replicas[0], limits.login_wait, keys, now=NOW + 7000) > 7
    # The owner from another address is not blocked.
    owner = tx(replicas[0], limits.login_keys, "demo", "192.0.2.1", now=NOW)
    assert tx(replicas[1], limits.login_wait, owner, now=NOW + 7000) == 0
    # A success forgets the (account, address) failures.
    tx(replicas[0], limits.login_succeeded, keys)
    with replicas[0]() as session:
        assert session.execute(select(rate_limits).where(rate_limits.c.key == keys[0])).first() is None


def test_an_address_guessing_many_accounts_is_throttled(replicas, monkeypatch):
    monkeypatch.setenv("CHATVAKT_LOGIN_ADDRESS_FREE_FAILURES", "20")
    delays = []
    for i in range(22):
        keys = tx(replicas[0], limits.login_keys, f"user{i}", "203.0.113.9", now=NOW)
        delays.append(tx(replicas[0], limits.login_failed, keys, now=NOW + i))
    assert delays[:19] == [0] * 19 and delays[19:] == [1, 2, 4]


def test_password_change_and_disable_end_every_session(replicas):
    account_id = tx(replicas[0], accounts.add_account, "anne", "Anne", "counsellor", "first-pw")
    tokens_given = [tx(replicas[0], accounts.login, "anne", "first-pw")["token"] for _ in range(2)]
    assert tx(replicas[1], accounts.resolve, tokens_given[0])["id"] == account_id
    before = tx(replicas[1], limits.last_revocation)
    tx(replicas[0], accounts.add_account, "anne", "Anne", "counsellor", "second-pw")
    for token in tokens_given:
        with pytest.raises(errors.Unauthorized):
            tx(replicas[1], accounts.resolve, token)
    assert tx(replicas[1], limits.revocations_after, before)[-1][1:] == ("account", account_id)
    token = tx(replicas[0], accounts.login, "anne", "second-pw")["token"]
    assert tx(replicas[0], accounts.set_disabled, "anne", True) == account_id
    with pytest.raises(errors.Unauthorized):
        tx(replicas[1], accounts.resolve, token)
    with pytest.raises(errors.Unauthorized) as refused:
        tx(replicas[0], accounts.login, "anne", "second-pw")
    assert str(refused.value) == "Wrong username or password."
    tx(replicas[0], accounts.set_disabled, "anne", False)
    tx(replicas[0], accounts.login, "anne", "second-pw")


def test_a_chat_end_ends_its_child_tokens_idempotently(replicas):
    token = tx(replicas[0], accounts.issue_child_token, "chat-1")
    tx(replicas[0], accounts.end_chat_tokens, "chat-1")
    tx(replicas[1], accounts.end_chat_tokens, "chat-1")  # the other replica, too
    # API.md: what a child sends after the end is 409, "This chat has ended."
    for replica in replicas:
        with pytest.raises(errors.Conflict) as ended:
            tx(replica, accounts.resolve, token)
        assert str(ended.value) == "This chat has ended."
    with replicas[0]() as session:
        assert [row.kind for row in session.execute(select(tokens))] == ["ended"]


def test_tokens_are_forgotten_once_they_would_have_expired(replicas):
    live = tx(replicas[0], accounts.issue_child_token, "chat-2")
    ended = tx(replicas[0], accounts.issue_child_token, "chat-3")
    tx(replicas[0], accounts.end_chat_tokens, "chat-3")
    tx(replicas[0], accounts.prune_tokens)  # nothing has expired yet
    assert tx(replicas[0], accounts.resolve, live)["chat_id"] == "chat-2"
    with pytest.raises(errors.Conflict):
        tx(replicas[0], accounts.resolve, ended)
    tx(replicas[0], accounts.prune_tokens, utcnow() + accounts.CHILD_TOKEN_TTL + dt.timedelta(seconds=1))
    with replicas[0]() as session:
        assert session.execute(select(tokens)).first() is None


def test_logout_is_logged_by_the_tokens_hash_only(replicas):
    tx(replicas[0], accounts.add_account, "bo", "Bo", "counsellor", "pw-bo-123")
    token = tx(replicas[0], accounts.login, "bo", "pw-bo-123")["token"]
    tx(replicas[0], accounts.revoke, token)
    with replicas[1]() as session:
        rows = session.execute(select(revocations)).all()
    assert rows[-1].kind == "token" and rows[-1].ref == accounts.digest(token) != token


def test_racing_replicas_never_both_spend_the_last_unit(replicas, monkeypatch):
    import eventlet

    monkeypatch.setenv("CHATVAKT_CHAT_OPEN_BURST", "30")
    monkeypatch.setenv("CHATVAKT_CHAT_OPEN_PER_MIN", "6")
    passed = []

    def replica(factory):
        for _ in range(25):
            try:
                tx(factory, limits.open_chat, "203.0.113.50", now=NOW)
                passed.append(1)
            except errors.RateLimited:
                pass

    workers = [eventlet.spawn(replica, factory) for factory in replicas + replicas]
    for worker in workers:
        worker.wait()
    assert len(passed) == 30


class _Chat:
    def __init__(self, status):
        self.status = status
        self.asked = 0

    def get_chat(self, chat_id, actor):
        self.asked += 1
        if self.status is None:
            raise errors.NotFound("No such chat.")
        return {"chat_id": chat_id, "status": self.status}


@pytest.mark.parametrize("status", ["ended", "timed_out", "abandoned", None])
def test_a_childs_token_is_refused_when_its_chat_ended_even_if_the_event_was_missed(replicas, monkeypatch, status):
    from gateway import base

    monkeypatch.setattr(base, "_token_cache", {})
    monkeypatch.setattr(base, "_chat_checked", {})
    chat = _Chat("active")

    class Gateway(base.GatewayBase):
        pass

    Gateway.chat = chat  # in place of the RPC (a property on the real one)
    gateway = Gateway()
    gateway._tx = lambda fn, *a, **k: tx(replicas[0], fn, *a, **k)
    gateway._read = lambda fn, *a, **k: tx(replicas[1], fn, *a, **k)
    token = tx(replicas[0], accounts.issue_child_token, "chat-9")
    assert gateway._resolve(token)["chat_id"] == "chat-9"
    base._token_cache.clear()  # the cache and check periods passed; no chat_ended ever came
    base._chat_checked.clear()
    chat.status = status
    with pytest.raises(errors.Conflict):
        gateway._resolve(token)
    with replicas[0]() as session:  # and the token is ended for good
        assert [row.kind for row in session.execute(select(tokens))] == ["ended"]


def test_one_schema_instance_serves_every_request():
    # A Schema made per request deep-copied its fields each time (issue 16).
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from gateway import schemas, web

    def request(body):
        return Request(EnvironBuilder(method="POST", json=body).get_environ())

    assert web.read_json(request({"text": "hei"}), schemas.PostMessage)["text"] == "hei"
    first = web._schemas[schemas.PostMessage]
    assert web.read_json(request({"text": "igjen"}), schemas.PostMessage)["text"] == "igjen"
    assert web._schemas[schemas.PostMessage] is first


def test_tokens_cached_at_one_moment_do_not_expire_at_one_moment(replicas, monkeypatch):
    # 40 children's tokens cached at once were read again at once every 10 s:
    # 40 chat.get_chat calls in a burst held the chat service for 200-350 ms.
    from gateway import base

    monkeypatch.setattr(base, "_token_cache", {})
    monkeypatch.setattr(base, "_chat_checked", {})
    monkeypatch.setattr(base.time, "monotonic", lambda: 1000.0)

    class Gateway(base.GatewayBase):
        pass

    Gateway.chat = _Chat("active")
    gateway = Gateway()
    gateway._tx = lambda fn, *a, **k: tx(replicas[0], fn, *a, **k)
    gateway._read = lambda fn, *a, **k: tx(replicas[0], fn, *a, **k)
    for n in range(40):
        gateway._resolve(tx(replicas[0], accounts.issue_child_token, f"chat-{n}"))
    expiries = [expiry for expiry, _actor in base._token_cache.values()]
    assert all(1000.0 + base.TOKEN_CACHE_S / 2 <= e <= 1000.0 + base.TOKEN_CACHE_S for e in expiries)
    assert max(expiries) - min(expiries) > base.TOKEN_CACHE_S / 4


def test_a_childs_chat_is_asked_of_the_chat_service_once_a_check_period_not_every_cache_period(replicas, monkeypatch):
    # A child writes every 20-60 s, longer than the token cache lives: asking
    # the chat service whenever the cache had expired cost nearly every
    # child's message a chat.get_chat call (issue 16). The token's own row is
    # still read every cache period, and a missed chat_ended is still caught.
    from gateway import base

    clock = [1000.0]
    monkeypatch.setattr(base, "_token_cache", {})
    monkeypatch.setattr(base, "_chat_checked", {})
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    chat = _Chat("active")

    class Gateway(base.GatewayBase):
        pass

    Gateway.chat = chat
    gateway = Gateway()
    read = []
    gateway._tx = lambda fn, *a, **k: tx(replicas[0], fn, *a, **k)
    gateway._read = lambda fn, *a, **k: read.append(fn) or tx(replicas[0], fn, *a, **k)
    token = tx(replicas[0], accounts.issue_child_token, "chat-7")
    for _ in range(3):  # one message every cache period, inside the first half of a check period
        gateway._resolve(token)
        clock[0] += base.TOKEN_CACHE_S
    assert len(read) == 3 and chat.asked == 1
    expiry = base._chat_checked["chat-7"]
    assert 1000.0 + base.CHAT_CHECK_S / 2 <= expiry <= 1000.0 + base.CHAT_CHECK_S
    chat.status = "ended"  # and no chat_ended ever came
    clock[0] = 1000.0 + base.CHAT_CHECK_S + 1
    with pytest.raises(errors.Conflict):
        gateway._resolve(token)
    assert chat.asked == 2
