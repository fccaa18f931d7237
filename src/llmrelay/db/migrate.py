"""Bring a database's schema to the newest migration (append-only Alembic revisions)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x6C6C6D72656C6179  # "llmrelay": the advisory lock key migrations hold on PostgreSQL


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Apply every migration up to `revision`; returns the revision the database is now at.

    On PostgreSQL the whole upgrade holds a transaction-scoped advisory lock: replicas that start together
    migrate one at a time, and each after the first finds the schema current (it reads the revision only
    once it holds the lock).  A SQLite file is one machine's: `llmrelay serve --workers N` migrates in the
    parent before the workers start."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
    return await current(engine)


async def ensure_schema(engine: AsyncEngine) -> None:
    """Upgrade only when the database is behind (a cheap check first: CLI start-up stays quick)."""
    if await current(engine) != head():
        await upgrade(engine)
