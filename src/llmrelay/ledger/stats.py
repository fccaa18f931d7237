"""What the ledger adds up to: usage statistics, agent performance, unpriced usage, records, CSV.

Every figure is computed by the database, the same way on SQLite and PostgreSQL, over the
half-open window ``start <= created_at < end`` (UTC):

    requests        requests in the group: its first attempts (every request has exactly one);
                    by provider or model, where one request can span groups, the requests that
                    reached it: their first attempts on it (`first_on_provider` / `first_on_model`)
    calls           attempts actually made: status success, fallback or failed (skips excluded)
    successes       success + fallback: the answers (a request has at most one, its last attempt)
    fallbacks       status fallback             fallback_rate  fallbacks / successes
    failures        status failed

    request_success_rate   successes / requests: the share of requests that got an answer (per
                           request: one answered after three failed attempts is 1 of 1).  A request
                           whose attempts straddle the window's start (or a day's midnight) can bring
                           its answer without its first attempt: the rate is capped at 1.
    attempt_failure_rate   failures / calls: the share of attempts that failed (retries and failed
                           links included), whether or not their request was answered in the end
    success_rate           successes / calls: attempt-level, the former headline figure (JSON
                           `successRate`, kept with that meaning for existing clients; shown nowhere)
    cost_usd        exact Decimal sum of the priced rows; `unpriced_calls` rows have no known
                    price, so while it is not 0 the sum is incomplete (`cost_complete` is False)
    avg latency     mean latency_ms of the calls
    p95 latency     nearest rank: the ceil(0.95 n)-th smallest latency_ms of the n calls
                    (PostgreSQL percentile_disc(0.95); SQLite ROW_NUMBER/COUNT windows)
    p50 latency     likewise, the ceil(0.5 n)-th (`provider_health`, a provider's recent calls)

A rate whose denominator is 0 is None, never 0.  Results are frozen dataclasses whose
`to_dict()` is the camelCase JSON the HTTP API serves.  Records are keyset-paginated on
(created_at DESC, id DESC) with an opaque cursor; the CSV export streams from a server-side
cursor, never holding more than one batch of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, literal_column, select, text, type_coerce
from sqlalchemy import types as sqltypes
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ..db.models import AIModelUsage as U
from ..db.types import UTCDateTime, iso, quantize
from ..types import InvalidRequest, money
from .report import Tally, tally

DAY_SQL = "((ai_model_usage.created_at AT TIME ZONE 'UTC')::date)"
"""PostgreSQL's UTC day of a row."""
GROUP_BY = ("provider", "agent", "model", "day", "user")
STATUSES = ("success", "fallback", "failed", "skipped")
CALL_STATUSES = ("success", "fallback", "failed")
MAX_PAGE = 1000
COLUMNS = tuple(c.name for c in U.__table__.columns)
"""The CSV export's columns: every column of ai_model_usage, in table order."""


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tokens:
    prompt: int = 0
    completion: int = 0
    total: int = 0
    cached: int = 0
    reasoning: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class UsageStats:
    requests: int = 0
    calls: int = 0
    skipped: int = 0
    successes: int = 0
    fallbacks: int = 0
    failures: int = 0
    tokens: Tokens = Tokens()
    cost_usd: Decimal = Decimal(0)
    """The priced rows only: see `cost_complete`."""
    unpriced_calls: int = 0
    avg_latency_ms: float | None = None
    p95_latency_ms: int | None = None

    @property
    def success_rate(self) -> float | None:
        """Attempt-level: answers / attempts (see `request_success_rate` for the per-request figure)."""
        return self.successes / self.calls if self.calls else None

    @property
    def request_success_rate(self) -> float | None:
        """The share of requests that got an answer (capped at 1: see the module's docstring)."""
        return min(self.successes, self.requests) / self.requests if self.requests else None

    @property
    def attempt_failure_rate(self) -> float | None:
        """The share of attempts (calls) that failed."""
        return self.failures / self.calls if self.calls else None

    @property
    def fallback_rate(self) -> float | None:
        """The share of answers that came from a fallback link."""
        return self.fallbacks / self.successes if self.successes else None

    @property
    def cost_complete(self) -> bool:
        """False when some calls used a model without a known price: their cost is not in `cost_usd`."""
        return self.unpriced_calls == 0

    @property
    def cost_per_call(self) -> Decimal | None:
        return quantize(self.cost_usd / self.calls) if self.calls else None

    @property
    def cost_per_request(self) -> Decimal | None:
        return quantize(self.cost_usd / self.requests) if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "calls": self.calls, "skipped": self.skipped,
            "successes": self.successes, "fallbacks": self.fallbacks, "failures": self.failures,
            "requestSuccessRate": self.request_success_rate, "attemptFailureRate": self.attempt_failure_rate,
            "successRate": self.success_rate, "fallbackRate": self.fallback_rate, "tokens": self.tokens.to_dict(),
            "costUsd": money(self.cost_usd), "costComplete": self.cost_complete, "unpricedCalls": self.unpriced_calls,
            "costPerCall": money(self.cost_per_call), "costPerRequest": money(self.cost_per_request),
            "avgLatencyMs": self.avg_latency_ms, "p95LatencyMs": self.p95_latency_ms,
        }


