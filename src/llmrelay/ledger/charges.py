"""What one attempt costs, priced once: the moment it ends, on the request path.

The `Charge` an attempt gets is the single source of its cost: the answer's cost (`total_cost`
of a request's charges) and its ledger row (`RowCodec.build`) both read it, so the two cannot
disagree, even when the prices are reloaded between the answer and the row.

Two roads, one result.  `charge_of` is the reference: the price in effect when the attempt began
(`PriceBook.lookup`) and `compute_cost` in Decimal.  A `Pricer` gives the same charge without
any Decimal arithmetic for the common attempt (no cost figure from the provider, prices in whole
pico-dollars): the price of a provider/model is looked up once per stretch of time in which it
cannot change, held as a `Rate` in whole pico-dollars per 1k tokens, and the cost is an integer
count of 10^-15 USD rounded half-even to the pico-dollar — `compute_cost` exactly as long as
Decimal's 28 digits hold every intermediate value (checked).  Any other attempt takes the Decimal
road.

A tiered price is one `Rate` with its tiers' `Rate`s: an attempt whose input exceeds the first
threshold (`Rate.top`; one integer comparison for every other attempt) takes the tier's rate, and its
charge carries the tier's price, so the ledger row stores the prices that were applied.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..db.types import quantize
from ..types import Attempt
from .pricing import WILDCARD, Price, PriceBook, compute_cost

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = -(2**80)
_EXACT = 10**27
"""Costs below this many 10^-15 USD are computed exactly by Decimal's 28 digits too."""
_PICO = Decimal("1e-12")
_NO_TIER = 2**62
"""`Rate.top` of a price without tiers: more input tokens than any call has."""


class Charge:
    """One attempt's cost: `pico` whole pico-dollars (None: tokens used at no known price, never
    a made-up 0), the `price` in effect when it began (None: no price), and on the integer road
    that price as a `Rate`."""

    __slots__ = ("pico", "price", "rate")

    def __init__(self, pico: int | None, price: Price | None, rate: Rate | None = None) -> None:
        self.pico, self.price, self.rate = pico, price, rate

    @property
    def cost(self) -> Decimal | None:
        """The exact cost in USD (None: unpriced)."""
        return None if self.pico is None else quantize(Decimal(self.pico) * _PICO)

    @property
    def priced(self) -> bool:
        return self.pico is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charge) and (self.pico, self.price) == (other.pico, other.price)

    def __repr__(self) -> str:
        return f"Charge(cost={self.cost}, price={self.price!r})"


def total_cost(charges: Iterable[Charge]) -> Decimal | None:
    """What a request's attempts cost together (a failed stream's partial usage is billed too);
    None when some attempt used tokens of a model without a price."""
    pico = 0
    for c in charges:
        if c.pico is None:
            return None
        pico += c.pico
    return quantize(Decimal(pico) * _PICO)


def known_cost(charges: Iterable[Charge]) -> Decimal:
    """What the priced attempts of a request cost together (an unpriced one adds nothing: its cost is not
    known, and a budget that lets one serve has said it does not count it)."""
    return quantize(Decimal(sum(c.pico for c in charges if c.pico is not None)) * _PICO)


def started(attempt: Attempt) -> datetime:
    """When the attempt began, as the moment its price is looked up at (and its row is stamped with)."""
    return datetime.fromtimestamp(attempt.started_at or time.time(), UTC)


def charge_of(attempt: Attempt, book: PriceBook) -> Charge:
    """The reference: `attempt` priced by `compute_cost` in Decimal."""
    price = book.lookup(attempt.provider, attempt.model, started(attempt))
    cost = compute_cost(attempt.usage, price)
    if price is not None and price.tiers and attempt.usage is not None:
        price = price.for_input(attempt.usage.input_tokens)  # the prices applied
    return Charge(None if cost is None else int(cost.scaleb(12)), price)


# -- integer prices -----------------------------------------------------------------------------------


