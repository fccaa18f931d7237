"""`/api/ai/usage`: what was used and what it cost, from the ledger.

    GET /api/ai/usage           totals, and breakdowns with `groupBy`      (ledger.stats.usage_stats)
    GET /api/ai/usage/records   the rows themselves, newest first, by cursor (ledger.records)
    GET /api/ai/usage/export    every matching row as a streamed CSV file

Filters shared by all three: `from` (inclusive) and `to` (exclusive), each a date
(`2025-03-10`, midnight) or an ISO-8601 date-time; without an offset it is UTC.  `to` defaults
to now and `from` to 30 days before `to`.  `agentId`, `provider`, and `userId` (admins only).

Rates: `requestSuccessRate` is per request (answered / requests), `attemptFailureRate` per attempt
(failed / attempts); `successRate` keeps its old, attempt-level meaning (answers / attempts) for
existing clients, and no screen shows it (ledger/stats.py defines every figure).

Whose rows: a user sees only their own (so `groupBy=user` shows just them); an admin sees
everyone's unless they pass `userId`.  These are not hot paths: each request opens its own
database session (the CSV export keeps it for the life of the stream).  Rows reach the ledger
from the recorder's queue within a fraction of a second of the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from ...ledger import Ledger
from ...ledger.records import MAX_PAGE, export_csv, list_records, record_to_dict
from ...ledger.stats import usage_stats, window_filters
from ...providers.registry import known_provider
from ..deps import LedgerDep, Subject
from ..errors import ApiRoute, Problem

router = APIRouter(prefix="/api/ai/usage", tags=["usage"], route_class=ApiRoute)
DEFAULT_DAYS = 30

GroupBy = Literal["provider", "agent", "model", "day", "user"]
Status = Literal["success", "fallback", "failed", "skipped"]
ProviderName = Annotated[str, AfterValidator(known_provider)]
"""A provider some adapter declared (the built-in five, plugins, registered ones), checked per request."""


# -- the filters ------------------------------------------------------------------------------


def parse_when(value: str, field: str) -> datetime:
    """A date (midnight) or ISO-8601 date-time, in UTC; without an offset it is UTC."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Problem(400, f"{field}: {value[:40]!r} is not a date (YYYY-MM-DD) or an ISO-8601 date-time",
                      field=field, code="invalid-date") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class UsageFilters:
    user_id: str | None
    start: datetime
    end: datetime
    agent_id: str | None
    provider: str | None

    def kwargs(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "start": self.start, "end": self.end, "agent_id": self.agent_id,
                "provider": self.provider}


_FROM = Query(None, alias="from", max_length=40,
              description=f"Start, inclusive: YYYY-MM-DD or ISO-8601 date-time (UTC unless it says otherwise). "
                          f"Default: {DEFAULT_DAYS} days before `to`.")
_TO = Query(None, max_length=40, description="End, exclusive: YYYY-MM-DD or ISO-8601 date-time. Default: now.")


def usage_filters(subject: Subject, since: str | None = _FROM, to: str | None = _TO,
                  agentId: str | None = Query(None, min_length=1, max_length=64),
                  provider: ProviderName | None = None) -> UsageFilters:
    end = parse_when(to, "to") if to is not None else datetime.now(UTC)
    try:
        start = parse_when(since, "from") if since is not None else end - timedelta(days=DEFAULT_DAYS)
    except OverflowError:
        raise Problem(400, f"to: {to!r} is too early to count {DEFAULT_DAYS} days back from: pass `from` too",
                      field="to", code="invalid-date") from None
    if start >= end:
        raise Problem(400, f"from ({start.isoformat()}) must be before to ({end.isoformat()}); to is exclusive",
                      field="from", code="empty-window")
    return UsageFilters(subject, start, end, agentId, provider)


Filters = Annotated[UsageFilters, Depends(usage_filters)]


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


# -- response shapes (for the OpenAPI document) -------------------------------------------------


class TokensOut(BaseModel):
    prompt: int
    completion: int
    total: int
    cached: int
    reasoning: int


