"""Ledger rows one by one: keyset-paginated records, the CSV export streamed from a server-side
cursor (never more than one batch of rows in memory), and one request's rows summed up."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import select, tuple_
from sqlalchemy import types as sqltypes
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import AIModelUsage as U
from ..db.types import Money, UTCDateTime, iso
from ..types import InvalidRequest, money
from .stats import window_filters

MAX_PAGE = 1000
COLUMNS = tuple(c.name for c in U.__table__.columns)
"""Every column of ai_model_usage, in table order: the fields of a record."""
PER_1M = {"input_price": "input_usd_per_1m", "output_price": "output_usd_per_1m",
          "cached_input_price": "cached_input_usd_per_1m", "cache_write_price": "cache_write_usd_per_1m",
          "cache_write_1h_price": "cache_write_1h_usd_per_1m"}
"""The applied prices, kept per 1k tokens, and their CSV headers: the export gives them per 1M tokens."""
CSV_COLUMNS = tuple(PER_1M.get(name, name) for name in COLUMNS)
"""The CSV export's header: `COLUMNS`, the prices named with their unit (`cost_usd` is USD already)."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- records --------------------------------------------------------------------------------------


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"1|{created_at.astimezone(UTC).isoformat()}|{row_id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor names, or InvalidRequest(field="cursor")."""
    try:
        if not isinstance(cursor, str) or not 0 < len(cursor) <= 200:
            raise ValueError(cursor)
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        version, when, hexid = raw.split("|")
        created_at = datetime.fromisoformat(when)
        if version != "1" or created_at.tzinfo is None or len(hexid) != 32:
            raise ValueError(raw)
        return created_at.astimezone(UTC), uuid.UUID(hex=hexid)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("malformed cursor: pass back the nextCursor of the previous page", "cursor") from None


async def list_records(session: AsyncSession, *, user_id: str | None = None, start: datetime | None = None,
                       end: datetime | None = None, agent_id: str | None = None, provider: str | None = None,
                       status: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> tuple[list[U], str | None]:
    """One page of rows, newest first, and the cursor of the next page (None on the last one).
    Rows recorded after the first page was read never shift the pages that follow."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", "limit")
    conds = window_filters(user_id=user_id, start=start, end=end, agent_id=agent_id, provider=provider, status=status)
    if cursor is not None:
        conds.append(tuple_(U.created_at, U.id) < tuple_(*decode_cursor(cursor)))
    stmt = select(U).where(*conds).order_by(U.created_at.desc(), U.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars().all())
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def record_to_dict(row: U) -> dict[str, Any]:
    """A ledger row as camelCase JSON: money as decimal strings, times ISO-8601 UTC, the applied prices in USD
    per 1M tokens under names that say so (`inputUsdPer1M`, as the CSV export's `input_usd_per_1m`)."""
    out = {}
    for name in COLUMNS:
        value = getattr(row, name)
        if name in PER_1M:
            out[_camel(PER_1M[name])] = None if value is None else money(value * 1000)
        else:
            out[_camel(name)] = _plain(value)
    return out


# -- CSV export -----------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Text a spreadsheet would run as a formula (=, +, -, @) is quoted with a leading apostrophe."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_format(column: Any) -> Callable[[Any], Any] | None:
    """How one column's values are written (None: as they are; the csv module writes None as "")."""
    if isinstance(column.type, sqltypes.String):
        return _text
    if column.name in PER_1M:
        return lambda v: money(v * 1000)  # USD per 1k tokens -> per 1M
    if isinstance(column.type, Money):
        return money
    if isinstance(column.type, UTCDateTime):
        return iso
    if isinstance(column.type, sqltypes.Boolean):
        return lambda v: None if v is None else ("true" if v else "false")
    return str if isinstance(column.type, sqltypes.Uuid) else None


_CSV_FORMATS = tuple(_csv_format(c) for c in U.__table__.columns)


async def _csv_batches(session: AsyncSession, batch_size: int,
                       filters: dict[str, Any]) -> AsyncIterator[tuple[int, str]]:
    if not 1 <= batch_size <= 100_000:
        raise InvalidRequest("batch size must be between 1 and 100000", "batchSize")
    conds = window_filters(**filters)
    stmt = (select(*U.__table__.columns).where(*conds).order_by(U.created_at, U.id)
            .execution_options(yield_per=batch_size))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield 0, buf.getvalue()
    result = await session.stream(stmt)
    try:
        async for part in result.partitions():
            buf.seek(0)
            buf.truncate()
            writer.writerows([v if f is None or v is None else f(v) for f, v in zip(_CSV_FORMATS, row, strict=True)]
                              for row in part)
            yield len(part), buf.getvalue()
    finally:
        await result.close()


async def export_csv(session: AsyncSession, *, batch_size: int = 1000, **filters: Any) -> AsyncIterator[str]:
    """The rows matching `filters` (those of `list_records`) as CSV text, header first, oldest
    row first, one chunk per `batch_size` rows read from a server-side cursor.  Money is exact
    decimal text: `cost_usd` and `provider_cost_usd` in USD, the applied prices in USD per 1M tokens
    (`input_usd_per_1m`, …; `CSV_COLUMNS`)."""
    async for _, text in _csv_batches(session, batch_size, filters):
        yield text


async def write_csv(session: AsyncSession, out: IO[str], *, batch_size: int = 1000, **filters: Any) -> int:
    """Stream the export into `out` (opened with newline=""); returns the number of rows written."""
    count = 0
    async for n, text in _csv_batches(session, batch_size, filters):
        out.write(text)
        count += n
    return count


# -- one request's rows, as its answer's badge ------------------------------------------------------


async def request_summaries(s: AsyncSession, user_id: str, request_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per request id of `user_id`'s, its ledger rows summed up as an answer's badge shows them: tokens,
    cost (None when some attempt was unpriced), the attempts' latencies, fallback, and each attempt."""
    if not request_ids:
        return {}
    rows = (await s.execute(select(U).where(
        U.request_id.in_(request_ids), U.user_id == user_id)
        .order_by(U.request_id, U.attempt))).scalars()
    found: dict[str, list[U]] = {}
    for row in rows:
        found.setdefault(row.request_id, []).append(row)
    out = {}
    for request_id, attempts in found.items():
        costs = [a.cost_usd for a in attempts]
        out[request_id] = {
            "tokensUsed": {"prompt": sum(a.prompt_tokens for a in attempts),
                           "completion": sum(a.completion_tokens for a in attempts),
                           "total": sum(a.total_tokens for a in attempts)},
            "costUsd": None if any(c is None for c in costs) else money(sum(costs, Decimal(0))),
            "generationTime": sum(a.latency_ms for a in attempts),
            "fallbackUsed": any(a.status == "fallback" for a in attempts),
            "budgetDowngraded": any(a.budget_downgraded for a in attempts),
            "attemptedProviders": [{"provider": a.provider, "model": a.model,
                                    "status": "success" if a.status == "fallback" else a.status,
                                    "errorKind": a.error_kind, "error": a.error_message, "latencyMs": a.latency_ms}
                                   for a in attempts],
        }
    return out


__all__ = ["COLUMNS", "CSV_COLUMNS", "PER_1M", "decode_cursor", "encode_cursor", "export_csv", "list_records",
           "record_to_dict", "request_summaries", "write_csv"]
