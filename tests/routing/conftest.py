import pytest

from llmrelay.config import load_settings
from llmrelay.relay import Relay
from llmrelay.testing import FakeServers


@pytest.fixture(scope="package")
def all_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture
def fakes(all_fakes):
    all_fakes.reset()
    for fake in all_fakes.fakes.values():
        fake.models = None
    yield all_fakes
    all_fakes.reset()


@pytest.fixture
async def make_relay(fakes, monkeypatch):
    """A Relay pointed at the fakes; `without` drops providers' keys, settings override by name."""
    relays = []

    def make(without=(), agents=None, observers=(), **overrides):
        for var, value in fakes.env().items():
            monkeypatch.setenv(var, value)
        for name in without:
            monkeypatch.delenv(f"{name.upper()}_API_KEY", raising=False)
        overrides.setdefault("max_retries", 0)
        relay = Relay(load_settings(env_file=None, **overrides), agents=agents, observers=observers, ledger=None)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        await relay.aclose()
