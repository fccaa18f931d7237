"""Prices with history, tiers by input size, and the exact cost of a call.

A price is a row of `ai_provider_costs` effective from a moment on; the price applied to a
call is the one in effect when the call began, so a price change never rewrites history.
Money is `Decimal` from end to end and every amount is rounded (half-even) to the pico-dollar.
The table keeps USD per 1k tokens (its columns say so); everything a person reads says USD per
1M tokens (`per_million_view`, the CLI, the CSV export).

A price may have tiers by input size (Gemini 2.5 Pro and long-context Claude Sonnet above 200k
input tokens): a tier is a whole second set of prices that applies to *every* token of a call
whose input tokens (cached and written ones included) exceed its threshold, the "cliff" the
providers bill (and genai-prices models).  In the table a tier is a row of its own with the same
provider, model and `effective_from` as its base row and `above_input_tokens` > 0.

The cost of a call, from the provider's own usage figures, at the tier its input selects:

    uncached input   × input price        (uncached = input − cached read − cache write)
  + cached input     × cached-input price (the input price where no cached price is known)
  + 5-min writes     × cache-write price  (the input price where none is known)
  + 1-hour writes    × 1h cache-write price (the cache-write price where none is known)
  + output           × output price       (reasoning included: providers bill it as output)

Cache writes are `Usage.cache_write_tokens`; the 1-hour part of them is `cache_write_1h_tokens`
where the usage carries it (Anthropic reports `cache_creation.ephemeral_1h_input_tokens`), else 0.

A model without a known price costs NULL and is flagged `unpriced`, never 0.  A call that used
no tokens at all (a skip, a refused connection) costs exactly 0, priced or not.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import AIProviderCost
from ..db.types import quantize, utcnow
from ..types import Usage

WILDCARD = "*"
_THOUSAND = Decimal(1000)
_MILLION = Decimal(1_000_000)
FIGURES = ("input", "output", "cached_input", "cache_write", "cache_write_1h")
"""A price's figures, in the order the table, the CLI and price files name them."""
PER_1M_PLACES = Decimal("1e-9")
"""The table keeps whole pico-dollars per 1k tokens: 9 decimal places of USD per 1M."""


def usd_per_1m(value: object) -> Decimal:
    """A figure of a price as given (the CLI, a price file): USD per 1M tokens, exactly as the table can keep
    it.  ValueError says what is wrong with it (the caller names where it came from)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"must be a number of USD per 1M tokens, not {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"must be a non-negative amount of USD per 1M tokens, not {value!r}")
    if d != d.quantize(PER_1M_PLACES):
        raise ValueError(f"more than 9 decimal places per 1M tokens ({value!r}): the table keeps whole "
                         f"pico-dollars per 1k")
    return d


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1k tokens.  `above` > 0: a tier, for calls of more input tokens than that; on a base
    price (`above` 0), `tiers` are its tiers in ascending order of threshold."""

    provider: str
    model: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    effective_from: datetime | None = None
    source: str = "manual"
    cache_write_1h: Decimal | None = None
    above: int = 0
    tiers: tuple[Price, ...] = ()

    @classmethod
    def per_million(cls, provider: str, model: str, input: str | Decimal, output: str | Decimal,
                    cached_input: str | Decimal | None = None, cache_write: str | Decimal | None = None,
                    cache_write_1h: str | Decimal | None = None, **kw) -> Price:
        """A price given, as providers publish them, in USD per 1M tokens."""
        return cls(provider, model, _k(input), _k(output), _k(cached_input), _k(cache_write),  # type: ignore[arg-type]
                   cache_write_1h=_k(cache_write_1h), **kw)

    def tier(self, above: int, input: str | Decimal, output: str | Decimal, cached_input: str | Decimal | None = None,
             cache_write: str | Decimal | None = None, cache_write_1h: str | Decimal | None = None) -> Price:
        """This price with one more tier (figures in USD per 1M tokens) for calls of more than `above` input tokens."""
        if above <= 0:
            raise ValueError("a tier's threshold is a positive number of input tokens")
        if any(t.above == above for t in self.tiers):
            raise ValueError(f"two tiers above {above} input tokens")
        new = Price(self.provider, self.model, _k(input), _k(output), _k(cached_input), _k(cache_write),  # type: ignore[arg-type]
                    self.effective_from, self.source, _k(cache_write_1h), above)
        return replace(self, tiers=tuple(sorted((*self.tiers, new), key=lambda t: t.above)))

    def for_input(self, input_tokens: int) -> Price:
        """The price that applies to a call of `input_tokens` input tokens: the highest tier whose
        threshold it exceeds, else this one."""
        tiers = self.tiers
        if not tiers or input_tokens <= tiers[0].above:
            return self
        for t in reversed(tiers):
            if input_tokens > t.above:
                return t
        return self  # (unreachable)

    def figures(self) -> tuple[Decimal | None, ...]:
        return (self.input, self.output, self.cached_input, self.cache_write, self.cache_write_1h)

    def per_million_view(self) -> dict[str, Decimal | None]:
        """The figures in USD per 1M tokens (keys: `FIGURES`)."""
        return {name: None if v is None else (v * _THOUSAND).normalize() for name, v in zip(FIGURES, self.figures(),
                                                                                           strict=True)}

    def same_as(self, other: Price | None) -> bool:
        """Whether `other` charges exactly what this does (figures and tiers; dates and sources aside)."""
        return (other is not None and self.figures() == other.figures() and self.above == other.above
                and len(self.tiers) == len(other.tiers)
                and all(a.same_as(b) for a, b in zip(self.tiers, other.tiers, strict=True)))

    def with_tiers(self, tiers: Iterable[Price]) -> Price:
        return replace(self, tiers=tuple(sorted(tiers, key=lambda t: t.above)))


