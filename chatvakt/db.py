"""Database plumbing shared by the services (each with its own database).

SQLite is the embedded default; PostgreSQL (through pg8000) in production.
Every SQLite transaction starts with BEGIN IMMEDIATE: two replicas writing the
same file then queue on the write lock instead of failing half-way through a
read-then-write (SQLITE_BUSY on lock upgrade), which is what keeps assignment
and sequence numbers atomic across processes.
"""

import collections
import sqlite3
import time
import weakref

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from chatvakt import config

READ_ONLY = "chatvakt_read_only"


def read_only(session):
    """Mark a fresh session as a reader (before its first statement)."""
    session.connection(execution_options={READ_ONLY: True})
    return session


class Prepared:
    """A Core statement compiled once per database dialect and run straight on
    the DB-API cursor of the caller's transaction: for the few statements the
    relay runs for every message (issue 16).

    SQLAlchemy spends far more CPU around a statement than SQLite spends
    running it: an execution context, the compiled cache's lookup, events, a
    CursorResult (a quarter of the chat service's CPU per relayed message).
    The statement is still written once, in SQLAlchemy Core; its SQL, its
    parameters' order and its types' bind and result processors (SQLite's
    datetime text, JSON) come from SQLAlchemy's compiler, so a row written or
    read here is the row SQLAlchemy would have. It runs inside the Core
    connection's or Session's transaction (begun if it was not, so SQLite's
    write lock is taken as for any statement), and a driver's error is
    SQLAlchemy's (an IntegrityError is one). Only statements whose every
    value is given or bound: a column default SQLAlchemy would compute in
    Python is refused when the statement is first run.
    """

    def __init__(self, statement, column_keys=None):
        self.statement = statement
        self.column_keys = column_keys
        self._compiled: weakref.WeakKeyDictionary[object, _Plan] = weakref.WeakKeyDictionary()

    def _for(self, dialect):
        plan = self._compiled.get(dialect)
        if plan is None:
            plan = self._compiled[dialect] = _Plan(self.statement, dialect, self.column_keys)
        return plan

    def rows(self, executor, params):
        """Every row, as named tuples (columns by their keys)."""
        conn = executor.connection() if isinstance(executor, Session) else executor
        if not conn.in_transaction():
            conn.begin()
        return self._for(conn.dialect).run(conn, params)

    def first(self, executor, params):
        rows = self.rows(executor, params)
        return rows[0] if rows else None

    def scalar_one(self, executor, params):
        # As SQLAlchemy's Result.scalar_one, errors included.
        rows = self.rows(executor, params)
        if not rows:
            raise NoResultFound("No row was found when one was required")
        if len(rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return rows[0][0]


_REQUIRED = object()


class _Plan:
    def __init__(self, statement, dialect, column_keys):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("Prepared runs no Python-side column default: give every value")
        self.dialect = dialect
        self.sql = compiled.string
        binds = compiled.binds
        names = list(compiled.positiontup) if compiled.positional else list(binds)
        self.positional = compiled.positional
        # (name, the value it has unless given, how the driver wants it)
        self.params = [
            (
                name,
                _REQUIRED if binds[name].required else binds[name].effective_value,
                binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in names
        ]
        # A select's columns, or what an insert or update returns.
        self.columns = list(statement.exported_columns)
        # Made at the first run: a type's result processor may depend on the
        # driver's type code in the cursor's description (pg8000's floats do).
        self.processors = None
        self.row = collections.namedtuple("Row", [c.key for c in self.columns], rename=True) if self.columns else None

    def run(self, conn, given):
        values = []
        for name, default, process in self.params:
            value = given[name] if name in given or default is _REQUIRED else default
            values.append(process(value) if process is not None and value is not None else value)
        args = values if self.positional else dict(zip((p[0] for p in self.params), values, strict=True))
        cursor = conn.connection.cursor()
        try:
            try:
                cursor.execute(self.sql, args)
                raw = cursor.fetchall() if cursor.description is not None else ()
                # (an insert on PostgreSQL may return its new key unasked: no columns)
                if self.processors is None and self.row is not None:
                    self.processors = [
                        c.type.dialect_impl(self.dialect).result_processor(self.dialect, d[1])
                        for c, d in zip(self.columns, cursor.description, strict=True)
                    ]
            except self.dialect.loaded_dbapi.Error as error:
                raise DBAPIError.instance(
                    self.sql, None, error, self.dialect.loaded_dbapi.Error, hide_parameters=True, dialect=self.dialect
                ) from error
        finally:
            cursor.close()
        if self.row is None:
            return []
        processors = self.processors if self.processors is not None else ()  # None: no row came
        return [self.row(*(p(v) if p is not None else v for p, v in zip(processors, r, strict=True))) for r in raw]


WRITE_LOCK = "chatvakt_write_lock"
BUSY_WAIT_S = 30.0


def _green_lock():
    """A lock that makes a green thread wait without stopping the others."""
    try:
        from eventlet.semaphore import Semaphore
    except ImportError:  # pragma: no cover - every service runs on eventlet
        import threading

        return threading.Lock()
    return Semaphore(1)


def _begin_immediate(conn, lock):
    """BEGIN IMMEDIATE without ever blocking the process.

    SQLite waits for a lock inside C (busy_timeout), which stops every green
    thread of an eventlet process: one worker holding the write lock while it
    yields (a pool checkout, a log line) and another asking for it froze the
    whole process until the busy timeout ran out. So the writers of one
    process queue on a green lock first, and the lock of another process (a
    replica) is waited for here, in short green sleeps, with busy_timeout 0.
    """
    lock.acquire()
    conn.info[WRITE_LOCK] = lock
    deadline = time.monotonic() + BUSY_WAIT_S
    pause = 0.0005
    while True:
        try:
            # On the driver: SQLAlchemy's execution around it cost more than
            # the statement, once per unit of work (issue 16).
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                _release(conn)
                raise OperationalError("BEGIN IMMEDIATE", None, error) from error
        _sleep(pause)
        pause = min(pause * 2, 0.005)


def _sleep(seconds):
    try:
        import eventlet

        eventlet.sleep(seconds)
    except ImportError:  # pragma: no cover
        time.sleep(seconds)


def _release(conn):
    lock = conn.info.pop(WRITE_LOCK, None)
    if lock is not None:
        lock.release()


CHECKPOINT_S = 1.0


def _green():
    """True in a service process (eventlet's monkey patching is on)."""
    try:
        from eventlet import patcher
    except ImportError:  # pragma: no cover
        return False
    return patcher.is_monkey_patched("socket")


def _start_checkpointer(engine, path):
    """Checkpoint the WAL in an OS thread, never on the event loop.

    SQLite checkpoints by itself in the connection whose commit crossed 1000
    pages of WAL, with an fsync: up to 80 ms measured on this machine, during
    which an eventlet process serves nobody (issue 16: the relay's p99). In a
    service process that automatic checkpoint is off and this green thread
    asks an OS thread (eventlet.tpool) to run a PASSIVE checkpoint every
    second, which waits for no reader and no writer.
    """
    import eventlet
    from eventlet import tpool

    alive = weakref.ref(engine)
    holder: dict[str, sqlite3.Connection] = {}

    def checkpoint():
        conn = holder.get("conn")
        if conn is None:
            conn = holder["conn"] = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def run():
        import os

        while alive() is not None and not getattr(alive(), "chatvakt_disposed", False):
            eventlet.sleep(CHECKPOINT_S)
            if not os.path.exists(path):
                break  # a test's folder gone: never create the file again
            try:
                tpool.execute(checkpoint)
            except Exception:  # noqa: BLE001 - busy now: the next second will do
                pass
        conn = holder.pop("conn", None)
        if conn is not None:
            conn.close()

    eventlet.spawn_n(run)


def make_engine(url):
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            # Bound parameters hold children's words: keep them out of error texts.
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 0},
        )
        lock = _green_lock()
        path = make_url(url).database
        green = _green() and bool(path) and path != ":memory:"

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Never wait inside C: _begin_immediate waits in green sleeps.
            cursor.execute("PRAGMA busy_timeout=0")
            if green:
                # Checkpoints run in an OS thread (_start_checkpointer), not in a commit.
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Readers (see read_only) take no write lock: in WAL mode they see a
            # consistent snapshot and never wait for a writer.
            if conn.get_execution_options().get(READ_ONLY):
                conn.connection.driver_connection.execute("BEGIN")
            else:
                _begin_immediate(conn, lock)

        @event.listens_for(engine, "commit")
        def _sqlite_commit(conn):
            # Called just before the commit, which runs in C without yielding:
            # the next writer wakes only after it (the release only schedules it).
            _release(conn)

        @event.listens_for(engine, "rollback")
        def _sqlite_rollback(conn):
            _release(conn)

        @event.listens_for(engine, "checkin")
        def _sqlite_checkin(_dbapi_connection, record):
            # A connection back in the pool holds no lock, whatever happened.
            lock = record.info.pop(WRITE_LOCK, None)
            if lock is not None:
                lock.release()

        if green:
            _start_checkpointer(engine, path)
        return engine
    # Small pools: replicas times pool size must stay under PostgreSQL's max_connections.
    pool = config.env_int("CHATVAKT_DB_POOL", 5)
    return create_engine(url, pool_pre_ping=True, pool_size=pool, max_overflow=pool, hide_parameters=True)


