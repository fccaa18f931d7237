"""Budgets and their leases in the database (`budgets`, `budget_leases`, `budget_events`).

What a budget's period has spent is always read from the ledger (`ai_model_usage`, the source of truth):
never kept in a counter that could drift.  What is admitted but not yet in the ledger is held by leases:
money of the period one process has set aside for the requests it admits, counted for `amount - used`
until it expires.  `take_lease` is the one place that hands out money; it runs in one transaction whose
first statement writes the budget's row, so every process (workers, replicas on one PostgreSQL, one SQLite
file) takes its leases of one budget one at a time, each seeing the ledger and every lease as they are.
The ledger writer adds each row's cost to its lease's `used` in the transaction that inserts the row
(`settle`), so a settled amount is never counted twice nor missed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..types import money
from .audit import Action, record_action, safe_url
from .models import AIModelUsage, Budget, BudgetEvent, BudgetLease
from .types import Money, quantize, utcnow

PERIODS = ("month", "week", "day")
LATENESS = timedelta(hours=24)
UNPRICED = ("refuse", "allow")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A budget as it is set: whose (`user_id`, `agent_id`, one or both), per what period, how much."""

    id: str
    user_id: str | None
    agent_id: str | None
    limit_usd: Decimal
    period: str = "month"
    reset_day: int = 1
    soft_percent: int = 80
    unpriced: str = "refuse"
    webhook_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def scope(self) -> str:
        return scope_of(self.user_id, self.agent_id)

    @property
    def soft_usd(self) -> Decimal:
        return quantize(self.limit_usd * self.soft_percent / 100)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "userId": self.user_id, "agentId": self.agent_id,
                "period": self.period, "resetDay": self.reset_day, "limitUsd": money(self.limit_usd),
                "softPercent": self.soft_percent, "softUsd": money(self.soft_usd), "unpriced": self.unpriced,
                "webhookUrl": self.webhook_url,
                "createdAt": self.created_at.isoformat() if self.created_at else None,
                "updatedAt": self.updated_at.isoformat() if self.updated_at else None}


    def audited(self) -> dict[str, Any]:
        """What an audit row keeps of it: its values, the webhook URL without its query or credentials."""
        return {"limitUsd": money(self.limit_usd), "period": self.period, "resetDay": self.reset_day,
                "softPercent": self.soft_percent, "unpriced": self.unpriced, "webhookUrl": safe_url(self.webhook_url)}


def scope_of(user_id: str | None, agent_id: str | None) -> str:
    """`user:<id>`, `agent:<id>` or `user:<id>/agent:<id>`."""
    if user_id and agent_id:
        return f"user:{user_id}/agent:{agent_id}"
    if user_id:
        return f"user:{user_id}"
    if agent_id:
        return f"agent:{agent_id}"
    raise ValueError("a budget is on a user, an agent, or both")


def _spec(row: Budget) -> BudgetSpec:
    return BudgetSpec(row.id, row.user_id, row.agent_id, row.limit_usd, row.period, row.reset_day,
                      row.soft_percent, row.unpriced, row.webhook_url, row.created_at, row.updated_at)


@dataclass(frozen=True, slots=True)
class Grant:
    """What `take_lease` found and gave: the new lease (None when nothing was left to give), its amount,
    the period's spend in the ledger and what other leases still hold."""

    lease_id: str | None
    amount: Decimal
    spent: Decimal
    reserved: Decimal


_SETTLE = (update(BudgetLease).where(BudgetLease.id == bindparam("lease"))
           .values(used=BudgetLease.used + bindparam("cost", type_=Money())))


