"""PostgreSQL as the production database, through a driver that leaves
eventlet's hub free: concurrent queries from green threads overlap."""

import time

import eventlet
import pytest
from sqlalchemy import text

from chatvakt import config
from chatvakt.db import make_engine
from chatvakt.testing import postgres_available, postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not postgres_available(), reason="PostgreSQL does not answer")]


def test_concurrent_queries_overlap_under_eventlet():
    url, drop = postgres_database()
    engine = make_engine(url)
    try:
        spans = []

        def slow_query(_):
            with engine.connect() as conn:
                started = time.monotonic()
                conn.execute(text("SELECT pg_sleep(0.3)"))
                spans.append((started, time.monotonic()))

        pool = eventlet.GreenPool(5)
        list(pool.imap(slow_query, range(5)))
        # Had the driver blocked the hub, each query would start after the last ended.
        latest_start = max(start for start, _ in spans)
        earliest_end = min(end for _, end in spans)
        assert latest_start < earliest_end
    finally:
        engine.dispose()
        drop()


def test_a_url_without_a_driver_gets_pg8000(monkeypatch):
    monkeypatch.setenv("CHATVAKT_DB_URL", "postgresql://postgres@127.0.0.1/chatvakt_{service}")
    assert config.db_url("chat") == "postgresql+pg8000://postgres@127.0.0.1/chatvakt_chat"
    monkeypatch.setenv("CHATVAKT_DB_URL", "postgresql+psycopg://u@h/x_{service}")
    assert config.db_url("queue") == "postgresql+psycopg://u@h/x_queue"
