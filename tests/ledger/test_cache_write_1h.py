"""A prompt cached for an hour is billed at the 1-hour cache-write price: Anthropic's usage says how many of the
written tokens are 1-hour ones (`cache_creation.ephemeral_1h_input_tokens`), the adapter keeps them
(`Usage.cache_write_1h_tokens`), and the charge prices them apart, whole and streamed, through the fake."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from llmrelay import Relay
from llmrelay.config import load_settings
from llmrelay.ledger.charges import Pricer
from llmrelay.ledger.pricing import Price, PriceBook, compute_cost
from llmrelay.testing import FakeServers
from llmrelay.types import Message, RequestOptions

MODEL = "claude-sonnet-4-5-20250929"
PRICE = Price.per_million("anthropic", MODEL, "3", "15", cached_input="0.30", cache_write="3.75",
                          cache_write_1h="6", effective_from=datetime(2025, 1, 1, tzinfo=UTC))
SYSTEM = "You are a careful reviewer. " * 200  # long enough to be worth caching


@pytest.mark.parametrize("stream", [False, True])
async def test_a_one_hour_cache_write_is_priced_at_the_one_hour_price(stream, monkeypatch, tmp_path):
    with FakeServers(["anthropic"]) as fakes:
        for var, value in fakes.env().items():
            monkeypatch.setenv(var, value)
        settings = load_settings(env_file=None, home=tmp_path, max_retries=0)
        async with Relay(settings, ledger=None) as relay:
            options = RequestOptions(system=SYSTEM, system_cache="1h", max_tokens=50)
            run = relay.run(None, f"anthropic/{MODEL}", [Message("user", "Review this")], options)
            if stream:
                outcome = None
                async for event in run:
                    outcome = event
            else:
                outcome = await run
    assert outcome is not None and outcome.error is None
    usage = outcome.usage
    assert usage.cache_write_tokens > 0 and usage.cache_write_1h_tokens == usage.cache_write_tokens
    cost = compute_cost(usage, PRICE)
    uncached = usage.input_tokens - usage.cache_write_tokens - usage.cached_input_tokens
    expected = (Decimal(uncached) * 3 + Decimal(usage.cache_write_tokens) * 6 + Decimal(usage.output_tokens) * 15
                + Decimal(usage.cached_input_tokens) * Decimal("0.30")) / 1_000_000
    assert cost == expected.quantize(Decimal("1e-12"))
    five_minutes = compute_cost(usage.__class__(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                                                usage.reasoning_tokens, usage.cache_write_tokens, 0), PRICE)
    assert cost > five_minutes  # the hour costs more than five minutes
    # the recorder's own road (integer pico-dollars, `Pricer`) gives the same charge as the Decimal reference
    charge = Pricer(PriceBook([PRICE])).charge(outcome.attempts[-1])
    assert charge.pico is not None and Decimal(charge.pico) / 10**12 == cost
