"""LLMRELAY_PROVIDER_CONNECTIONS caps each provider's pool: with two connections, a third concurrent stream to the
same provider waits for one to free up (it is not refused, and it is not a new connection)."""

from __future__ import annotations

import asyncio
import time

from llmrelay import Relay
from llmrelay.config import load_settings
from llmrelay.testing import FakeServers, faults
from llmrelay.types import Message


async def test_a_provider_keeps_at_most_the_configured_connections_open(monkeypatch, tmp_path):
    with FakeServers(["openai"]) as fakes:
        for var, value in fakes.env().items():
            monkeypatch.setenv(var, value)
        fakes["openai"].script(faults.slow_first_byte(0.6, times=3))
        settings = load_settings(env_file=None, home=tmp_path, provider_connections=2, max_retries=0)
        async with Relay(settings, ledger=None) as relay:
            t0 = time.monotonic()

            async def ask() -> float:
                outcome = await relay.run(None, "openai/gpt-4o-mini", [Message("user", "hi")])
                assert outcome.error is None and outcome.text
                return time.monotonic() - t0

            took = sorted(await asyncio.gather(ask(), ask(), ask()))
            assert relay.providers["openai"].session.connector.limit == 2
    assert took[1] < 1.1 and took[2] >= 1.1, took  # two at once; the third after one of them ended