class Rate:
    """A price in whole pico-dollars per 1k tokens, with the fallbacks of `compute_cost` applied.
    `tiers`: (threshold, rate, price) of each tier, ascending; `top` the first threshold."""

    __slots__ = ("cached", "columns", "hour", "hour_column", "input", "output", "tiers", "top", "write")

    def __init__(self, input: int, output: int, cached: int, write: int, columns: tuple, hour: int | None = None,
                 tiers: tuple = ()) -> None:
        self.input, self.output, self.cached, self.write = input, output, cached, write
        self.hour = write if hour is None else hour
        self.columns, self.hour_column = columns[:4], columns[4]
        """input_price, output_price, cached_input_price, cache_write_price as the driver takes them; and
        cache_write_1h_price (a column of its own at the row's end)."""
        self.tiers = tiers
        self.top = tiers[0][0] if tiers else _NO_TIER

    @classmethod
    def of(cls, price: Price, money=int, null: Any = None) -> Rate | None:
        """`price` (and each of its tiers) in whole pico-dollars, or None when some part of it is not
        (then the attempt takes the Decimal road)."""
        picos = [_whole_pico(v) for v in price.figures()]
        if any(p is False for p in picos) or picos[0] is None or picos[1] is None:
            return None
        pin, pout, pcached, pwrite, phour = picos
        tiers = []
        for t in price.tiers:
            rate = cls.of(t, money, null)
            if rate is None:
                return None
            tiers.append((t.above, rate, t))
        write = pin if pwrite is None else pwrite
        return cls(pin, pout, pin if pcached is None else pcached, write,
                   tuple(null if p is None else money(p) for p in picos), phour, tuple(tiers))

    def at(self, input_tokens: int) -> tuple[Rate, Price | None]:
        """The tier's rate and price for a call of `input_tokens` past `top` (this rate and None otherwise)."""
        for above, rate, price in reversed(self.tiers):
            if input_tokens > above:
                return rate, price
        return self, None

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int, cache_write_tokens: int,
             cache_write_1h_tokens: int = 0) -> int:
        """`compute_cost` in pico-dollars at this rate (not its tiers), for tokens that used some; -1
        where this cannot be sure to equal it (negative or non-integer counts, amounts past Decimal's
        precision)."""
        if type(cached_input_tokens) is not int or type(cache_write_tokens) is not int:
            return -1  # (counts of any other type: a float input or output shows in `total`)
        cached = cached_input_tokens if cached_input_tokens < input_tokens else input_tokens  # min(), without a call
        left = input_tokens - cached
        written = cache_write_tokens if cache_write_tokens < left else left
        uncached = left - written
        if cached < 0 or written < 0 or uncached < 0 or output_tokens < 0:
            return -1
        total = uncached * self.input + cached * self.cached + written * self.write + output_tokens * self.output
        if cache_write_1h_tokens:  # the 1-hour part of the writes, at its own price
            if type(cache_write_1h_tokens) is not int or cache_write_1h_tokens < 0:
                return -1
            total += (cache_write_1h_tokens if cache_write_1h_tokens < written else written) * (self.hour - self.write)
        if type(total) is not int or total >= _EXACT:
            return -1
        pico, rest = divmod(total, 1000)  # 10^-15 USD -> pico-dollars, half-even as `quantize`
        if rest > 500 or (rest == 500 and pico & 1):
            pico += 1
        return pico


def _whole_pico(value: Decimal | None) -> int | bool | None:
    """`value` in pico-dollars; None for None; False when it is not a whole number of them (or
    not a plain non-negative Decimal), which `Money` would round or refuse."""
    if value is None:
        return None
    if type(value) is not Decimal or not value.is_finite() or value < 0 or value >= 10**15:
        return False
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -12:
        return False
    return int(value.scaleb(12))


def micros(t: float) -> int:
    """Seconds since the epoch in whole microseconds, rounded (half-even) as `datetime.fromtimestamp`
    rounds them: `micros(t)` and `fromtimestamp(t)` name the same microsecond."""
    if type(t) is int:
        return t * 1_000_000
    fraction, whole = math.modf(t)
    return int(whole) * 1_000_000 + round(fraction * 1e6)


def micros_of(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


class Pricer:
    """Charges of one price book, on the integer road where it is exact.  Its rates carry their
    price columns in the form a database driver takes (`money`, `null`: see `RowCodec`)."""

    def __init__(self, book: PriceBook, money=int, null: Any = None) -> None:
        self.book, self.money, self.null = book, money, null
        self._starts: dict[tuple[str, str], list[int]] = {}
        for p in book.history():
            self._starts.setdefault((p.provider, p.model), []).append(micros_of(p.effective_from))  # type: ignore[arg-type]
        self._known: dict[tuple[str, str], tuple[int, int, Price | None, Rate | None]] = {}

    def charge(self, attempt: Attempt) -> Charge:
        """`charge_of(attempt, self.book)`, without Decimal arithmetic where that is exact."""
        if attempt.provider_cost_usd is not None:
            return charge_of(attempt, self.book)  # its row compares costs: the Decimal road
        price, rate = self.price_at(attempt.provider, attempt.model, micros(attempt.started_at or time.time()))
        usage = attempt.usage
        if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):
            return Charge(0, price, rate)
        if price is None:
            return Charge(None, None)
        if rate is not None:
            if usage.input_tokens > rate.top:  # a tier's prices apply
                rate, price = rate.at(usage.input_tokens)  # type: ignore[assignment]
            pico = rate.cost(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                             usage.cache_write_tokens, usage.cache_write_1h_tokens)
            if pico >= 0:
                return Charge(pico, price, rate)
        return charge_of(attempt, self.book)

    def price_at(self, provider: str, model: str, micro: int) -> tuple[Price | None, Rate | None]:
        """The price in effect at `micro` (µs since the epoch), as `PriceBook.lookup` says, and as
        a `Rate` when it is in whole pico-dollars; asked of the book once per stretch of time in
        which its answer cannot change (between two `effective_from` of the model's or the
        provider's `*` prices)."""
        known = self._known.get((provider, model))
        if known is not None and known[0] <= micro < known[1]:
            return known[2], known[3]
        starts = sorted(self._starts.get((provider, model), []) + self._starts.get((provider, WILDCARD), []))
        i = bisect.bisect_right(starts, micro)
        price = self.book.lookup(provider, model, _EPOCH + timedelta(microseconds=micro))
        rate = None if price is None else Rate.of(price, self.money, self.null)
        self._known[provider, model] = (starts[i - 1] if i else _NEVER, starts[i] if i < len(starts) else -_NEVER,
                                        price, rate)
        return price, rate
