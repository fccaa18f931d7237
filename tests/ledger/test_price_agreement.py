"""llmrelay's prices agree with genai-prices': for every model the seeded table prices that genai-prices knows
(the catalog's and migration 0013's), 22 usage shapes (nothing, input only, output only, cache reads, 5-minute
and 1-hour cache writes, reasoning, at and above a tier's threshold, all input cached, a very large call…)
cost exactly what `genai_prices.calc_price` says for the same model and moment, to the last digit.

Known, justified differences (each asserted to be no more than it says):

- `ROUNDED`: genai-prices gives a few OpenRouter prices to more decimals than the table keeps (a per-token
  price such as $0.0833333333… per 1M); llmrelay keeps whole pico-dollars per 1k tokens, so its cost may
  differ by up to half a pico-dollar per 1k tokens at that price, and is rounded to the pico-dollar.
- llmrelay rounds every cost half-even to the pico-dollar; genai-prices does not round.  For every other
  model the exact cost has no more than 12 decimals (prices with at most 6 decimals per 1M tokens times whole
  tokens), so the two are equal exactly; the test checks that too.
- Reasoning tokens are billed as output by both (genai-prices' `output_reasoning_mtok` is priced for none of
  these models).
- What genai-prices prices that llmrelay does not count (web searches, audio tokens) is not part of these
  shapes: llmrelay's usage has no such counts.
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from llmrelay.catalog import KNOWN_MODELS
from llmrelay.db.types import quantize
from llmrelay.ledger.price_sources import GENAI_PROVIDERS, genai_price, genai_version
from llmrelay.ledger.pricing import Price, PriceBook, cost_of

genai_prices = pytest.importorskip("genai_prices")
SEED = importlib.import_module("llmrelay.db.migrations.versions.0013_seed_current_prices")
AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
"""After 0013's rows took effect."""

# input, output, cache read, cache write (all), of them 1-hour, reasoning (part of output)
SHAPES: list[tuple[int, int, int, int, int, int]] = [
    (0, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0), (0, 1, 0, 0, 0, 0), (1000, 0, 0, 0, 0, 0), (1000, 500, 0, 0, 0, 0),
    (1000, 500, 200, 0, 0, 0), (1000, 500, 0, 300, 0, 0), (1000, 500, 0, 300, 300, 0), (1000, 500, 0, 300, 100, 0),
    (1000, 500, 200, 300, 100, 0), (1000, 2000, 0, 0, 0, 1500), (123_457, 7_891, 10_000, 0, 0, 0),
    (200_000, 100, 0, 0, 0, 0), (200_001, 100, 0, 0, 0, 0), (250_000, 1000, 240_000, 0, 0, 0),
    (300_000, 5000, 0, 50_000, 20_000, 4000), (1_000_000, 65_536, 0, 0, 0, 0), (999_999, 1, 1, 1, 1, 0),
    (7, 3, 7, 0, 0, 0), (5, 3, 0, 5, 0, 0), (50_000_000, 1, 0, 0, 0, 0), (3, 0, 1, 1, 1, 0),
]
ROUNDED = {("openrouter", "google/gemini-2.5-flash"), ("openrouter", "google/gemini-2.5-flash-lite")}
"""Models with a genai-prices figure of more than 9 decimals per 1M tokens (their cache write: 1/12 of a dollar)."""


def _seeded_book() -> PriceBook:
    """The price table of a freshly migrated database (SQLite): 0002's, 0008's and 0013's rows."""
    import tempfile

    from llmrelay.db.engine import make_engine, sessions
    from llmrelay.db.migrate import upgrade
    from llmrelay.ledger.pricing import load_price_book

    async def go(path: str) -> PriceBook:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        async with sessions(engine)() as s:
            book = await load_price_book(s)
        await engine.dispose()
        return book

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go(f"{tmp}/prices.db")).result()


BOOK = _seeded_book()


