import pytest
from argon2 import PasswordHasher

from chatvakt import testing
from gateway import accounts


@pytest.fixture(scope="session", autouse=True)
def kept_databases():
    """The PostgreSQL databases the tests shared (chatvakt.testing.kept_postgres) go at the end."""
    yield
    testing.drop_kept()


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """Argon2 at its cheapest: these tests check who gets in, not what a guess
    costs (at the real cost, hashing was most of their time)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", cheap)
    monkeypatch.setattr(accounts, "_dummy", [cheap.hash("dummy")])
