"""The key that seals escalation details: from the environment, or made once locally."""

import logging

import pytest
from cryptography.fernet import Fernet

from services.escalation import vault


def test_a_local_key_is_generated_once_and_said_without_the_key(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(vault.KEY_ENV, raising=False)
    monkeypatch.setenv("CHATVAKT_DATA", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        first = vault.Vault.from_env()
    key = (tmp_path / vault.KEY_FILE).read_bytes()
    assert (tmp_path / vault.KEY_FILE).stat().st_mode & 0o077 == 0
    assert "generated a new escalation key" in caplog.text and key.decode() not in caplog.text
    token = first.seal({"name": "Kari"})
    assert "Kari" not in token and vault.Vault.from_env().open(token) == {"name": "Kari"}
    assert (tmp_path / vault.KEY_FILE).read_bytes() == key  # the second start reuses it


def test_keys_from_the_environment_rotate(monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(vault.KEY_ENV, old)
    token = vault.Vault.from_env().seal({"a": 1})
    monkeypatch.setenv(vault.KEY_ENV, f"{new},{old}")
    assert vault.Vault.from_env().open(token) == {"a": 1}
    monkeypatch.setenv(vault.KEY_ENV, new)
    with pytest.raises(RuntimeError):
        vault.Vault.from_env().open(token)