def _known_to_genai(provider: str, model: str) -> bool:
    from genai_prices import data_snapshot

    if provider not in GENAI_PROVIDERS:
        return False
    try:
        data_snapshot.get_snapshot().find_provider_model(model, None, GENAI_PROVIDERS[provider], None)
    except LookupError:
        return False
    return genai_price(provider, model, AT)[0] is not None


MODELS = sorted({(p, m) for p, m in [*KNOWN_MODELS, *((row[0], row[1]) for row in SEED.SEED)]
                 if _known_to_genai(p, m)})


def theirs(provider: str, model: str, shape: tuple[int, ...]) -> Decimal:
    inp, out, read, write, hour, reasoning = shape
    usage = genai_prices.Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write,
                               cache_write_1h_tokens=hour, output_reasoning_tokens=reasoning)
    return genai_prices.calc_price(usage, model, provider_id=GENAI_PROVIDERS[provider],
                                   genai_request_timestamp=AT).total_price


def test_every_provider_has_models_and_shapes_enough():
    for provider in GENAI_PROVIDERS:
        assert len([m for p, m in MODELS if p == provider]) >= 5, provider
    assert len(SHAPES) >= 20


@pytest.mark.parametrize(("provider", "model"), MODELS, ids=[f"{p}/{m}" for p, m in MODELS])
def test_llmrelay_and_genai_prices_agree_to_the_last_digit(provider, model):
    price = BOOK.lookup(provider, model, AT)
    assert price is not None and price.model == model, f"{provider}/{model} is not seeded"
    for shape in SHAPES:
        ours = cost_of(price, *shape[:5])
        exact = theirs(provider, model, shape)
        if (provider, model) in ROUNDED:
            # half a pico-dollar per 1k tokens of the rounded price, and the final rounding
            bound = Decimal(shape[0]) * Decimal("0.5e-12") / 1000 + Decimal("0.5e-12")
            assert abs(ours - exact) <= bound, (shape, ours, exact)
        else:
            assert ours == quantize(exact) == exact, (shape, ours, exact)


def test_the_seed_is_genai_prices_figures_at_its_date():
    """0013's figures are what genai-prices gives for 2026-12-06 (so a newer genai-prices that corrects an old
    figure shows here first: run `llmrelay pricing sync --source genai-prices`)."""
    for provider, model, *_ in SEED.SEED:
        seeded = BOOK.lookup(provider, model, SEED.EFFECTIVE)
        theirs_now, _ = genai_price(provider, model, SEED.EFFECTIVE)
        assert seeded is not None and theirs_now is not None
        assert seeded.same_as(theirs_now), (f"{provider}/{model}: genai-prices {genai_version()} (0013 was made "
                                            f"from {SEED.GENAI_PRICES_VERSION})")


def test_tiers_merge_into_whole_tiers_that_bill_what_genai_prices_bills():
    """A key tiered at 200k and another not: the merged tier keeps the untiered key's price."""
    from genai_prices.types import ModelPrice, Tier, TieredPrices

    from llmrelay.ledger.price_sources import _from_model_price

    mp = ModelPrice(input_mtok=TieredPrices(base=Decimal("1"), tiers=[Tier(start=100, price=Decimal("2")),
                                                                      Tier(start=300, price=Decimal("3"))]),
                    output_mtok=TieredPrices(base=Decimal("5"), tiers=[Tier(start=200, price=Decimal("6"))]),
                    cache_read_mtok=Decimal("0.1"))
    price, _ = _from_model_price("p", "m", mp, AT)
    assert isinstance(price, Price) and [t.above for t in price.tiers] == [100, 200, 300]
    for inp in (0, 100, 101, 200, 201, 300, 301, 10_000):
        for out, read in ((0, 0), (50, 0), (50, 50)):
            if read > inp:
                continue
            usage = genai_prices.Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read)
            assert cost_of(price, inp, out, read) == mp.calc_price(usage)["total_price"], (inp, out, read)
