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

An attempt comes with its `Charge` (ledger/charges.py), priced once when it ended: the row
stores that cost and those prices, the same the answer reported.  A charge priced on the
integer road is written without any Decimal arithmetic; any other goes through `build_row` and
is converted, so the two paths cannot disagree.

Spool lines are the JSON of the reference row, in the same format as ever: a spool file written
by one version replays in another.
"""

from __future__ import annotations

import json
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
from .charges import Charge, Pricer, micros, started
from .pricing import PriceBook, costs_differ

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
          "first_on_provider", "first_on_model", "tool_calls", "images", "kind", "budget_downgraded",
          "cache_write_1h_tokens", "cache_write_1h_price")
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


def build_row(ctx: RequestContext, attempt: Attempt, charge: Charge) -> dict[str, Any]:
    """The `ai_model_usage` row of one attempt, with the charge it was given when it ended."""
    created = started(attempt)
    usage = attempt.usage
    price, cost = charge.price, charge.cost
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
        "tool_calls": attempt.tool_calls,
        "images": attempt.images,
        "kind": ctx.kind,
        "budget_downgraded": ctx.budget_downgraded,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens if usage else 0,
        "cache_write_1h_price": price.cache_write_1h if price else None,
    }


def clip(value: str, column: str) -> str:
    """`value` cut to its column's width: a name the database cannot store must not cost the row."""
    return value[:_WIDTH[column]]


def pico(value: Any) -> int:
    """An amount as `Money` stores it on SQLite: rounded half-even to the pico-dollar."""
    return int(quantize(Decimal(value)).scaleb(12))


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
        self._pricer = Pricer(PriceBook(), self.money, self.null)
        self._seconds: dict[int, str] = {}

    def charge(self, attempt: Attempt, book: PriceBook) -> Charge:
        """`charge_of(attempt, book)`, on the integer road where that is exact (the request path)."""
        if book is not self._pricer.book:
            self._pricer = Pricer(book, self.money, self.null)
        return self._pricer.charge(attempt)

    def build(self, ctx: RequestContext, attempt: Attempt, charge: Charge) -> tuple:
        """The driver's row of one attempt: the values of `self.from_dict(build_row(…))`."""
        rate = charge.rate
        if attempt.provider_cost_usd is not None or (rate is None and charge.price is not None):
            return self.from_dict(build_row(ctx, attempt, charge))  # the Decimal road
        started = attempt.started_at or time.time()
        micro = micros(started)
        usage = attempt.usage
        cost = -2 if charge.pico is None else charge.pico  # -2: unpriced
        if usage is None:
            tokens_in = tokens_out = cached = reasoning = written = hour = 0
        else:
            tokens_in, tokens_out = usage.input_tokens, usage.output_tokens
            cached, reasoning, written = usage.cached_input_tokens, usage.reasoning_tokens, usage.cache_write_tokens
            hour = usage.cache_write_1h_tokens
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
            self.flag[attempt.first_on_provider], self.flag[attempt.first_on_model], attempt.tool_calls,
            attempt.images, ctx.kind, self.flag[ctx.budget_downgraded], hour,
            rate.hour_column if rate is not None else null,
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
        for count in ("tool_calls", "images"):  # before 0006: text-only calls
            row.setdefault(count, 0)
        row.setdefault("kind", "chat")  # before 0007: every call was a chat
        row.setdefault("budget_downgraded", False)  # before 0009: no budgets
        row.setdefault("cache_write_1h_tokens", 0)  # before 0014: every write billed at the 5-minute price
        row.setdefault("cache_write_1h_price", None)
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
