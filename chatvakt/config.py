"""Settings from the environment, read in one place.

API.md fixes the names AMQP_URI, GATEWAY_PORT, CHATVAKT_DATA, CHATVAKT_DB_URL
and CHATVAKT_DEMO; the rest are ours and documented in the README.
"""

import os
from pathlib import Path

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
SERVICES = ("queue", "chat", "coding", "escalation")
PROCESSES = SERVICES + ("gateway",)


def env(name, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_int(name, default):
    return int(env(name, default))


def env_float(name, default):
    return float(env(name, default))


def amqp_uri():
    return env("AMQP_URI", DEFAULT_AMQP_URI)


def data_dir():
    return Path(env("CHATVAKT_DATA", "./var")).resolve()


def ensure_data_dir():
    """CHATVAKT_DATA, made if missing, readable by this user only (0700): it
    holds transcripts (the SQLite files) and the key that seals escalations.
    A folder made before this rule is tightened too."""
    folder = data_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def private_file(path):
    """Make `path` (if missing) and keep it 0600. SQLite gives its -wal and
    -shm files the database file's mode, so creating the file first is enough."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path


def db_url(service):
    """The SQLAlchemy URL of one service's own database."""
    template = env("CHATVAKT_DB_URL")
    if template:
        return db_url_from(template.replace("{service}", service))
    path = private_file(ensure_data_dir() / (service + ".sqlite3"))
    return f"sqlite:///{path}"


def db_url_from(url):
    """A URL that names no driver gets the one we chose: pg8000 is pure
    Python, so eventlet's patched sockets keep it from blocking the hub."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+pg8000://" + url.split("://", 1)[1]
    return url


def rpc_timeout():
    """Seconds an RPC made from inside a process may take before we answer 503."""
    return env_float("CHATVAKT_RPC_TIMEOUT", 5.0)


def helpline_name():
    return env("CHATVAKT_HELPLINE_NAME", "Alarmtelefonen")


def retention_days():
    """Days a transcript (chat) and a risk screen's context (escalation) are kept."""
    return env_float("CHATVAKT_RETENTION_DAYS", 30.0)


# -- issue 12: presence of waiting children, floods, push size -----------------


def absent_grace_s():
    """A waiting child whose page has shown no sign of life (no socket, no
    request with its token) for longer than this leaves the queue."""
    return env_float("CHATVAKT_ABSENT_GRACE_S", 60.0)


def seen_report_s():
    """How often each gateway process tells the queue which waiting chats it saw.
    Well under the grace, so a report lost now and then costs no child its place."""
    return env_float("CHATVAKT_SEEN_REPORT_S", 5.0)


def queue_push_first():
    """queue.changed to counsellors carries this many first entries, then counts."""
    return env_int("CHATVAKT_QUEUE_PUSH_FIRST", 25)


def flood_notice_s():
    """Supervisors get the flood notice updated at most this often."""
    return env_float("CHATVAKT_FLOOD_NOTICE_S", 5.0)


def max_inflight():
    """RPC-backed requests one gateway process serves at once (beyond: 503
    overloaded); None leaves it to the gateway (3/4 of its worker slots)."""
    value = env_int("CHATVAKT_MAX_INFLIGHT", 0)
    return value if value > 0 else None


def admission_wait_s():
    """How long an API request that finds every slot in use waits for one
    before it is answered 503 overloaded (0: at once). The default covers the
    line gateway/admission.py allows (as many waiters as slots, 75) being
    served at a relay's rate near its capacity on two cores."""
    return max(0.0, env_float("CHATVAKT_ADMISSION_WAIT_S", 0.25))


# -- the process itself, its logs, and the environment its children inherit --


def process_name(default=""):
    """This process's name in log lines: set by the launcher (chat, chat-2, gateway)."""
    return env("CHATVAKT_PROCESS", default)


def name_process(name):
    """Name this process (unless the launcher already did) for the program it becomes
    by exec, which reads the name back from the environment."""
    os.environ.setdefault("CHATVAKT_PROCESS", name)


def log_json():
    """JSON log lines (LOG_FORMAT=json, the containers' default) or readable ones."""
    return env("LOG_FORMAT", "text").strip().lower() == "json"


def replicas():
    """`chatvakt run --replicas`'s default: N, or per service as chat=2,gateway=2."""
    return env("CHATVAKT_REPLICAS", "1")


def inherited_environment():
    """A copy of this process's environment, for a child process to start from."""
    return dict(os.environ)


def test_pg_admin_url():
    """The PostgreSQL server the tests make their databases on (CHATVAKT_TEST_PG)."""
    return env("CHATVAKT_TEST_PG", "postgresql+pg8000://postgres@127.0.0.1:5432/postgres")


def test_crash_after_commit():
    """A test hook (CHATVAKT_TEST_CRASH_AFTER_COMMIT): the file whose removal makes
    a chat replica exit between commit and publish; None when not armed."""
    return env("CHATVAKT_TEST_CRASH_AFTER_COMMIT")
