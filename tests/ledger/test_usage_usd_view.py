"""The read-only view `usage_usd` (migration 0012): the ledger's money in dollars and its prices per 1M tokens,
as plain numbers for BI tools, on both databases, while the table keeps its exact stored unit (integer
pico-dollars on SQLite)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from llmrelay.db.engine import make_engine
from llmrelay.db.models import AIModelUsage

ROW = {"request_id": "view-1", "attempt": 1, "user_id": "u", "agent_id": "a", "provider": "openai",
       "model": "gpt-4o", "status": "success", "prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1,
       "cached_prompt_tokens": 0, "reasoning_tokens": 0, "cache_write_tokens": 0,
       "cost_usd": Decimal("0.000003"), "input_price": Decimal("0.003"), "output_price": Decimal("0.015"),
       "cached_input_price": None, "cache_write_price": None, "unpriced": False,
       "provider_cost_usd": Decimal("0.0000031"), "cost_mismatch": False, "latency_ms": 5,
       "created_at": datetime(2026, 12, 6, tzinfo=UTC)}


async def test_the_view_gives_dollars_and_per_million_prices_and_the_table_keeps_its_unit(db_url):
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(insert(AIModelUsage), [{**ROW, "id": uuid.uuid4()}])
    async with engine.connect() as conn:
        view = (await conn.execute(text(
            "SELECT cost_usd, provider_cost_usd, input_usd_per_1m, output_usd_per_1m, cached_input_usd_per_1m, "
            "prompt_tokens, model FROM usage_usd WHERE request_id = 'view-1'"))).one()
        raw = (await conn.execute(text("SELECT cost_usd FROM ai_model_usage WHERE request_id = 'view-1'"))).scalar()
    await engine.dispose()
    cost, theirs, per_1m_in, per_1m_out, cached, tokens, model = view
    assert (Decimal(str(cost)), Decimal(str(theirs))) == (Decimal("0.000003"), Decimal("0.0000031"))
    assert (Decimal(str(per_1m_in)), Decimal(str(per_1m_out)), cached) == (Decimal(3), Decimal(15), None)
    assert (tokens, model) == (1, "gpt-4o")
    if db_url.startswith("sqlite"):
        assert raw == 3_000_000 and isinstance(cost, float)  # the stored unit: pico-dollars; the view: dollars
    else:
        assert raw == Decimal("0.000003")


@pytest.mark.parametrize("statement", [
    "INSERT INTO usage_usd (request_id) VALUES ('x')",
    "UPDATE usage_usd SET model = 'x'",
    "DELETE FROM usage_usd",
])
async def test_the_view_refuses_writes(db_url, statement):
    engine = make_engine(db_url)
    try:
        with pytest.raises(DBAPIError):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
