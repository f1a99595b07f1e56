"""Issue 15, outcome 5: CHATVAKT_DATA is the service user's alone (0700) and
so is every file in it (0600): the SQLite files hold transcripts, the key
seals escalations."""

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_data_folder_is_0700_and_its_files_0600(tmp_path):
    data = tmp_path / "deep" / "var"
    env = dict(os.environ, CHATVAKT_DATA=str(data))
    env.pop("CHATVAKT_DB_URL", None)
    env.pop("CHATVAKT_ESCALATION_KEY", None)
    # Created by the ordinary paths: every database migrated, the key made.
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "chatvakt"), "migrate", "all"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    subprocess.run(
        [sys.executable, "-c", "from services.escalation.vault import Vault; Vault.from_env()"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert _mode(data) == 0o700
    files = sorted(p.name for p in data.iterdir())
    assert {
        "queue.sqlite3",
        "chat.sqlite3",
        "coding.sqlite3",
        "escalation.sqlite3",
        "gateway.sqlite3",
        "escalation.key",
    } <= set(files), files
    loose = {name: oct(_mode(data / name)) for name in files if _mode(data / name) != 0o600}
    assert loose == {}


def test_a_folder_and_file_made_before_are_tightened(tmp_path, monkeypatch):
    from chatvakt import config

    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    (data / "chat.sqlite3").touch(mode=0o644)
    os.chmod(data / "chat.sqlite3", 0o644)
    monkeypatch.setenv("CHATVAKT_DATA", str(data))
    monkeypatch.delenv("CHATVAKT_DB_URL", raising=False)
    assert config.db_url("chat").endswith("chat.sqlite3")
    assert _mode(data) == 0o700 and _mode(data / "chat.sqlite3") == 0o600
