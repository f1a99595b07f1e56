"""Encryption at rest of what an escalation records about a child.

Fernet (AES-128-CBC with HMAC) from `cryptography`. The key comes from
CHATVAKT_ESCALATION_KEY; several keys separated by commas rotate: the first
seals, all of them open. When the variable is unset (the local stack), a key is
generated once into CHATVAKT_DATA/escalation.key, readable by its owner only.
"""

import json
import logging
import os
import time

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from nameko.extensions import DependencyProvider

from chatvakt import config

log = logging.getLogger(__name__)

KEY_ENV = "CHATVAKT_ESCALATION_KEY"
KEY_FILE = "escalation.key"


class Vault:
    def __init__(self, keys):
        if not keys:
            raise ValueError("no escalation key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, value):
        return self._fernet.encrypt(json.dumps(value, ensure_ascii=False).encode()).decode()

    def open(self, token):
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            # A wrong or rotated-away key: say so without any of the content.
            raise RuntimeError("an escalation record cannot be decrypted with the configured key(s)") from None

    @classmethod
    def from_env(cls):
        raw = config.env(KEY_ENV)
        if raw:
            return cls([key.strip().encode() for key in raw.split(",") if key.strip()])
        return cls([_local_key(config.ensure_data_dir() / KEY_FILE)])


def _local_key(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: replicas starting together agree on the first one written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.05)
        raise RuntimeError(f"{path} is empty") from None
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    log.warning(
        "%s is not set: generated a new escalation key in %s (local use only; set %s in production)",
        KEY_ENV,
        path,
        KEY_ENV,
    )
    return key


_default = []


def default():
    if not _default:
        _default.append(Vault.from_env())
    return _default[0]


class VaultProvider(DependencyProvider):
    """Loads (or, locally, creates) the key when the service starts, not at the first escalation."""

    def setup(self):
        default()

    def get_dependency(self, worker_ctx):
        return default()
