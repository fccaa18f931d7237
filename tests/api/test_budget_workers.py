"""A hard budget holds across processes: 200 concurrent requests over `llmrelay serve --workers 4`, on SQLite
and on PostgreSQL, spend no more than the limit plus one request's worst case, and the rest are refused
with 402 budget-exceeded.  The budget is written to the database before the server starts; the spend is
read back from the ledger."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from decimal import Decimal

import httpx
import pytest
from tests.dbfixtures import _empty, _run
from tests.servers import Server

from llmrelay.db.budgets import BudgetSpec, BudgetStore
from llmrelay.db.engine import make_engine
from llmrelay.db.migrate import upgrade
from llmrelay.ledger.pricing import load_price_book
from llmrelay.routing.budgets import Budgets
from llmrelay.types import Link

REQUESTS = 200
MAX_TOKENS = 8
BODY = {"model": "openai/gpt-4o", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "Hello"}]}


async def _prepare(url: str) -> tuple[str, Decimal, Decimal]:
    """Put a hard budget on the admin worth about 60 requests' worst case; (their id, limit, one worst case)."""
    from sqlalchemy import select

    from llmrelay.db.models import User

    engine = make_engine(url)
    await upgrade(engine)
    async with engine.connect() as conn:
        user_id = (await conn.execute(select(User.id).where(User.name == "admin"))).scalar_one()
    store = BudgetStore(engine)
    async with engine.connect() as conn:
        from sqlalchemy.ext.asyncio import AsyncSession
        async with AsyncSession(conn) as s:
            book = await load_price_book(s)
    worst = Budgets(store, lambda: book, hold_seconds=60).worst_case(Link("openai", "gpt-4o"), len("Hello"), 0, 0,
                                                                     MAX_TOKENS)
    assert worst is not None and worst > 0
    limit = worst * 60
    await store.put(BudgetSpec("", user_id, None, limit))
    await engine.dispose()
    return user_id, limit, worst


async def _spent(url: str, user_id: str) -> Decimal:
    from sqlalchemy import func, select, type_coerce

    from llmrelay.db.models import AIModelUsage
    from llmrelay.db.types import Money

    engine = make_engine(url)
    async with engine.connect() as conn:
        total = (await conn.execute(select(type_coerce(func.sum(AIModelUsage.cost_usd), Money())).where(
            AIModelUsage.user_id == user_id))).scalar()
    await engine.dispose()
    return Decimal(total or 0)


async def _fire(server_url: str, key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server_url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.post("/v1/chat/completions", json=BODY,
                                                  headers={"authorization": f"Bearer {key}"})
                                      for _ in range(REQUESTS)))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'home' / 'llmrelay.db'}"
    url = request.getfixturevalue("pg_database")
    _run(_empty(url))
    return url


def test_200_concurrent_requests_over_4_workers_overshoot_a_hard_budget_by_at_most_one_worst_case(
        fakes, tmp_path, database):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    env = {**base, **fakes.env(), "LLMRELAY_HOME": str(tmp_path / "home"), "LLMRELAY_MAX_RETRIES": "0",
           "LLMRELAY_DATABASE_URL": database, "LLMRELAY_RATE_RPM": "0", "LLMRELAY_RATE_TPM": "0",
           "LLMRELAY_LOG_LEVEL": "warning"}
    (tmp_path / "home").mkdir()
    limit = worst = None
    server = Server(env, tmp_path, "--workers", "4")
    try:
        key = server.stdout.split("admin api key: ")[1].split()[0]
        user_id, limit, worst = _run_value(_prepare(database))
        answers = _run_value(_fire(server.url, key))
        codes = [r.status_code for r in answers]
        refused = [r for r in answers if r.status_code == 402]
        assert set(codes) <= {200, 402}, [r.text for r in answers if r.status_code not in (200, 402)][:3]
        assert refused and codes.count(200) >= 30, codes
        assert refused[0].json()["error"]["code"] == "budget_exceeded"
        assert f"budget user:{user_id}" in refused[0].json()["error"]["message"]
        served = sum(Decimal(r.headers["x-llmrelay-cost-usd"]) for r in answers if r.status_code == 200)
        assert server.stop() == 0  # every row written out, every lease given back
    finally:
        server.kill()
    spent = _run_value(_spent(database, user_id))
    assert spent == served
    assert spent <= limit + worst, (spent, limit, worst)
    assert spent >= limit - 10 * worst, (spent, limit, worst)  # the budget was used, not refused early
    if database.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "home" / "llmrelay.db") as db:
            left = db.execute("SELECT count(*) FROM budget_leases WHERE amount > used").fetchone()[0]
        assert left == 0  # a stopped server holds nothing back


def _run_value(coro):
    box = []

    async def keep():
        box.append(await coro)

    _run(keep())
    return box[0]