def _k(per_1m: str | Decimal | None) -> Decimal | None:
    """USD per 1M tokens as the table keeps it: per 1k."""
    return None if per_1m is None else quantize(Decimal(per_1m) / _THOUSAND)


def compute_cost(usage: Usage | None, price: Price | None) -> Decimal | None:
    """The exact cost of `usage` at `price`; None when tokens were used but no price is known."""
    if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):
        return Decimal(0)
    if price is None:
        return None
    return cost_of(price, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                   usage.cache_write_tokens, usage.cache_write_1h_tokens)


def cost_of(price: Price, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0,
            cache_write_tokens: int = 0, cache_write_1h_tokens: int = 0) -> Decimal:
    """The exact cost of these token counts at `price` (at the tier `input_tokens` selects).
    Counts that cannot be (more cached or written than input, more 1-hour writes than writes) are
    clipped: cached first, then writes, then 1-hour writes."""
    p = price.for_input(input_tokens)
    cached = min(cached_input_tokens, input_tokens)
    written = min(cache_write_tokens, input_tokens - cached)
    hour = min(cache_write_1h_tokens, written)
    uncached = input_tokens - cached - written
    write = p.cache_write if p.cache_write is not None else p.input
    total = (uncached * p.input
             + cached * (p.cached_input if p.cached_input is not None else p.input)
             + (written - hour) * write
             + hour * (p.cache_write_1h if p.cache_write_1h is not None else write)
             + output_tokens * p.output)
    return quantize(total / _THOUSAND)


def costs_differ(ours: Decimal | None, theirs: Decimal | None) -> bool:
    """Whether a provider's own cost figure disagrees with ours by more than rounding
    (0.5 % of the larger, or a billionth of a dollar, whichever is more)."""
    if ours is None or theirs is None:
        return False
    tolerance = max(Decimal("0.000000001"), max(abs(ours), abs(theirs)) * Decimal("0.005"))
    return abs(ours - theirs) > tolerance


class PriceBook:
    """Every known price, indexed for lookup by provider, model and moment.  Tier rows (`above` > 0)
    join the base price of the same provider, model and `effective_from`; a tier without one is
    dropped (a base price must say what smaller calls cost)."""

    def __init__(self, prices: Iterable[Price] = ()) -> None:
        self._index: dict[tuple[str, str], tuple[list[datetime], list[Price]]] = {}
        now = utcnow()
        bases: dict[tuple[str, str, datetime], Price] = {}
        tiers: dict[tuple[str, str, datetime], list[Price]] = {}
        for p in prices:
            key = (p.provider, p.model, p.effective_from or now)
            if p.above:
                tiers.setdefault(key, []).append(p)
            else:
                bases[key] = p
        for key in sorted(bases):
            p = bases[key]
            if key in tiers:
                p = p.with_tiers([*p.tiers, *tiers[key]])
            times, entries = self._index.setdefault(key[:2], ([], []))
            times.append(key[2])
            entries.append(p)

    def lookup(self, provider: str, model: str, at: datetime | None = None) -> Price | None:
        """The price of `provider`/`model` in effect at `at` (now by default): the model's own
        row, else the provider's `*` row.  A tiered price comes whole: `Price.for_input` picks the tier."""
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

    def models(self) -> list[tuple[str, str]]:
        """Every provider/model with a price row of its own (or `*`)."""
        return sorted(self._index)


