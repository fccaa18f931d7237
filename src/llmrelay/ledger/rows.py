"""Ledger rows: one attempt as its `ai_model_usage` row, built in the form the driver stores as is.

`build_row` is the reference: the row as a dict of Python values (UUID, Decimal, aware
datetime), the values SQLAlchemy's column types take.  A `RowCodec` builds the same row as a
tuple that goes to the driver untouched (`exec_driver_sql`): SQLAlchemy's per-row parameter
processing is done here, by plain code, and the database stores exactly what it stored before.

    column       SQLite (sqlite3), as SQLAlchemy stores it     PostgreSQL (asyncpg)
    id           32 hex digits (`Uuid`)                         32 hex digits (asyncpg takes them as uuid)
    money        integer pico-dollars (`Money`)                 integer pico-dollars as text, scaled by the
                                                                statement: exact NUMERIC(24, 12)
    created_at   naive UTC "YYYY-MM-DD HH:MM:SS.ffffff"         the aware UTC datetime
                 (SQLAlchemy's SQLite DATETIME text)
    booleans     0 / 1                                          bool
    NULL         `SQLITE_NULL`, turned into NULL by the         None
                 statement (NULLIF)

Why these forms: asyncpg's binary NUMERIC encoder costs about 2 µs a Decimal, and Python's
sqlite3 sends every None and bool through its adapter lookup (about 1,000 instructions each)
where an int, float or str is bound directly.

The common attempt (no cost figure from the provider, prices in whole pico-dollars) is built
without any Decimal arithmetic: its cost is an integer count of 10^-15 USD (tokens × pico-dollars
per 1k tokens) rounded half-even to the pico-dollar, which is `compute_cost` exactly as long as
Decimal's 28 digits hold every intermediate value (checked).  Any other attempt goes through
`build_row` and is converted, so the two paths cannot disagree.

Spool lines are the JSON of the reference row, in the same format as ever: a spool file written
by one version replays in another.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, String

from ..db.models import AIModelUsage
from ..db.types import Money, quantize
from ..redaction import redact
from ..types import Attempt, RequestContext, decimal_or_none
from .pricing import WILDCARD, Price, PriceBook, compute_cost, costs_differ

LOCAL_USER = "local"
MAX_ERROR = 2000
_TABLE = AIModelUsage.__table__
COLUMNS: tuple[str, ...] = tuple(c.name for c in _TABLE.columns)
MONEY_COLUMNS = frozenset(c.name for c in _TABLE.columns if isinstance(c.type, Money))
NULLABLE_COLUMNS = frozenset(c.name for c in _TABLE.columns if c.nullable)
_BOOLEAN_COLUMNS = frozenset(c.name for c in _TABLE.columns if isinstance(c.type, Boolean))
_WIDTH = {c.name: c.type.length for c in _TABLE.columns if isinstance(c.type, String) and c.type.length}
_BUILT = ("id", "request_id", "attempt", "user_id", "agent_id", "provider", "model", "status", "error_kind",
          "error_message", "prompt_tokens", "completion_tokens", "total_tokens", "cached_prompt_tokens",
          "reasoning_tokens", "cache_write_tokens", "cost_usd", "input_price", "output_price", "cached_input_price",
          "cache_write_price", "unpriced", "provider_cost_usd", "cost_mismatch", "latency_ms", "created_at",
          "first_on_provider", "first_on_model")
if COLUMNS != _BUILT:  # RowCodec.build writes its tuple in this order
    raise RuntimeError(f"ai_model_usage columns changed; update ledger/rows.py: {COLUMNS}")
_REQUEST, _USER, _AGENT, _PROVIDER, _MODEL = (_WIDTH[c] for c in ("request_id", "user_id", "agent_id", "provider",
                                                                   "model"))
_COST, _PROVIDER_AT = COLUMNS.index("cost_usd"), COLUMNS.index("provider")
SQLITE_NULL = 0.5
"""NULL, for SQLite: a float no column of the table ever holds (money is integer pico-dollars
there), which sqlite3 binds without adaptation and the statement turns back into NULL."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = -(2**80)
_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # sqlalchemy.dialects.sqlite.DATETIME's storage format
_EXACT = 10**27
"""Costs below this many 10^-15 USD are computed exactly by Decimal's 28 digits too."""
_MASK62 = (1 << 62) - 1
_UUID7 = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 9562 variant


