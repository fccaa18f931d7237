"""PostgreSQL's change notifications (migration 0011, `db.changes.ChangeFeed`): a committed write to a
watched table, from any connection, reaches the watchers at once; a write that changes nothing a process
holds (a key's last use, a budget's lease counter) does not; a lost connection is re-made and then every
watcher reloads (what changed meanwhile is unknown)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text, update

from llmrelay.db.changes import ChangeFeed
from llmrelay.db.configs import ConfigStore
from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.models import ApiKey
from llmrelay.db.users import create_key, create_user, revoke_key
from llmrelay.types import ChainConfig, Link


class Counts:
    def __init__(self):
        self.calls: dict[str, int] = {}

    def watcher(self, table: str):
        async def reload():
            self.calls[table] = self.calls.get(table, 0) + 1
        return reload


async def _until(check, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def feed(pg_database):
    from tests.dbfixtures import _empty

    await _empty(pg_database)
    engine = make_engine(pg_database)
    feed = ChangeFeed.for_engine(engine, retry_seconds=0.2)
    assert feed is not None
    counts = Counts()
    for table in ("users", "api_keys", "ai_model_config", "budgets", "ai_provider_costs"):
        feed.watch(table, counts.watcher(table))
    await feed.start()
    await asyncio.wait_for(feed.listening.wait(), 10)
    yield feed, counts, engine
    await feed.aclose()
    await engine.dispose()


async def test_a_write_from_another_connection_reaches_the_watchers_of_its_table(feed):
    feed, counts, engine = feed
    async with sessions(engine)() as s, s.begin():
        user = await create_user(s, "ada")
    await _until(lambda: counts.calls.get("users") == 1)
    async with sessions(engine)() as s, s.begin():
        _, key = await create_key(s, user)
    await _until(lambda: counts.calls.get("api_keys") == 1)
    await ConfigStore(sessions(engine)).save(user.id, "general-agent",
                                             ChainConfig(Link("openai", "gpt-4o"), (), 100, None))
    await _until(lambda: counts.calls.get("ai_model_config") == 1)

    # a key's last use changes nothing another process holds: no notification
    async with sessions(engine)() as s, s.begin():
        await s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=datetime.now(UTC)))
    async with sessions(engine)() as s, s.begin():
        await revoke_key(s, key.prefix)
    await _until(lambda: counts.calls.get("api_keys") == 2)
    await asyncio.sleep(0.2)
    assert counts.calls["api_keys"] == 2 and "budgets" not in counts.calls


async def test_a_lost_listening_connection_is_made_again_and_everything_reloads(feed):
    feed, counts, engine = feed
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"))
    await _until(lambda: all(counts.calls.get(t, 0) >= 1 for t in
                             ("users", "api_keys", "ai_model_config", "budgets", "ai_provider_costs")))
    await asyncio.wait_for(feed.listening.wait(), 10)
    before = dict(counts.calls)
    async with sessions(engine)() as s, s.begin():
        await create_user(s, "grace")
    await _until(lambda: counts.calls["users"] == before["users"] + 1)


def test_sqlite_has_no_feed(tmp_path):
    assert ChangeFeed.for_engine(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")) is None