def ensure_database(url):
    """Create a PostgreSQL database that does not exist yet (API.md: each
    database is created and migrated when missing)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).first()
            if not exists:
                try:
                    conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
                except DBAPIError:
                    # Another replica created it first.
                    pass
    finally:
        admin.dispose()


def setup_database(service, metadata, url=None):
    """Create the engine for one service and bring its schema up to date."""
    url = url or config.db_url(service)
    ensure_database(url)
    engine = make_engine(url)
    from chatvakt import migrations  # local import: alembic is heavy

    migrations.upgrade(service, engine, metadata)
    return engine


class Sessions(sessionmaker):
    """A service's sessionmaker, which also names its container's broker: the
    outbox's publisher (chatvakt/outbox.py) opens its connection there."""

    chatvakt_amqp_uri: str | None = None


class Database(DependencyProvider):
    """Gives each worker a SQLAlchemy session factory bound to the service's engine.

    The worker opens sessions with `with self.db() as session, session.begin():`
    so a transaction never outlives the piece of domain code that needs it.
    """

    def __init__(self, service, metadata):
        self.service = service
        self.metadata = metadata
        self.engine = None
        self.sessions = None

    def setup(self):
        self.engine = setup_database(self.service, self.metadata)
        self.sessions = Sessions(bind=self.engine, expire_on_commit=False)
        self.sessions.chatvakt_amqp_uri = self.container.config.get("AMQP_URI")

    def stop(self):
        if self.engine is not None:
            self.engine.chatvakt_disposed = True  # ends the WAL checkpointer
            self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.sessions
