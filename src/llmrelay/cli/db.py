"""`llmrelay db …`: the ledger database's schema migrations."""

from __future__ import annotations

import asyncio

import typer

from ..config import load_settings
from ..db.engine import display_url, make_engine
from ..db.migrate import current, head, upgrade
from .app import app, console

db_app = typer.Typer(help="The ledger database: schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (llmrelay serve does this by itself)."""
    settings = load_settings()

    async def go() -> tuple[str | None, str | None]:
        engine = make_engine(settings.db_url)
        try:
            before = await current(engine)
            return before, await upgrade(engine)
        finally:
            await engine.dispose()

    before, after = asyncio.run(go())
    where = display_url(settings.db_url)
    if before == after:
        console.print(f"{where}: already at revision {after}")
    else:
        console.print(f"{where}: upgraded from {before or 'an empty database'} to revision {after}")


@db_app.command("status")
def db_status() -> None:
    """The database's revision and the newest one this version knows."""
    settings = load_settings()

    async def go() -> str | None:
        engine = make_engine(settings.db_url)
        try:
            return await current(engine)
        finally:
            await engine.dispose()

    rev, newest = asyncio.run(go()), head()
    state = "up to date" if rev == newest else "behind: run `llmrelay db upgrade`"
    console.print(f"{display_url(settings.db_url)}: revision {rev or 'none (empty)'}; newest {newest}; {state}")
