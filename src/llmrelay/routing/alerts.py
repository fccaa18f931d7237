"""A budget's webhook: a JSON event POSTed when a period first crosses its soft or hard threshold.

Each event is sent once per period and level across every process (`budget_events` decides who sends),
with its id in the body and in `Idempotency-Key`, so a receiver that sees it twice (a retry after a lost
reply) can tell.  Delivery is tried three times (after 1 s and 4 s) with a 5 s timeout; the event's row
records when it was taken.  A budget without a webhook URL still records its events.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db.budgets import BudgetSpec, BudgetStore
from ..db.types import utcnow
from ..redaction import without_credentials
from ..types import money
from .budgets import Alert

log = logging.getLogger("llmrelay.budgets")
DELAYS = (1.0, 4.0)
TIMEOUT = 5.0


def event_body(event_id: str, spec: BudgetSpec, level: str, start: datetime, end: datetime,
               seen: Decimal) -> dict:
    return {"id": event_id, "type": f"budget.{level}", "budget": spec.scope, "budgetId": spec.id,
            "level": level, "periodStart": start.isoformat(), "resetsAt": end.isoformat(),
            "spentUsd": money(seen), "softUsd": money(spec.soft_usd), "limitUsd": money(spec.limit_usd),
            "createdAt": utcnow().isoformat()}


def webhook_alert(engine: AsyncEngine, delays: tuple[float, ...] = DELAYS) -> Alert:
    store = BudgetStore(engine)

    async def alert(event_id: str, spec: BudgetSpec, level: str, start: datetime, end: datetime,
                    seen: Decimal) -> None:
        log.warning("budget %s crossed its %s threshold: %s of %s USD", spec.scope, level, money(seen),
                    money(spec.limit_usd))
        if not spec.webhook_url:
            return
        body = event_body(event_id, spec, level, start, end, seen)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
            for attempt, delay in enumerate((0.0, *delays)):
                await asyncio.sleep(delay)
                try:
                    async with session.post(spec.webhook_url, json=body,
                                            headers={"Idempotency-Key": event_id}) as resp:
                        if resp.status < 300:
                            await store.delivered(event_id)
                            return
                        why = f"HTTP {resp.status}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    why = type(exc).__name__
                log.warning("budget webhook %s: try %d failed (%s)", without_credentials(spec.webhook_url),
                            attempt + 1, why)

    return alert
