"""A link's worst case bounds what the call can cost: any usage within the estimate (input no more than the
estimated tokens, output no more than max_tokens, any split into cached, cache-written and plain input)
costs no more, at any price (Decimal end to end)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from llmrelay.db.budgets import BudgetStore
from llmrelay.ledger.pricing import Price, PriceBook, compute_cost
from llmrelay.routing.budgets import CHARS_PER_TOKEN, TOKENS_PER_IMAGE, TOKENS_PER_TOOL, Budgets
from llmrelay.types import Link, Usage

per_million = st.decimals(min_value=0, max_value=200, places=3, allow_nan=False, allow_infinity=False)
SINCE = datetime(2024, 1, 1, tzinfo=UTC)
maybe = st.one_of(st.none(), per_million)


@given(per_million, per_million, maybe, maybe, st.integers(0, 200_000), st.integers(0, 5), st.integers(0, 20),
       st.integers(1, 64_000), st.data())
def test_no_usage_within_the_estimate_costs_more_than_the_worst_case(inp, out, cached, write, chars, images,
                                                                     tools, max_tokens, data):
    price = Price.per_million("openai", "m", inp, out, cached, write, effective_from=SINCE)
    budgets = Budgets(BudgetStore(None), lambda: PriceBook([price]), hold_seconds=60)  # type: ignore[arg-type]
    worst = budgets.worst_case(Link("openai", "m"), chars, images, tools, max_tokens)
    estimate = -(-chars // CHARS_PER_TOKEN) + images * TOKENS_PER_IMAGE + tools * TOKENS_PER_TOOL
    tokens_in = data.draw(st.integers(0, estimate))
    cached_tokens = data.draw(st.integers(0, tokens_in))
    written = data.draw(st.integers(0, tokens_in - cached_tokens))
    usage = Usage(input_tokens=tokens_in, output_tokens=data.draw(st.integers(0, max_tokens)),
                  cached_input_tokens=cached_tokens, cache_write_tokens=written)
    cost = compute_cost(usage, price)
    assert isinstance(worst, Decimal) and cost is not None
    # both are rounded to the pico-dollar, each at most half a pico-dollar off the exact figure
    assert cost <= worst + Decimal("1e-12")


def test_a_model_without_a_price_has_no_worst_case_and_a_free_one_costs_nothing():
    book = PriceBook([Price.per_million("ollama", "*", 0, 0, effective_from=SINCE)])
    budgets = Budgets(BudgetStore(None), lambda: book, hold_seconds=60)  # type: ignore[arg-type]
    assert budgets.worst_case(Link("ollama", "llama3.2"), 10_000, 2, 3, 4096) == 0
    assert budgets.worst_case(Link("openai", "gpt-9"), 10, 0, 0, 10) is None