@dataclass(frozen=True, slots=True)
class UsageGroup:
    key: Mapping[str, str]
    """{"provider": …}, {"agentId": …}, {"userId": …}, {"day": "YYYY-MM-DD"} or {"provider": …, "model": …}"""
    stats: UsageStats

    def to_dict(self) -> dict[str, Any]:
        return {**self.key, **self.stats.to_dict()}


@dataclass(frozen=True, slots=True)
class UsageReport:
    group_by: str | None
    start: datetime | None
    end: datetime | None
    groups: tuple[UsageGroup, ...]
    totals: UsageStats

    def to_dict(self) -> dict[str, Any]:
        return {"groupBy": self.group_by, "from": iso(self.start), "to": iso(self.end),
                "groups": [g.to_dict() for g in self.groups], "totals": self.totals.to_dict()}


@dataclass(frozen=True, slots=True)
class AgentPerformance:
    agent_id: str
    start: datetime | None
    end: datetime | None
    stats: UsageStats
    providers: tuple[UsageGroup, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "from": iso(self.start), "to": iso(self.end), **self.stats.to_dict(),
                "providers": [g.to_dict() for g in self.providers]}


@dataclass(frozen=True, slots=True)
class UnpricedUsage:
    provider: str
    model: str
    calls: int
    tokens: Tokens
    first_seen: datetime
    last_seen: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "calls": self.calls, "tokens": self.tokens.to_dict(),
                "firstSeen": iso(self.first_seen), "lastSeen": iso(self.last_seen)}


# -- filters --------------------------------------------------------------------------------------


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidRequest(f"{name} must be a timezone-aware date-time", name)
    return value.astimezone(UTC)


def window_filters(*, user_id: str | None = None, start: datetime | None = None, end: datetime | None = None,
             agent_id: str | None = None, provider: str | None = None,
             status: str | None = None) -> list[ColumnElement[bool]]:
    start, end = _utc(start, "from"), _utc(end, "to")
    if start is not None and end is not None and start > end:
        raise InvalidRequest("from must not be after to", "from")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, not {status!r}", "status")
    conds: list[ColumnElement[bool]] = []
    for column, value in ((U.user_id, user_id), (U.agent_id, agent_id), (U.provider, provider), (U.status, status)):
        if value is not None:
            conds.append(column == value)
    if start is not None:
        conds.append(U.created_at >= start)
    if end is not None:
        conds.append(U.created_at < end)
    return conds


# -- usage_stats ------------------------------------------------------------------------------------


def _keys(group_by: str | None, dialect: str) -> list[tuple[str, ColumnElement[Any]]]:
    if group_by is None:
        return []
    if group_by == "day":  # the UTC date, whatever the session's time zone
        # PostgreSQL: literal SQL, the very expression of migration 0004's extended statistics
        day = (literal_column(DAY_SQL, sqltypes.Date) if dialect == "postgresql"
               else type_coerce(func.date(U.created_at), sqltypes.String))
        return [("day", day)]
    keys = {"provider": [("provider", U.provider)], "agent": [("agentId", U.agent_id)],
            "user": [("userId", U.user_id)], "model": [("provider", U.provider), ("model", U.model)]}
    try:
        return keys[group_by]
    except KeyError:
        raise InvalidRequest(f"group by must be one of {', '.join(GROUP_BY)}, not {group_by!r}", "groupBy") from None


