import pytest

from tests.client import Api
from tests.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole system as real processes, shared by the end-to-end tests."""
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()


@pytest.fixture
def api(stack):
    return Api(stack.url)


@pytest.fixture
def counsellor(stack):
    client = Api(stack.url)
    client.login("demo-counsellor")
    return client


@pytest.fixture
def supervisor(stack):
    client = Api(stack.url)
    client.login("demo-supervisor")
    return client
