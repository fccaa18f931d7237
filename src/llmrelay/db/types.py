"""Column types that keep their promises on both databases.

`Money`: exact decimal USD.  PostgreSQL stores NUMERIC(24, 12); SQLite has no exact decimal
(its NUMERIC is a float), so there the value is stored as an integer count of pico-dollars
(10^-12 USD), which SQLite adds up exactly.  Python always sees `Decimal`.  Wrap aggregates in
`type_coerce(func.sum(col), Money())` so their result is converted the same way.

`UTCDateTime`: timezone-aware UTC in and out.  PostgreSQL stores TIMESTAMPTZ; SQLite stores
naive UTC text (its only option), converted back to aware UTC on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.types import TypeDecorator

SCALE = 12
QUANTUM = Decimal(1).scaleb(-SCALE)
_PICO = Decimal(10) ** SCALE


def quantize(value: Decimal) -> Decimal:
    """`value` rounded (half-even) to the pico-dollar, the precision every stored amount has."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


class Money(TypeDecorator):
    impl = Numeric(24, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(24, SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = quantize(Decimal(value))
        if dialect.name == "sqlite":
            return int(value * _PICO)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return quantize(Decimal(int(value)) / _PICO)
        return quantize(Decimal(value))


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: llmrelay stores only timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC, or None."""
    return None if value is None else value.astimezone(UTC).isoformat()
