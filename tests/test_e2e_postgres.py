"""The whole chat again, with every service on the real PostgreSQL
(CHATVAKT_DB_URL as API.md says: databases created and migrated when missing)."""

import secrets

import pytest

from chatvakt.testing import PG_ADMIN_URL, postgres_available
from tests.stack import Stack
from tests.test_e2e_chat import whole_chat

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL does not answer"),
]


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory):
    prefix = f"chatvakt_e2e_{secrets.token_hex(3)}"
    server = PG_ADMIN_URL.split("+pg8000", 1)[-1].rsplit("/", 1)[0]  # driver-less, as ops would write it
    url = f"postgresql{server}/{prefix}_{{service}}"
    running = Stack(tmp_path_factory.mktemp("pgstack"), env={"CHATVAKT_DB_URL": url}).start()
    yield running
    running.stop()
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for name in (
            conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": prefix + "%"})
            .scalars()
            .all()
        ):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_whole_chat_on_postgresql(pg_stack):
    whole_chat(pg_stack)
    assert not list((pg_stack.workdir / "var").glob("*.sqlite3"))