class StatsOut(BaseModel):
    requests: int
    calls: int
    skipped: int
    successes: int
    fallbacks: int
    failures: int
    requestSuccessRate: float | None = Field(
        description="Requests answered / requests (per request: one answered after three failed attempts "
                    "counts as answered).  Null without requests.")
    attemptFailureRate: float | None = Field(
        description="Failed attempts / attempts (`failures / calls`): retries and failed fallback links "
                    "included.  Null without attempts.")
    successRate: float | None = Field(
        description="Attempt-level: answers / attempts (`successes / calls`).  Kept with this meaning for "
                    "existing clients; the per-request figure is `requestSuccessRate`.")
    fallbackRate: float | None = Field(description="Answers by a fallback link / answers.")
    tokens: TokensOut
    costUsd: str
    costComplete: bool
    unpricedCalls: int
    costPerCall: str | None
    costPerRequest: str | None
    avgLatencyMs: float | None
    p95LatencyMs: int | None


class GroupOut(StatsOut):
    provider: str | None = None
    model: str | None = None
    agentId: str | None = None
    userId: str | None = None
    day: str | None = None


class UsageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    groupBy: GroupBy | None
    from_: str = Field(alias="from")
    to: str
    groups: list[GroupOut]
    totals: StatsOut


class RecordsOut(BaseModel):
    records: list[dict[str, Any]]
    nextCursor: str | None


# -- the routes ----------------------------------------------------------------------------------


@router.get("", summary="Requests, calls, tokens, cost, success and failure rates, latency; totals and per group",
            response_model=UsageOut,
            responses={400: {"description": "A bad date or window"},
                       403: {"description": "Another user's usage, not an admin"}})
async def usage(filters: Filters, ledger: LedgerDep, groupBy: GroupBy | None = None) -> Response:
    async with ledger.sessions() as s:
        report = await usage_stats(s, group_by=groupBy, **filters.kwargs())
    return _json(report.to_dict())


@router.get("/records", summary="The ledger rows, newest first, a page at a time",
            response_model=RecordsOut,
            responses={400: {"description": "A bad date, window or cursor"},
                       403: {"description": "Another user's usage, not an admin"}})
async def records(filters: Filters, ledger: LedgerDep, status: Status | None = None,
                  limit: int = Query(50, ge=1, le=MAX_PAGE),
                  cursor: str | None = Query(None, max_length=200,
                                             description="The `nextCursor` of the previous page")) -> Response:
    async with ledger.sessions() as s:
        rows, next_cursor = await list_records(s, status=status, limit=limit, cursor=cursor, **filters.kwargs())
        page = [record_to_dict(r) for r in rows]
    return _json({"records": page, "nextCursor": next_cursor})


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d") if when.time() == datetime.min.time() else when.strftime("%Y-%m-%dT%H%M%SZ")


async def _csv_stream(ledger: Ledger, filters: dict[str, Any]) -> AsyncIterator[bytes]:
    async with ledger.sessions() as s:
        async for chunk in export_csv(s, **filters):
            yield chunk.encode()


@router.get("/export", summary="Every matching ledger row as CSV (streamed, oldest first)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "CSV with a header row"},
                       400: {"description": "A bad date, window or format"},
                       403: {"description": "Another user's usage, not an admin"}})
async def export(filters: Filters, ledger: LedgerDep, status: Status | None = None,
                 format: str = Query("csv", max_length=10, description="Only `csv`")) -> StreamingResponse:
    if format != "csv":
        raise Problem(400, f"format: {format!r} is not offered (only csv)", field="format", code="unknown-format")
    args = {**filters.kwargs(), "status": status}
    window_filters(**args)  # a bad filter is an HTTP error now, not a broken stream later
    name = f"llmrelay-usage-{_stamp(filters.start)}-{_stamp(filters.end)}.csv"
    return StreamingResponse(_csv_stream(ledger, args), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}"',
                                      "cache-control": "no-store"})
