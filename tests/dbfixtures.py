"""Database fixtures: every ledger test runs on SQLite and on PostgreSQL.

PostgreSQL comes from LLMRELAY_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test, the
server .ci/run makes sure of).  The session creates its own database beside that one, migrates
it once and empties it between tests.  When the server is unreachable the PostgreSQL variants
are skipped with a line that says so."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from sqlalchemy import text

from llmrelay.db.engine import async_url, display_url, make_engine
from llmrelay.db.migrate import upgrade

PG_ADMIN = os.environ.get("LLMRELAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = ("audit_log", "budget_events", "budget_leases", "budgets", "ai_model_usage", "ai_model_config", "messages",
          "conversations", "api_keys", "users")


def _run(coro) -> None:
    """Run a coroutine to completion from anywhere, even inside a running event loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _admin(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database():
    name = f"llmrelay_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    import asyncpg

    try:
        _run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {display_url(PG_ADMIN)} ({type(exc).__name__}: {exc}); "
                    f"set LLMRELAY_TEST_PG or start it (.ci/run does)")
    base = async_url(PG_ADMIN)
    url = base.rsplit("/", 1)[0] + "/" + name

    async def migrate() -> None:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()

    _run(migrate())
    yield url
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
        await conn.execute(text("DELETE FROM ai_provider_costs WHERE source <> 'seed'"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request, tmp_path):
    """A migrated, empty ledger database (seed prices only), on each backend in turn."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
        yield url
    else:
        url = request.getfixturevalue("pg_database")
        await _empty(url)
        yield url