# -- the table ----------------------------------------------------------------------------------


def _from_row(row: AIProviderCost) -> Price:
    return Price(row.provider, row.model, row.input_cost_per_1k_tokens, row.output_cost_per_1k_tokens,
                 row.cached_input_cost_per_1k_tokens, row.cache_write_cost_per_1k_tokens, row.effective_from,
                 row.source, row.cache_write_1h_cost_per_1k_tokens, row.above_input_tokens or 0)


async def load_price_book(session: AsyncSession) -> PriceBook:
    rows = (await session.execute(select(AIProviderCost))).scalars().all()
    return PriceBook(_from_row(r) for r in rows)


def _rows(p: Price, at: datetime, now: datetime) -> list[dict]:
    """The table rows of a price: its base row, then one per tier, all effective from `at`."""
    return [{"provider": p.provider, "model": p.model, "input_cost_per_1k_tokens": t.input,
             "output_cost_per_1k_tokens": t.output, "cached_input_cost_per_1k_tokens": t.cached_input,
             "cache_write_cost_per_1k_tokens": t.cache_write, "cache_write_1h_cost_per_1k_tokens": t.cache_write_1h,
             "above_input_tokens": t.above, "source": p.source, "effective_from": at, "updated_at": now}
            for t in (p, *p.tiers)]


async def add_prices(session: AsyncSession, prices: Iterable[Price]) -> int:
    """New price rows (effective now unless a price says otherwise), a tiered price's tiers with it.
    Earlier rows stay.  Returns how many prices were added."""
    now = utcnow()
    prices = list(prices)
    rows = [r for p in prices for r in _rows(p, p.effective_from or now, now)]
    if rows:
        await session.execute(insert(AIProviderCost), rows)
    return len(prices)


@dataclass(frozen=True, slots=True)
class Change:
    """A price that a sync adds: `old` is the one it replaces (None: the model had no price of its own)."""

    new: Price
    old: Price | None


@dataclass(frozen=True, slots=True)
class SyncReport:
    changes: list[Change]
    unchanged: int
    unknown: list[str]
    """Models listed without a usable price (missing, negative or not a number)."""

    @property
    def added(self) -> list[Price]:
        return [c.new for c in self.changes]


def plan_sync(book: PriceBook, prices: Iterable[Price], unknown: Iterable[str] = ()) -> SyncReport:
    """Which of `prices` differ from the price in effect at their `effective_from` (now when they
    have none): those are the changes a sync writes; the rest are unchanged."""
    now = utcnow()
    changes: list[Change] = []
    unchanged = 0
    for price in prices:
        at = price.effective_from or now
        current = book.lookup(price.provider, price.model, at)
        own = current if current is not None and current.model == price.model else None
        if price.same_as(own):
            unchanged += 1
        else:
            changes.append(Change(price if price.effective_from else replace(price, effective_from=now), own))
    return SyncReport(changes, unchanged, list(unknown))


async def write_sync(session: AsyncSession, report: SyncReport) -> None:
    """Write the changes of a planned sync (`plan_sync`): new dated rows, earlier rows untouched."""
    await add_prices(session, (c.new for c in report.changes))


async def sync_prices(session: AsyncSession, book: PriceBook, provider: str,
                      entries: Iterable[tuple[str, Decimal | None, Decimal | None, Decimal | None, Decimal | None]],
                      source: str) -> SyncReport:
    """Add a price row for every listed model whose price (USD per token: prompt, completion,
    cache read, cache write) differs from the one in effect; the rest stay as they are."""
    prices, unknown = per_token_prices(provider, entries, source)
    report = plan_sync(book, prices, unknown)
    await write_sync(session, report)
    return report


def per_token_prices(provider: str, entries: Iterable[tuple[str, Decimal | None, Decimal | None, Decimal | None,
                                                              Decimal | None]],
                     source: str) -> tuple[list[Price], list[str]]:
    """Prices from (model, prompt, completion, cache read, cache write) in USD per token (OpenRouter's
    list), and the models listed without a usable price."""
    prices: list[Price] = []
    unknown: list[str] = []
    for model, prompt, completion, cache_read, cache_write in entries:
        if prompt is None or completion is None:
            unknown.append(model)
            continue

        def k(v: Decimal | None) -> Decimal | None:
            return None if v is None else quantize(v * _THOUSAND)

        prices.append(Price(provider, model, k(prompt), k(completion), k(cache_read), k(cache_write),  # type: ignore[arg-type]
                            None, source))
    return prices, unknown
