import pytest
from cryptography.fernet import Fernet

from services.escalation.vault import Vault


@pytest.fixture
def vault():
    """A vault with a key of its own for each test."""
    return Vault([Fernet.generate_key()])
