"""Prices with history, and the exact cost of a call.

A price is a row of `ai_provider_costs` effective from a moment on; the price applied to a
call is the one in effect when the call began, so a price change never rewrites history.
Money is `Decimal` from end to end and every amount is rounded (half-even) to the pico-dollar.

The cost of a call, from the provider's own usage figures:

    uncached input  × input price          (uncached = input − cached read − cache write)
  + cached input    × cached-input price   (the input price where no cached price is known)
  + cache writes    × cache-write price    (the input price where none is known)
  + output          × output price         (reasoning included: providers bill it as output)

A model without a known price costs NULL and is flagged `unpriced`, never 0.  A call that used
no tokens at all (a skip, a refused connection) costs exactly 0, priced or not.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import AIProviderCost
from ..db.types import quantize, utcnow
from ..types import Usage

WILDCARD = "*"
_THOUSAND = Decimal(1000)
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1k tokens."""

    provider: str
    model: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    effective_from: datetime | None = None
    source: str = "manual"

    @classmethod
    def per_million(cls, provider: str, model: str, input: str | Decimal, output: str | Decimal,
                    cached_input: str | Decimal | None = None, cache_write: str | Decimal | None = None,
                    **kw) -> Price:
        """A price given, as providers publish them, in USD per 1M tokens."""
        def k(v: str | Decimal | None) -> Decimal | None:
            return None if v is None else quantize(Decimal(v) / _THOUSAND)
        return cls(provider, model, k(input), k(output), k(cached_input), k(cache_write), **kw)  # type: ignore

    def per_million_view(self) -> dict[str, Decimal | None]:
        def m(v: Decimal | None) -> Decimal | None:
            return None if v is None else (v * _THOUSAND).normalize()
        return {"input": m(self.input), "output": m(self.output), "cached_input": m(self.cached_input),
                "cache_write": m(self.cache_write)}

    def same_as(self, other: Price | None) -> bool:
        return other is not None and (self.input, self.output, self.cached_input, self.cache_write) == (
            other.input, other.output, other.cached_input, other.cache_write)


def compute_cost(usage: Usage | None, price: Price | None) -> Decimal | None:
    """The exact cost of `usage` at `price`; None when tokens were used but no price is known."""
    if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):
        return Decimal(0)
    if price is None:
        return None
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    uncached = usage.input_tokens - cached - written
    total = (uncached * price.input
             + cached * (price.cached_input if price.cached_input is not None else price.input)
             + written * (price.cache_write if price.cache_write is not None else price.input)
             + usage.output_tokens * price.output)
    return quantize(total / _THOUSAND)


def costs_differ(ours: Decimal | None, theirs: Decimal | None) -> bool:
    """Whether a provider's own cost figure disagrees with ours by more than rounding
    (0.5 % of the larger, or a billionth of a dollar, whichever is more)."""
    if ours is None or theirs is None:
        return False
    tolerance = max(Decimal("0.000000001"), max(abs(ours), abs(theirs)) * Decimal("0.005"))
    return abs(ours - theirs) > tolerance


class PriceBook:
    """Every known price, indexed for lookup by provider, model and moment."""

    def __init__(self, prices: Iterable[Price] = ()) -> None:
        self._index: dict[tuple[str, str], tuple[list[datetime], list[Price]]] = {}
        for p in sorted(prices, key=lambda p: (p.provider, p.model, p.effective_from or utcnow())):
            times, entries = self._index.setdefault((p.provider, p.model), ([], []))
            times.append(p.effective_from)  # type: ignore[arg-type]
            entries.append(p)

    def lookup(self, provider: str, model: str, at: datetime | None = None) -> Price | None:
        """The price of `provider`/`model` in effect at `at` (now by default): the model's own
        row, else the provider's `*` row."""
        at = at or utcnow()
        for key in ((provider, model), (provider, WILDCARD)):
            found = self._index.get(key)
            if found is not None:
                times, entries = found
                i = bisect.bisect_right(times, at)
                if i:
                    return entries[i - 1]
        return None

    def current(self) -> list[Price]:
        """The price in effect now for every provider/model."""
        now = utcnow()
        return [p for (prov, model) in sorted(self._index) if (p := self.lookup(prov, model, now)) is not None
                and p.model == model]

    def history(self) -> list[Price]:
        return [p for key in sorted(self._index) for p in self._index[key][1]]


# -- the table ----------------------------------------------------------------------------------


def _from_row(row: AIProviderCost) -> Price:
    return Price(row.provider, row.model, row.input_cost_per_1k_tokens, row.output_cost_per_1k_tokens,
                 row.cached_input_cost_per_1k_tokens, row.cache_write_cost_per_1k_tokens, row.effective_from,
                 row.source)


async def load_price_book(session: AsyncSession) -> PriceBook:
    rows = (await session.execute(select(AIProviderCost))).scalars().all()
    return PriceBook(_from_row(r) for r in rows)


async def add_prices(session: AsyncSession, prices: Iterable[Price]) -> int:
    """New price rows (effective now unless a price says otherwise).  Earlier rows stay."""
    now = utcnow()
    rows = [{"provider": p.provider, "model": p.model, "input_cost_per_1k_tokens": p.input,
             "output_cost_per_1k_tokens": p.output, "cached_input_cost_per_1k_tokens": p.cached_input,
             "cache_write_cost_per_1k_tokens": p.cache_write, "source": p.source,
             "effective_from": p.effective_from or now, "updated_at": now} for p in prices]
    if rows:
        await session.execute(insert(AIProviderCost), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: list[Price]
    unchanged: int
    unknown: list[str]
    """Models listed without a usable price (missing, negative or not a number)."""


async def sync_prices(session: AsyncSession, book: PriceBook, provider: str,
                      entries: Iterable[tuple[str, Decimal | None, Decimal | None, Decimal | None, Decimal | None]],
                      source: str) -> SyncReport:
    """Add a price row for every listed model whose price (USD per token: prompt, completion,
    cache read, cache write) differs from the one in effect; the rest stay as they are."""
    now = utcnow()
    added: list[Price] = []
    unchanged, unknown = 0, []
    for model, prompt, completion, cache_read, cache_write in entries:
        if prompt is None or completion is None:
            unknown.append(model)
            continue
        price = Price(provider, model, quantize(prompt * _THOUSAND), quantize(completion * _THOUSAND),
                      None if cache_read is None else quantize(cache_read * _THOUSAND),
                      None if cache_write is None else quantize(cache_write * _THOUSAND), now, source)
        current = book.lookup(provider, model, now)
        if current is not None and current.model == model and price.same_as(current):
            unchanged += 1
        else:
            added.append(price)
    await add_prices(session, added)
    return SyncReport(added, unchanged, unknown)
