"""chatvakt.db.Prepared: a Core statement run on the driver's cursor gives the
rows SQLAlchemy gives, writes what SQLAlchemy writes, and fails as SQLAlchemy
fails (issue 16). On SQLite here; the chat service's domain tests run it on
PostgreSQL too (services/conftest.py)."""

import datetime as dt

import pytest
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chatvakt.db import Prepared, make_engine

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("at", DateTime(timezone=True)),
    Column("flag", Boolean, nullable=False),
    Column("data", JSON),
    Column("kind", String(10), default="plain"),
)
FIELDS = ("name", "at", "flag", "data", "kind")


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_rows_written_and_read_are_sqlalchemys(engine):
    at = dt.datetime(2026, 12, 6, 5, 0, 0, tzinfo=dt.timezone.utc)  # a whole second: no microseconds
    insert = Prepared(things.insert().returning(things.c.id), column_keys=FIELDS)
    by_name = Prepared(select(things, things.c.name.label("again")).where(things.c.name == bindparam("name")))
    with engine.begin() as conn:
        first = insert.scalar_one(conn, {"name": "a", "at": at, "flag": True, "data": {"x": [1]}, "kind": "k"})
        conn.execute(things.insert(), {"name": "b", "at": at, "flag": False, "data": {"x": [2]}, "kind": "k"})
    with engine.begin() as conn:
        mine = [by_name.first(conn, {"name": n}) for n in ("a", "b")]
        theirs = [conn.execute(by_name.statement, {"name": n}).first() for n in ("a", "b")]
        assert by_name.first(conn, {"name": "none"}) is None
    assert first == 1
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs]
    assert (mine[0].at, mine[0].flag, mine[0].data, mine[0].again) == (at.replace(tzinfo=None), True, {"x": [1]}, "a")
    # The text SQLite holds is the text SQLAlchemy writes.
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT at FROM things ORDER BY id").scalars().all()
    assert stored[0] == stored[1]


def test_a_broken_constraint_is_sqlalchemys_integrity_error_without_the_values(engine):
    insert = Prepared(things.insert(), column_keys=FIELDS)
    row = {"name": "same", "at": None, "flag": False, "data": None, "kind": "secret words"}
    with engine.begin() as conn:
        insert.rows(conn, row)
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        insert.rows(conn, row)
    assert "secret words" not in str(caught.value)


def test_a_missing_value_and_a_python_default_are_refused(engine):
    with engine.begin() as conn:
        with pytest.raises(KeyError):
            Prepared(things.insert(), column_keys=FIELDS).rows(conn, {"name": "x"})
        # `kind` has a default SQLAlchemy would compute in Python: Prepared computes none.
        with pytest.raises(ValueError, match="default"):
            Prepared(things.insert(), column_keys=("name", "flag")).rows(conn, {"name": "x", "flag": True})


def test_it_runs_inside_a_sessions_transaction_and_rolls_back_with_it(engine):
    insert = Prepared(things.insert(), column_keys=FIELDS)
    sessions = sessionmaker(bind=engine)
    with sessions() as session:
        insert.rows(session, {"name": "gone", "at": None, "flag": True, "data": None, "kind": "k"})
        assert session.execute(select(things.c.name)).scalars().all() == ["gone"]
        session.rollback()
    with sessions() as session, session.begin():
        insert.rows(session, {"name": "kept", "at": None, "flag": True, "data": None, "kind": "k"})
    with engine.connect() as conn:
        assert conn.execute(select(things.c.name)).scalars().all() == ["kept"]


def test_scalar_one_fails_as_sqlalchemys(engine):
    from sqlalchemy.exc import MultipleResultsFound, NoResultFound

    names = Prepared(select(things.c.name).where(things.c.flag == bindparam("flag")))
    insert = Prepared(things.insert(), column_keys=FIELDS)
    with engine.begin() as conn:
        with pytest.raises(NoResultFound):
            names.scalar_one(conn, {"flag": True})
        for name in ("a", "b"):
            insert.rows(conn, {"name": name, "at": None, "flag": True, "data": None, "kind": "k"})
        with pytest.raises(MultipleResultsFound):
            names.scalar_one(conn, {"flag": True})