def new_id() -> str:
    """A unique id, as 32 hex digits, that sorts by creation time: the UUIDv7 layout of RFC 9562
    (48-bit Unix milliseconds, then 74 random bits).  Indexed, such ids are appended at the
    B-tree's right edge, where random ones (UUIDv4) land on a random page each."""
    rand = int.from_bytes(os.urandom(10), "big")
    ms = time.time_ns() // 1_000_000
    return "%032x" % ((ms << 80) | _UUID7 | ((rand >> 68) << 64) | (rand & _MASK62))


# -- the reference --------------------------------------------------------------------------------


def build_row(ctx: RequestContext, attempt: Attempt, book: PriceBook) -> dict[str, Any]:
    """The `ai_model_usage` row of one attempt, priced at the moment the attempt began."""
    created = datetime.fromtimestamp(attempt.started_at or time.time(), UTC)
    usage = attempt.usage
    price = book.lookup(attempt.provider, attempt.model, created)
    cost = compute_cost(usage, price)
    theirs = decimal_or_none(attempt.provider_cost_usd)
    status = attempt.status
    if status == "success" and attempt.link_index > 0:
        status = "fallback"
    message = attempt.error_message
    return {
        "id": uuid.UUID(new_id()), "request_id": clip(ctx.request_id, "request_id"), "attempt": attempt.position,
        "user_id": clip(ctx.user_id or LOCAL_USER, "user_id"), "agent_id": clip(ctx.agent_id, "agent_id"),
        "provider": clip(attempt.provider, "provider"), "model": clip(attempt.model, "model"), "status": status,
        "error_kind": attempt.error_kind.value if attempt.error_kind else None,
        "error_message": redact(message)[:MAX_ERROR] if message else None,
        "prompt_tokens": usage.input_tokens if usage else 0,
        "completion_tokens": usage.output_tokens if usage else 0,
        "total_tokens": usage.total_tokens if usage else 0,
        "cached_prompt_tokens": usage.cached_input_tokens if usage else 0,
        "reasoning_tokens": usage.reasoning_tokens if usage else 0,
        "cache_write_tokens": usage.cache_write_tokens if usage else 0,
        "cost_usd": cost,
        "input_price": price.input if price else None,
        "output_price": price.output if price else None,
        "cached_input_price": price.cached_input if price else None,
        "cache_write_price": price.cache_write if price else None,
        "unpriced": cost is None,
        "provider_cost_usd": theirs,
        "cost_mismatch": costs_differ(cost, theirs),
        "latency_ms": attempt.latency_ms,
        "created_at": created,
        "first_on_provider": attempt.first_on_provider,
        "first_on_model": attempt.first_on_model,
    }


def clip(value: str, column: str) -> str:
    """`value` cut to its column's width: a name the database cannot store must not cost the row."""
    return value[:_WIDTH[column]]


# -- integer prices -----------------------------------------------------------------------------------


class Rate:
    """A price in whole pico-dollars per 1k tokens, with the fallbacks of `compute_cost` applied."""

    __slots__ = ("cached", "columns", "input", "output", "write")

    def __init__(self, input: int, output: int, cached: int, write: int, columns: tuple) -> None:
        self.input, self.output, self.cached, self.write = input, output, cached, write
        self.columns = columns
        """input_price, output_price, cached_input_price, cache_write_price as the driver takes them."""

    @classmethod
    def of(cls, price: Price, money=int, null: Any = None) -> Rate | None:
        """`price` in whole pico-dollars, or None when some part of it is not (then the attempt
        takes the Decimal road)."""
        picos = [_whole_pico(v) for v in (price.input, price.output, price.cached_input, price.cache_write)]
        if any(p is False for p in picos) or picos[0] is None or picos[1] is None:
            return None
        pin, pout, pcached, pwrite = picos
        return cls(pin, pout, pin if pcached is None else pcached, pin if pwrite is None else pwrite,
                   tuple(null if p is None else money(p) for p in picos))

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int, cache_write_tokens: int) -> int:
        """`compute_cost` in pico-dollars, for tokens that used some; -1 where this cannot be
        sure to equal it (negative or non-integer counts, amounts past Decimal's precision)."""
        if type(cached_input_tokens) is not int or type(cache_write_tokens) is not int:
            return -1  # (counts of any other type: a float input or output shows in `total`)
        cached = cached_input_tokens if cached_input_tokens < input_tokens else input_tokens  # min(), without a call
        left = input_tokens - cached
        written = cache_write_tokens if cache_write_tokens < left else left
        uncached = left - written
        if cached < 0 or written < 0 or uncached < 0 or output_tokens < 0:
            return -1
        total = uncached * self.input + cached * self.cached + written * self.write + output_tokens * self.output
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


def pico(value: Any) -> int:
    """An amount as `Money` stores it on SQLite: rounded half-even to the pico-dollar."""
    return int(quantize(Decimal(value)).scaleb(12))


