"""Alembic environment.  Migrations run on a connection llmrelay hands over
(`llmrelay.db.migrate.upgrade`), or, from the `alembic` command line, on the URL in
LLMRELAY_DATABASE_URL (else the default SQLite file)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from llmrelay.db.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_from_settings() -> None:
    from llmrelay.config import load_settings
    from llmrelay.db.engine import make_engine

    async def go() -> None:
        engine = make_engine(load_settings().db_url)
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(go())


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    run_from_settings()
