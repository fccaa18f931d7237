"""`llmrelay audit`: the audit log of admin actions (users, keys, prices, budgets), newest first.

Every row says who (a user id for the API, `cli:<os user>` for the command line), what, on what, with
which new values, and where from.  Keys appear only by their prefix; URLs without query or credentials.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ..db.audit import ACTIONS, MAX_LIMIT, recent
from ..ledger import Ledger
from .app import app, console, fail, show, with_ledger


@app.command("audit")
def audit(
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_LIMIT, metavar="N", help="At most N rows, newest first."),
    action: str | None = typer.Option(None, "--action", metavar="A", help=f"Only this action: {', '.join(ACTIONS)}."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Admin actions (users, keys, prices, budgets): who did what, when, to what, from where."""
    if action is not None and action not in ACTIONS:
        raise fail(f"--action: unknown action {action!r} (known: {', '.join(ACTIONS)})")

    async def go(ledger: Ledger) -> list[dict[str, Any]]:
        async with ledger.sessions() as s:
            return await recent(s, limit, action)

    rows = asyncio.run(with_ledger(go))
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        console.print("no audit entries" + (f" for {action}" if action else ""))
        return
    table = Table(title="Audit log, newest first (times in UTC)", title_justify="left")
    for col in ("at", "actor", "action", "target", "details", "source"):
        table.add_column(col, no_wrap=col != "details", overflow="fold")
    for r in rows:
        details = ", ".join(f"{k}={_plain(v)}" for k, v in r["details"].items() if v is not None)
        table.add_row(r["at"][:19].replace("T", " "), escape(r["actor"]), r["action"], escape(r["target"]),
                      escape(details), r["source"])
    show(table)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
