import pytest

from llmrelay.config import load_settings
from llmrelay.ledger import Ledger
from llmrelay.relay import Relay
from llmrelay.testing import FakeServers


@pytest.fixture(scope="package")
def ledger_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture
def fakes(ledger_fakes):
    ledger_fakes.reset()
    yield ledger_fakes
    ledger_fakes.reset()


@pytest.fixture
def settings(fakes, monkeypatch):
    for var, value in fakes.env().items():
        monkeypatch.setenv(var, value)
    return load_settings(env_file=None, max_retries=0)


@pytest.fixture
async def ledger(settings, db_url):
    ledger = Ledger(settings, url=db_url)
    await ledger.start()
    yield ledger
    await ledger.aclose()


@pytest.fixture
async def relay(settings, ledger):
    relay = Relay(settings, ledger=ledger)
    yield relay
    await relay.aclose()