def _count(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _nearest_rank_sqlite(keys: list[tuple[str, ColumnElement[Any]]], conds: list[ColumnElement[bool]],
                         percent: int) -> Select:
    """Nearest-rank percentile of the calls' latency per group on SQLite (which has no
    percentile_disc): rank calls by latency within their group, keep the row whose rank is
    ceil(percent/100 n) = (percent n + 99) / 100 in integer arithmetic."""
    exprs = [e for _, e in keys]
    ranked = select(
        *(e.label(f"k{i}") for i, e in enumerate(exprs)), U.latency_ms,
        func.row_number().over(partition_by=exprs or None, order_by=U.latency_ms).label("rn"),
        func.count().over(partition_by=exprs or None).label("n"),
    ).where(*conds, U.status.in_(CALL_STATUSES)).subquery()
    return select(*(ranked.c[f"k{i}"] for i in range(len(exprs))), ranked.c.latency_ms).where(
        ranked.c.rn == (ranked.c.n * percent + 99) // 100)


def _key_value(value: Any) -> str:
    """A group key as text: a PostgreSQL date becomes its ISO date."""
    return value.isoformat() if isinstance(value, date) else str(value)


def _stats(t: Tally, requests: int) -> UsageStats:
    m = t.sums
    calls = m["calls"]
    return UsageStats(
        requests=requests, calls=calls, skipped=m["skipped"], successes=m["successes"], fallbacks=m["fallbacks"],
        failures=m["failures"],
        tokens=Tokens(*(m[k] for k in ("prompt", "completion", "total", "cached", "reasoning"))),
        cost_usd=t.cost, unpriced_calls=m["unpriced"], avg_latency_ms=m["latency_sum"] / calls if calls else None,
        p95_latency_ms=t.p95,
    )


async def _report(session: AsyncSession, keys: list[tuple[str, ColumnElement[Any]]],
                  conds: list[ColumnElement[bool]]) -> tuple[UsageStats, dict[tuple[str, ...], UsageStats]]:
    """The totals and every group's figures (report.py says how they are read)."""
    if session.bind.dialect.name == "postgresql":
        # pass 1's groups must stay in memory; compiling the query (JIT) costs more than it saves here
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(text("SET LOCAL jit = off"))
    names = [name for name, _ in keys]
    first = "first_model" if "model" in names else "first_provider" if "provider" in names else "first"
    totals, groups = await tally(session, [e for _, e in keys], conds)
    if not keys:
        return _stats(totals, totals.sums["first"]), {}
    return (_stats(totals, totals.sums["first"]),
            {tuple(_key_value(v) for v in key): _stats(t, t.sums[first]) for key, t in groups.items()})


async def usage_stats(session: AsyncSession, *, user_id: str | None = None, start: datetime | None = None,
                      end: datetime | None = None, group_by: str | None = None, agent_id: str | None = None,
                      provider: str | None = None) -> UsageReport:
    """Totals over the window, and per group when `group_by` is provider|agent|model|day|user
    (model means provider + model).  Groups come in key order."""
    keys = _keys(group_by, session.bind.dialect.name)
    conds = window_filters(user_id=user_id, start=start, end=end, agent_id=agent_id, provider=provider)
    totals, found = await _report(session, keys, conds)
    groups = tuple(UsageGroup(dict(zip([n for n, _ in keys], k, strict=True)), found[k]) for k in sorted(found))
    return UsageReport(group_by, _utc(start, "from"), _utc(end, "to"), groups, totals)


async def agent_performance(session: AsyncSession, agent_id: str, start: datetime | None = None,
                            end: datetime | None = None, user_id: str | None = None) -> AgentPerformance:
    """One agent: latency, success rate, cost per call and per request, overall and per provider."""
    report = await usage_stats(session, agent_id=agent_id, start=start, end=end, user_id=user_id,
                               group_by="provider")
    return AgentPerformance(agent_id, report.start, report.end, report.totals, report.groups)


async def unpriced_usage(session: AsyncSession, *, user_id: str | None = None, start: datetime | None = None,
                         end: datetime | None = None, agent_id: str | None = None,
                         provider: str | None = None) -> list[UnpricedUsage]:
    """Every provider/model with calls whose cost is unknown (no price was in effect), with
    what they used and when: the models that need a price."""
    conds = window_filters(user_id=user_id, start=start, end=end, agent_id=agent_id, provider=provider)
    stmt = (select(U.provider, U.model, func.count().label("calls"),
                   *(func.sum(col) for col in (U.prompt_tokens, U.completion_tokens, U.total_tokens,
                                               U.cached_prompt_tokens, U.reasoning_tokens)),
                   *(type_coerce(f(U.created_at), UTCDateTime()) for f in (func.min, func.max)))
            .where(*conds, U.unpriced).group_by(U.provider, U.model))
    rows = (await session.execute(stmt)).all()
    return sorted((UnpricedUsage(r[0], r[1], r[2], Tokens(*(int(v) for v in r[3:8])), r[8], r[9]) for r in rows),
                  key=lambda u: (u.provider, u.model))


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One provider's recent calls: how many, how many answered, and the median latency."""

    provider: str
    calls: int
    successes: int
    p50_latency_ms: int | None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.calls if self.calls else None

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "successes": self.successes, "successRate": self.success_rate,
                "p50LatencyMs": self.p50_latency_ms}


async def _recent(session: AsyncSession, keys: list[tuple[str, ColumnElement[Any]]], start: datetime,
                  end: datetime | None) -> dict[tuple, tuple[int, int, int | None]]:
    """Per group of `keys` with calls in the window: (calls, successes, nearest-rank median latency)."""
    conds = window_filters(start=start, end=end)
    exprs = [e for _, e in keys]
    cols: list[ColumnElement[Any]] = [*exprs, func.count().label("calls"),
                                      _count(U.status.in_(("success", "fallback"))).label("successes")]
    postgres = session.bind.dialect.name == "postgresql"
    if postgres:
        cols.append(func.percentile_disc(0.5).within_group(U.latency_ms).label("p50"))
    rows = (await session.execute(select(*cols).where(*conds, U.status.in_(CALL_STATUSES)).group_by(*exprs))).all()
    n = len(exprs)
    if postgres:
        p50 = {tuple(r[:n]): r.p50 for r in rows}
    else:
        p50 = {tuple(r[:n]): r[n] for r in (await session.execute(_nearest_rank_sqlite(keys, conds, 50))).all()}
    return {tuple(r[:n]): (int(r.calls), int(r.successes), p50.get(tuple(r[:n]))) for r in rows}


async def provider_health(session: AsyncSession, start: datetime,
                          end: datetime | None = None) -> dict[str, ProviderHealth]:
    """Per provider with calls in ``start <= created_at < end``: calls (skips excluded),
    successes, and the nearest-rank median latency, the ceil(n/2)-th smallest (PostgreSQL
    percentile_disc(0.5)).  Meant for a short recent window: it reads only that window's rows,
    through the created_at index."""
    found = await _recent(session, [("provider", U.provider)], start, end)
    return {key[0]: ProviderHealth(key[0], *figures) for key, figures in found.items()}


async def model_health(session: AsyncSession, start: datetime,
                       end: datetime | None = None) -> dict[tuple[str, str], ProviderHealth]:
    """`provider_health` per (provider, model): the model selector's speed indicator."""
    found = await _recent(session, [("provider", U.provider), ("model", U.model)], start, end)
    return {key: ProviderHealth(key[0], *figures) for key, figures in found.items()}


__all__ = [
    "GROUP_BY",
    "AgentPerformance",
    "ProviderHealth",
    "Tokens",
    "UnpricedUsage",
    "UsageGroup",
    "UsageReport",
    "UsageStats",
    "agent_performance",
    "model_health",
    "provider_health",
    "unpriced_usage",
    "usage_stats",
    "window_filters",
]
