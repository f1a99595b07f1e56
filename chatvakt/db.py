"""Database plumbing shared by the services (each with its own database).

SQLite is the embedded default; PostgreSQL (through pg8000) in production.
Every SQLite transaction starts with BEGIN IMMEDIATE: two replicas writing the
same file then queue on the write lock instead of failing half-way through a
read-then-write (SQLITE_BUSY on lock upgrade), which is what keeps assignment
and sequence numbers atomic across processes.
"""
import datetime as dt

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

from chatvakt import config


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


def iso(value):
    """ISO 8601 in UTC with a Z, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(value):
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


READ_ONLY = "chatvakt_read_only"


def read_only(session):
    """Mark a fresh session as a reader (before its first statement)."""
    session.connection(execution_options={READ_ONLY: True})
    return session


def make_engine(url):
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            # Bound parameters hold children's words: keep them out of error texts.
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Readers (see read_only) take no write lock: in WAL mode they see a
            # consistent snapshot and never wait for a writer.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Small pools: replicas times pool size must stay under PostgreSQL's max_connections.
    pool = config.env_int("CHATVAKT_DB_POOL", 5)
    return create_engine(url, pool_pre_ping=True, pool_size=pool, max_overflow=pool,
                         hide_parameters=True)


def ensure_database(url):
    """Create a PostgreSQL database that does not exist yet (API.md: each
    database is created and migrated when missing)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": parsed.database}).first()
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
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.sessions
