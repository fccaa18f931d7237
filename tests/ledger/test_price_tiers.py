"""Tiered prices (a second set of prices above a threshold of input tokens, applied to every token of the
call: the providers' "cliff"), 1-hour cache writes, and both on the integer road and in the table."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.db.budgets import BudgetStore
from llmrelay.db.engine import make_engine, sessions
from llmrelay.ledger.charges import Rate, charge_of
from llmrelay.ledger.pricing import Price, PriceBook, add_prices, compute_cost, cost_of, load_price_book
from llmrelay.ledger.rows import RowCodec
from llmrelay.routing.budgets import Budgets
from llmrelay.types import Attempt, Link, Usage

SINCE = datetime(2024, 1, 1, tzinfo=UTC)
M = Decimal(1_000_000)
PRO = Price.per_million("google", "gemini-2.5-pro", "1.25", "10", "0.125", effective_from=SINCE).tier(
    200_000, "2.5", "15", "0.25")
SONNET = Price.per_million("anthropic", "claude-sonnet-4-5", "3", "15", "0.3", "3.75", "6",
                           effective_from=SINCE).tier(200_000, "6", "22.5", "0.6", "7.5", "12")

per_million = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
maybe = st.one_of(st.none(), per_million)


def test_the_tier_applies_to_every_token_of_a_call_past_the_threshold():
    at, past = Usage(200_000, 1000), Usage(200_001, 1000)
    assert compute_cost(at, PRO) == (200_000 * Decimal("1.25") + 1000 * 10) / M
    assert compute_cost(past, PRO) == (200_001 * Decimal("2.5") + 1000 * 15) / M
    # cached input counts towards the threshold (it is input) and is billed at the tier's cached price
    cached = Usage(250_000, 10, cached_input_tokens=240_000)
    assert compute_cost(cached, PRO) == (10_000 * Decimal("2.5") + 240_000 * Decimal("0.25") + 10 * 15) / M
    assert PRO.for_input(200_000) is PRO and PRO.for_input(200_001).above == 200_000


def test_one_hour_cache_writes_have_their_own_price_and_fall_back_to_the_five_minute_one():
    # 1,000 input: 100 read, 300 written of which 200 for an hour; 50 output
    expected = (600 * 3 + 100 * Decimal("0.3") + 100 * Decimal("3.75") + 200 * 6 + 50 * 15) / M
    assert cost_of(SONNET, 1000, 50, 100, 300, 200) == expected
    no_hour = Price.per_million("anthropic", "m", "3", "15", "0.3", "3.75")
    assert cost_of(no_hour, 1000, 50, 100, 300, 200) == (600 * 3 + 100 * Decimal("0.3") + 300 * Decimal("3.75")
                                                         + 50 * 15) / M
    assert cost_of(SONNET, 1000, 50, 100, 300, 900) == cost_of(SONNET, 1000, 50, 100, 300, 300)  # clipped


@given(base=st.tuples(per_million, per_million, maybe, maybe, maybe),
       tier=st.tuples(per_million, per_million, maybe, maybe, maybe),
       above=st.integers(1, 1_000_000), inp=st.integers(0, 3_000_000), out=st.integers(0, 100_000),
       shares=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
@settings(max_examples=500)
def test_tier_math_is_the_cliff_exact_and_the_integer_road_agrees(base, tier, above, inp, out, shares):
    price = Price.per_million("p", "m", *base, effective_from=SINCE).tier(above, *tier)
    cached = int(inp * shares[0])
    written = int((inp - cached) * shares[1])
    hour = int(written * shares[2])
    applied = base if inp <= above else tier
    pin, pout, pc, pw, ph = applied
    pc = pin if pc is None else pc
    pw = pin if pw is None else pw
    ph = pw if ph is None else ph
    expected = ((inp - cached - written) * pin + cached * pc + (written - hour) * pw + hour * ph + out * pout) / M
    assert cost_of(price, inp, out, cached, written, hour) == expected  # 4 places per 1M: exact at the pico-dollar
    rate = Rate.of(price)
    assert rate is not None
    if inp > rate.top:
        rate, _ = rate.at(inp)
    assert Decimal(rate.cost(inp, out, cached, written, hour)).scaleb(-12) == expected


@given(base=st.tuples(per_million, per_million), extra=st.tuples(per_million, per_million),
       above=st.integers(1, 500_000), out=st.integers(0, 10_000))
def test_a_dearer_tier_never_makes_a_larger_call_cheaper(base, extra, above, out):
    price = Price.per_million("p", "m", *base).tier(above, base[0] + extra[0], base[1] + extra[1])
    assert cost_of(price, above + 1, out) >= cost_of(price, above, out)
    assert cost_of(price, above, out) == cost_of(Price.per_million("p", "m", *base), above, out)


def test_tiers_need_a_positive_threshold_each_once():
    with pytest.raises(ValueError):
        PRO.tier(0, "1", "1")
    with pytest.raises(ValueError):
        PRO.tier(200_000, "1", "1")
    three = PRO.tier(1_000_000, "5", "30").tier(100_000, "2", "12")
    assert [t.above for t in three.tiers] == [100_000, 200_000, 1_000_000]
    assert three.for_input(150_000).input == Decimal("0.002") and three.for_input(2_000_000).output == Decimal("0.03")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("tokens", [1_000, 200_000, 200_001, 1_000_000])
def test_the_charge_and_the_row_carry_the_prices_of_the_tier_applied(dialect, tokens):
    book = PriceBook([PRO])
    a = Attempt(1, "google", "gemini-2.5-pro", "success", usage=Usage(tokens, 500, 1000), started_at=time.time())
    fast, reference = RowCodec(dialect).charge(a, book), charge_of(a, book)
    assert fast == reference and fast.rate is not None  # the integer road, the same charge
    applied = PRO.for_input(tokens)
    assert (reference.price.input, reference.price.output) == (applied.input, applied.output)
    assert reference.cost == compute_cost(a.usage, PRO)


def test_a_book_joins_tier_rows_to_their_base_row_of_the_same_moment():
    base = Price.per_million("google", "gemini-2.5-pro", "1.25", "10", effective_from=SINCE)
    tier_row = Price.per_million("google", "gemini-2.5-pro", "2.5", "15", effective_from=SINCE, above=200_000)
    later = Price.per_million("google", "gemini-2.5-pro", "1", "8", effective_from=datetime(2025, 1, 1, tzinfo=UTC))
    stray = Price.per_million("google", "x", "9", "9", effective_from=SINCE, above=5)  # no base row: dropped
    book = PriceBook([tier_row, later, base, stray])
    old = book.lookup("google", "gemini-2.5-pro", datetime(2024, 6, 1, tzinfo=UTC))
    assert [t.above for t in old.tiers] == [200_000] and old.for_input(300_000).input == Decimal("0.0025")
    assert book.lookup("google", "gemini-2.5-pro").tiers == ()  # the later price has no tier: none applies
    assert book.lookup("google", "x") is None


def test_the_worst_case_of_a_link_uses_the_tier_its_estimated_input_selects():
    budgets = Budgets(BudgetStore(None), lambda: PriceBook([PRO]), hold_seconds=60)  # type: ignore[arg-type]
    link = Link("google", "gemini-2.5-pro")
    small = budgets.worst_case(link, 3 * 1000, 0, 0, 100)
    large = budgets.worst_case(link, 3 * 300_000, 0, 0, 100)
    assert small == (1000 * Decimal("1.25") + 100 * 10) / M
    assert large == (300_000 * Decimal("2.5") + 100 * 15) / M


async def test_a_tiered_price_with_hour_writes_is_stored_and_read_back(db_url):
    engine = make_engine(db_url)
    maker = sessions(engine)
    price = Price.per_million("anthropic", "tiered-test", "3", "15", "0.3", "3.75", "6",
                              effective_from=datetime(2026, 1, 1, tzinfo=UTC)).tier(
        200_000, "6", "22.5", "0.6", "7.5", "12")
    async with maker() as s, s.begin():
        await add_prices(s, [price])
    async with maker() as s:
        book = await load_price_book(s)
    await engine.dispose()
    got = book.lookup("anthropic", "tiered-test")
    assert got is not None and got.same_as(price) and got.tiers[0].cache_write_1h == Decimal("0.012")
    assert [p.model for p in book.current()].count("tiered-test") == 1  # a tier row is not a price of its own
