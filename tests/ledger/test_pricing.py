"""Cost arithmetic (exact, property-tested), the seeded prices, price history, sync."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.ledger.pricing import (
    Price,
    PriceBook,
    compute_cost,
    costs_differ,
    load_price_book,
    sync_prices,
    usd_per_1m,
)
from llmrelay.types import Usage

M = Decimal(1_000_000)

# The seed plan's figures (USD per 1M tokens: input, output, cached input), in effect until 0013's
# (genai-prices' figures, tests/ledger/test_price_agreement.py) from 2026-12-06
BEFORE_0013 = datetime(2026, 12, 5, tzinfo=UTC)
SEEDED = {
    ("anthropic", "claude-3-5-sonnet-20241022"): ("3", "15", "0.30"),
    ("openai", "gpt-4"): ("10", "30", None),
    ("openai", "gpt-4o"): ("2.50", "10", "1.25"),
    ("openai", "gpt-4o-mini"): ("0.15", "0.60", "0.075"),
    ("google", "gemini-2.0-flash"): ("0.075", "0.30", "0.01875"),
    ("google", "gemini-2.5-flash"): ("0.30", "2.50", "0.075"),
    ("google", "gemini-2.5-pro"): ("1.25", "10", "0.31"),
    ("anthropic", "claude-3-5-haiku-20241022"): ("0.80", "4", "0.08"),
    ("openrouter", "meta-llama/llama-3.1-70b-instruct"): ("0.40", "0.40", None),
    ("ollama", "mistral"): ("0", "0", None),
    ("ollama", "llama3.2"): ("0", "0", None),
}


@pytest.mark.parametrize(("key", "figures"), SEEDED.items(), ids=[f"{p}/{m}" for p, m in SEEDED])
async def test_every_seeded_model_costs_exactly_the_published_price(db_url, key, figures):
    from llmrelay.db.engine import make_engine, sessions

    engine = make_engine(db_url)
    async with sessions(engine)() as s:
        book = await load_price_book(s)
    await engine.dispose()
    price = book.lookup(*key, BEFORE_0013)
    assert price is not None
    inp, out, cached = (Decimal(x) if x is not None else None for x in figures)
    # 123,457 input (10,000 of them cached) and 7,891 output tokens, hand-computed:
    u = Usage(input_tokens=123_457, output_tokens=7_891, cached_input_tokens=10_000)
    expected = (Decimal(113_457) * inp + Decimal(10_000) * (cached if cached is not None else inp)
                + Decimal(7_891) * out) / M
    assert compute_cost(u, price) == expected
    no_cache = Usage(input_tokens=123_457, output_tokens=7_891)
    assert compute_cost(no_cache, price) == (Decimal(123_457) * inp + Decimal(7_891) * out) / M


def test_cost_examples_to_the_fraction_of_a_cent():
    sonnet = Price.per_million("anthropic", "claude-3-5-sonnet-20241022", "3", "15", "0.30", "3.75")
    # 1,000 input of which 200 read from cache and 300 written to it, 500 output (100 reasoning)
    u = Usage(input_tokens=1000, output_tokens=500, cached_input_tokens=200, reasoning_tokens=100,
              cache_write_tokens=300)
    assert compute_cost(u, sonnet) == Decimal("0.0015") + Decimal("0.00006") + Decimal("0.001125") + Decimal("0.0075")
    flash = Price.per_million("google", "gemini-2.0-flash", "0.075", "0.30")
    assert compute_cost(Usage(1, 1), flash) == Decimal("0.000000375")
    assert compute_cost(Usage(0, 0), None) == 0  # no tokens: exactly free, priced or not
    assert compute_cost(Usage(1, 0), None) is None  # tokens without a price: unknown, never 0


tokens = st.integers(min_value=0, max_value=10_000_000)
per_million = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)


@given(inp=tokens, out=tokens, cached_share=st.floats(0, 1), write_share=st.floats(0, 1),
       reasoning_share=st.floats(0, 1), pi=per_million, po=per_million, pc=st.none() | per_million,
       pw=st.none() | per_million)
def test_cost_is_exact_linear_and_never_negative(inp, out, cached_share, write_share, reasoning_share, pi, po, pc, pw):
    cached = int(inp * cached_share)
    written = int((inp - cached) * write_share)
    u = Usage(inp, out, cached, int(out * reasoning_share), written)
    price = Price.per_million("p", "m", pi, po, pc, pw)
    cost = compute_cost(u, price)
    expected = ((inp - cached - written) * pi + cached * (pc if pc is not None else pi)
                + written * (pw if pw is not None else pi) + out * po) / M
    assert cost == expected  # 4 decimal places per 1M stay exact at the pico-dollar
    assert cost >= 0
    # reasoning tokens are billed as output: they never change the cost on their own
    assert compute_cost(Usage(inp, out, cached, 0, written), price) == cost
    # doubling every count doubles the cost exactly
    assert compute_cost(Usage(2 * inp, 2 * out, 2 * cached, 0, 2 * written), price) == 2 * cost


@given(a=st.decimals(0, 1000, places=12), b=st.decimals(0, 1000, places=12))
def test_cost_mismatch_is_symmetric_and_ignores_rounding(a, b):
    assert costs_differ(a, b) == costs_differ(b, a)
    assert not costs_differ(a, a)
    assert not costs_differ(a, None)


def test_price_history_applies_the_price_in_effect_at_the_time():
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    old = Price.per_million("openai", "gpt-4o", "5", "15", effective_from=t0)
    new = Price.per_million("openai", "gpt-4o", "2.50", "10", effective_from=t0 + timedelta(days=30))
    book = PriceBook([new, old])
    assert book.lookup("openai", "gpt-4o", t0 - timedelta(seconds=1)) is None
    assert book.lookup("openai", "gpt-4o", t0 + timedelta(days=29)) is old
    assert book.lookup("openai", "gpt-4o", t0 + timedelta(days=30)) is new
    assert book.current() == [new]
    assert book.history() == [old, new]


def test_wildcard_prices_every_other_model_of_a_provider():
    book = PriceBook([Price.per_million("ollama", "*", "0", "0", effective_from=datetime(2024, 1, 1, tzinfo=UTC))])
    assert compute_cost(Usage(100, 100), book.lookup("ollama", "any-model:7b")) == 0
    assert book.lookup("openai", "any-model") is None


async def test_sync_adds_rows_only_for_changed_models(db_url):
    from llmrelay.db.engine import make_engine, sessions

    engine = make_engine(db_url)
    maker = sessions(engine)
    entries = [("openai/gpt-4o-mini", Decimal("0.00000015"), Decimal("0.0000006"), Decimal("0.000000075"), None),
               ("openai/gpt-4o", Decimal("0.000002"), Decimal("0.00001"), Decimal("0.000001"), None),
               ("new/model", Decimal("0"), Decimal("0"), None, None),
               ("openrouter/auto", None, None, None, None)]
    async with maker() as s, s.begin():
        report = await sync_prices(s, await load_price_book(s), "openrouter", entries, "openrouter")
    assert [p.model for p in report.added] == ["openai/gpt-4o", "new/model"]
    assert report.unchanged == 1 and report.unknown == ["openrouter/auto"]
    async with maker() as s:
        book = await load_price_book(s)
    assert book.lookup("openrouter", "openai/gpt-4o").input == Decimal("0.002")  # per 1k
    old = book.lookup("openrouter", "openai/gpt-4o", datetime(2025, 1, 1, tzinfo=UTC))
    assert old.input == Decimal("0.0025")  # history kept
    async with maker() as s, s.begin():
        again = await sync_prices(s, await load_price_book(s), "openrouter", entries, "openrouter")
    assert again.added == [] and again.unchanged == 3
    await engine.dispose()


@given(st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False))
def test_a_figure_the_table_can_keep_reads_back_exactly(d):
    assert usd_per_1m(str(d)) == d and usd_per_1m(d) == d


@given(st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False))
def test_a_figure_finer_than_the_table_keeps_is_refused_not_rounded(d):
    if d == d.quantize(Decimal("1e-9")):
        assert usd_per_1m(str(d)) == d
    else:
        with pytest.raises(ValueError, match="more than 9 decimal places"):
            usd_per_1m(str(d))


@pytest.mark.parametrize(("value", "says"), [("x", "not a number"), ("-1", "non-negative"), ("NaN", "non-negative"),
                                             (True, "must be a number"), (1.5, "must be a number")])
def test_a_figure_that_is_no_price_says_why(value, says):
    with pytest.raises(ValueError, match=says):
        usd_per_1m(value)