class BudgetStore:
    """`lateness`: how long after it began a call's ledger row may still arrive (the request deadline, the
    writer's batching; a database outage longer than this delays spool replays beyond it).  The period's
    rows older than that are summed once and kept (and added to hour by hour); only the newer ones are summed
    again for every lease, so a lease does not read a month of a busy user's rows."""

    def __init__(self, engine: AsyncEngine, lateness: timedelta = LATENESS) -> None:
        self.engine = engine
        self.lateness = lateness
        self._bases: dict[str, tuple[datetime, datetime, Decimal]] = {}
        """budget id -> (its period's start, a cut, what the ledger's rows of the period before the cut cost)"""

    # -- the budgets -----------------------------------------------------------------------------

    async def all(self) -> list[BudgetSpec]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(Budget).order_by(Budget.scope))).all()
        return [_spec(Budget(**row._mapping)) for row in rows]

    async def put(self, spec: BudgetSpec, audit: Action | None = None) -> BudgetSpec:
        """Create the budget of `spec.scope`, or change it (its id and creation time stay); `audit` is
        recorded in the same transaction."""
        now = utcnow()
        values = {"user_id": spec.user_id, "agent_id": spec.agent_id, "period": spec.period,
                  "reset_day": spec.reset_day, "limit_usd": spec.limit_usd, "soft_percent": spec.soft_percent,
                  "unpriced": spec.unpriced, "webhook_url": spec.webhook_url, "updated_at": now}
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(Budget.id, Budget.created_at).where(Budget.scope == spec.scope))).first()
            if found is None:
                budget_id = spec.id or uuid.uuid4().hex
                await conn.execute(insert(Budget).values(id=budget_id, scope=spec.scope, lease_seq=0,
                                                         created_at=now, **values))
                created = now
            else:
                budget_id, created = found
                await conn.execute(update(Budget).where(Budget.id == budget_id).values(**values))
            if audit is not None:
                await record_action(conn, audit)
        return BudgetSpec(budget_id, spec.user_id, spec.agent_id, spec.limit_usd, spec.period, spec.reset_day,
                          spec.soft_percent, spec.unpriced, spec.webhook_url, created, now)

    async def delete(self, scope: str, audit: Action | None = None) -> bool:
        """Remove the budget of `scope` (False: there was none); `audit` is recorded in the same transaction."""
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(Budget.id).where(Budget.scope == scope))).scalar()
            if found is None:
                return False
            await conn.execute(delete(BudgetLease).where(BudgetLease.budget_id == found))
            await conn.execute(delete(BudgetEvent).where(BudgetEvent.budget_id == found))
            await conn.execute(delete(Budget).where(Budget.id == found))
            if audit is not None:
                await record_action(conn, audit)
        return True

    # -- what a period spent and holds ------------------------------------------------------------

    @staticmethod
    def _spent_query(spec: BudgetSpec, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
        where = [AIModelUsage.created_at >= start, AIModelUsage.created_at < end]
        if spec.user_id:
            where.append(AIModelUsage.user_id == spec.user_id)
        if spec.agent_id:
            where.append(AIModelUsage.agent_id == spec.agent_id)
        return select(type_coerce(func.coalesce(func.sum(AIModelUsage.cost_usd), 0), Money())).where(and_(*where))

    @staticmethod
    def _reserved_query(budget_id: str, start: datetime, now: datetime):  # type: ignore[no-untyped-def]
        held = case((BudgetLease.amount > BudgetLease.used, BudgetLease.amount - BudgetLease.used), else_=0)
        return select(type_coerce(func.coalesce(func.sum(held), 0), Money())).where(
            BudgetLease.budget_id == budget_id, BudgetLease.period_start == start, BudgetLease.expires_at > now)

    async def _base(self, spec: BudgetSpec, start: datetime, end: datetime, now: datetime) -> tuple[datetime, Decimal]:
        """(cut, what the period's rows before the cut cost): rows that old are all in the ledger by now."""
        hour = (now - self.lateness).replace(minute=0, second=0, microsecond=0)
        cut = min(max(start, hour), end)
        known = self._bases.get(spec.id)
        if known is not None and known[0] == start and known[1] == cut:
            return cut, known[2]
        if known is not None and known[0] == start and known[1] < cut:
            since, base = known[1], known[2]
        else:
            since, base = start, ZERO
        if since < cut:
            async with self.engine.connect() as conn:
                base += Decimal((await conn.execute(self._spent_query(spec, since, cut))).scalar() or 0)
        base = quantize(base)
        self._bases[spec.id] = (start, cut, base)
        return cut, base

    async def usage(self, spec: BudgetSpec, start: datetime, end: datetime,
                    now: datetime | None = None) -> tuple[Decimal, Decimal]:
        """(spent in the ledger, held by unexpired leases) of the period [start, end)."""
        now = now or utcnow()
        cut, base = await self._base(spec, start, end, now)
        async with self.engine.connect() as conn:
            spent = (await conn.execute(self._spent_query(spec, cut, end))).scalar()
            held = (await conn.execute(self._reserved_query(spec.id, start, now))).scalar()
        return quantize(base + Decimal(spent or 0)), quantize(Decimal(held or 0))

    # -- leases -----------------------------------------------------------------------------------

    async def take_lease(self, spec: BudgetSpec, start: datetime, end: datetime, need: Decimal, share: Decimal,
                         until: datetime, *, now: datetime | None = None,
                         retire: tuple[str, Decimal, datetime] | None = None) -> Grant:
        """Set money of the period aside: `need` at least (or whatever is left, if less), a `share` of what
        is left when that is more; first shrinking the lease `retire` = (id, amount, new expiry) this
        process is done with to what its requests still hold."""
        now = now or utcnow()
        cut, base = await self._base(spec, start, end, now)
        async with self.engine.begin() as conn:
            # the first statement writes: it takes the budget's row lock (PostgreSQL) or the database's
            # write lock (SQLite) until the end of the transaction
            await conn.execute(update(Budget).where(Budget.id == spec.id).values(lease_seq=Budget.lease_seq + 1))
            if retire is not None:
                await conn.execute(update(BudgetLease).where(BudgetLease.id == retire[0]).values(
                    amount=retire[1], expires_at=retire[2]))
            await conn.execute(delete(BudgetLease).where(BudgetLease.budget_id == spec.id,
                                                         BudgetLease.expires_at <= now))
            spent = quantize(base + Decimal((await conn.execute(self._spent_query(spec, cut, end))).scalar() or 0))
            held = quantize(Decimal((await conn.execute(self._reserved_query(spec.id, start, now))).scalar() or 0))
            left = spec.limit_usd - spent - held
            if left <= 0:
                return Grant(None, ZERO, spent, held)
            amount = quantize(min(left, max(need, left * share)))
            lease_id = uuid.uuid4().hex
            await conn.execute(insert(BudgetLease).values(id=lease_id, budget_id=spec.id, period_start=start,
                                                          amount=amount, used=ZERO, expires_at=until))
        return Grant(lease_id, amount, spent, held)

    async def retire(self, lease_id: str, amount: Decimal, until: datetime) -> None:
        """Shrink a lease to what its requests still hold (`amount`), kept until `until`."""
        async with self.engine.begin() as conn:
            await conn.execute(update(BudgetLease).where(BudgetLease.id == lease_id).values(
                amount=amount, expires_at=until))

    @staticmethod
    async def settle(conn: AsyncConnection, costs: Mapping[str, Decimal]) -> None:
        """Within the ledger writer's transaction: each lease's `used` grows by the cost of its rows."""
        if costs:
            await conn.execute(_SETTLE, [{"lease": k, "cost": v} for k, v in costs.items()])

    # -- thresholds crossed -------------------------------------------------------------------------

    async def crossed(self, budget_id: str, event_id: str, level: str, spent: Decimal) -> bool:
        """Note that a period crossed a threshold; True the first time (in any process), False after."""
        try:
            async with self.engine.begin() as conn:
                if (await conn.execute(select(BudgetEvent.id).where(BudgetEvent.id == event_id))).first():
                    return False
                await conn.execute(insert(BudgetEvent).values(id=event_id, budget_id=budget_id, level=level,
                                                              spent_usd=spent, created_at=utcnow()))
        except IntegrityError:  # another process noted it first
            return False
        return True

    async def delivered(self, event_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(BudgetEvent).where(BudgetEvent.id == event_id).values(delivered_at=utcnow()))