class Timeline:
    """Which price applies to a provider/model at a moment, as `PriceBook.lookup` says, asked
    once per stretch of time in which its answer cannot change (between two `effective_from`
    of the model's or the provider's `*` prices), and as a `Rate`."""

    def __init__(self, book: PriceBook, money=int, null: Any = None) -> None:
        self.book, self.money, self.null = book, money, null
        self._starts: dict[tuple[str, str], list[int]] = {}
        for p in book.history():
            self._starts.setdefault((p.provider, p.model), []).append(micros_of(p.effective_from))  # type: ignore[arg-type]
        self._known: dict[tuple[str, str], tuple[int, int, Rate | bool | None]] = {}

    def rate(self, provider: str, model: str, micro: int) -> Rate | bool | None:
        """The rate at `micro` (µs since the epoch); None when there is no price, False when the
        price is not in whole pico-dollars."""
        known = self._known.get((provider, model))
        if known is not None and known[0] <= micro < known[1]:
            return known[2]
        starts = sorted(self._starts.get((provider, model), []) + self._starts.get((provider, WILDCARD), []))
        i = bisect.bisect_right(starts, micro)
        price = self.book.lookup(provider, model, _EPOCH + timedelta(microseconds=micro))
        rate = None if price is None else (Rate.of(price, self.money, self.null) or False)
        self._known[provider, model] = (starts[i - 1] if i else _NEVER, starts[i] if i < len(starts) else -_NEVER,
                                        rate)
        return rate


def micros(t: float) -> int:
    """Seconds since the epoch in whole microseconds, rounded (half-even) as `datetime.fromtimestamp`
    rounds them: `micros(t)` and `fromtimestamp(t)` name the same microsecond."""
    if type(t) is int:
        return t * 1_000_000
    fraction, whole = math.modf(t)
    return int(whole) * 1_000_000 + round(fraction * 1e6)


def micros_of(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def sqlite_time(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for an aware UTC datetime: naive UTC."""
    return _SQLITE_TIME % (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
                           moment.microsecond)


# -- the codec ------------------------------------------------------------------------------------------


class RowCodec:
    """The rows of one database: built fast, converted from the reference, to and from the spool.
    One recorder's: it keeps a few caches and is not shared between threads."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.sql = insert_sql(self.sqlite)
        self.money = int if self.sqlite else str
        self.null = SQLITE_NULL if self.sqlite else None
        self.flag: tuple = (0, 1) if self.sqlite else (False, True)
        self._unpriced = (self.null,) * 4
        self._book: PriceBook | None = None
        self._prices = Timeline(PriceBook())
        self._seconds: dict[int, str] = {}

    def build(self, ctx: RequestContext, attempt: Attempt, book: PriceBook) -> tuple:
        """The driver's row of one attempt: the values of `self.from_dict(build_row(…))`."""
        if book is not self._book:
            self._book, self._prices = book, Timeline(book, self.money, self.null)
        started = attempt.started_at or time.time()
        if attempt.provider_cost_usd is not None:
            return self.from_dict(build_row(ctx, attempt, book))
        micro = micros(started)
        rate = self._prices.rate(attempt.provider, attempt.model, micro)
        if rate is False:
            return self.from_dict(build_row(ctx, attempt, book))
        usage = attempt.usage
        if usage is None:
            tokens_in = tokens_out = cached = reasoning = written = cost = 0
        else:
            tokens_in, tokens_out = usage.input_tokens, usage.output_tokens
            cached, reasoning, written = usage.cached_input_tokens, usage.reasoning_tokens, usage.cache_write_tokens
            if tokens_in == 0 and tokens_out == 0:
                cost = 0
            elif rate is None:
                cost = -2  # unpriced
            else:
                cost = rate.cost(tokens_in, tokens_out, cached, written)
                if cost < 0:
                    return self.from_dict(build_row(ctx, attempt, book))
        status = attempt.status
        if status == "success" and attempt.link_index > 0:
            status = "fallback"
        kind, message, null = attempt.error_kind, attempt.error_message, self.null
        return (
            new_id(), ctx.request_id[:_REQUEST], attempt.position, (ctx.user_id or LOCAL_USER)[:_USER],
            ctx.agent_id[:_AGENT], attempt.provider[:_PROVIDER], attempt.model[:_MODEL], status,
            kind.value if kind else null, redact(message)[:MAX_ERROR] if message else null,
            tokens_in, tokens_out, tokens_in + tokens_out, cached, reasoning, written,
            null if cost < 0 else self.money(cost), *(rate.columns if rate is not None else self._unpriced),
            self.flag[cost < 0], null, self.flag[0], attempt.latency_ms,
            self._sqlite_time(micro) if self.sqlite else datetime.fromtimestamp(started, UTC),
            self.flag[attempt.first_on_provider], self.flag[attempt.first_on_model],
        )

    def _sqlite_time(self, micro: int) -> str:
        """SQLAlchemy's SQLite DATETIME text of a moment in microseconds (each second formatted once)."""
        second, rest = divmod(micro, 1_000_000)
        text = self._seconds.get(second)
        if text is None:
            if len(self._seconds) > 10_000:
                self._seconds.clear()
            text = self._seconds[second] = sqlite_time(datetime.fromtimestamp(second, UTC))[:19]
        return f"{text}.{rest:06d}"

    def from_dict(self, row: dict[str, Any]) -> tuple:
        """The driver's form of a reference row: what SQLAlchemy's column types would bind."""
        out = []
        for name in COLUMNS:
            value = row[name]
            if value is None:
                value = self.null if name in NULLABLE_COLUMNS else None  # NOT NULL: let the database refuse it
            elif name == "id":
                value = value.hex if isinstance(value, uuid.UUID) else uuid.UUID(value).hex
            elif name == "created_at":
                value = _utc(value)
                if self.sqlite:
                    value = sqlite_time(value)
            elif name in MONEY_COLUMNS:
                value = self.money(pico(value))
            elif name in _BOOLEAN_COLUMNS and self.sqlite and isinstance(value, bool):
                value = int(value)
            out.append(value)
        return tuple(out)

    def to_dict(self, values: tuple) -> dict[str, Any]:
        """The reference row (UUID, Decimal, aware datetime) of a driver row."""
        row = dict(zip(COLUMNS, values, strict=True))
        for name in NULLABLE_COLUMNS:
            if type(row[name]) is float and row[name] == SQLITE_NULL:
                row[name] = None
        row["id"] = uuid.UUID(row["id"])
        created = row["created_at"]
        row["created_at"] = datetime.fromisoformat(created).replace(tzinfo=UTC) if self.sqlite else created
        for name in MONEY_COLUMNS:
            if row[name] is not None:
                row[name] = Decimal(int(row[name])).scaleb(-12)
        for name in _BOOLEAN_COLUMNS:
            if type(row[name]) is int:
                row[name] = bool(row[name])
        return row

    @staticmethod
    def provider_and_cost(values: tuple) -> tuple[str, Decimal | None]:
        """A driver row's provider and exact cost (None: unpriced), read without converting the row."""
        cost = values[_COST]
        if cost is None or type(cost) is float:  # NULL (SQLITE_NULL on SQLite)
            return values[_PROVIDER_AT], None
        return values[_PROVIDER_AT], Decimal(int(cost)).scaleb(-12)

    def to_json(self, values: tuple) -> str:
        """One spool line."""
        row = self.to_dict(values)
        row["id"] = str(row["id"])
        row["created_at"] = row["created_at"].isoformat()
        for name in MONEY_COLUMNS:
            if row[name] is not None:
                row[name] = str(row[name])
        return json.dumps(row, separators=(",", ":"))

    def from_json(self, line: str) -> tuple:
        """The driver row of a spool line; ValueError, KeyError, TypeError or ArithmeticError when
        the line is not one (a write a crash cut short) or holds a value no column takes."""
        row = json.loads(line)
        for flag in ("first_on_provider", "first_on_model"):  # a line spooled before migration 0005: a
            row.setdefault(flag, True)  # guess, right unless the request had tried this provider before
        row["id"] = uuid.UUID(row["id"])
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        return self.from_dict(row)


def insert_sql(sqlite: bool) -> str:
    """INSERT … ON CONFLICT (id) DO NOTHING of one row, in the driver's own parameter style."""
    if sqlite:
        marks = ", ".join(f"NULLIF(?, {SQLITE_NULL})" if c in NULLABLE_COLUMNS else "?" for c in COLUMNS)
    else:  # money arrives as integer pico-dollars in text: scaled exactly, then NUMERIC(24, 12)
        marks = ", ".join(f"${i}::text::numeric * 0.000000000001" if c in MONEY_COLUMNS else f"${i}"
                          for i, c in enumerate(COLUMNS, 1))
    return f"INSERT INTO ai_model_usage ({', '.join(COLUMNS)}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"  # noqa: S608


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:  # as `UTCDateTime` refuses it
        raise ValueError("naive datetime: llmrelay stores only timezone-aware UTC times")
    return value.astimezone(UTC)
