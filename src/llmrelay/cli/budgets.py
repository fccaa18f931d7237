"""`llmrelay budgets …`: USD budgets per user, per agent, or per user on one agent.

The rules are the HTTP API's (`PUT /api/ai/budgets`, `api.routes.budgets.BudgetIn`), checked the same
way: `--limit` is read exactly as a decimal (never a float), at most 12 decimal places.  A running server
takes a change up within its budget reload interval (a few seconds), in every worker.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import or_, select

from ..config import load_settings
from ..db.audit import Action, cli_actor
from ..db.budgets import scope_of
from ..db.models import User
from ..relay import Relay
from .app import app, console, fail, show

budgets_app = typer.Typer(help="USD budgets: per user, per agent, or per user on one agent.", no_args_is_help=True)
app.add_typer(budgets_app, name="budgets")

_OPTIONS = {"userId": "--user", "agentId": "--agent", "limitUsd": "--limit", "period": "--period",
            "resetDay": "--reset-day", "softPercent": "--soft", "unpriced": "--unpriced", "webhookUrl": "--webhook"}
_LEVELS = {"ok": "green", "soft": "yellow", "hard": "red"}


async def _user_id(relay: Relay, who: str) -> str:
    """The id of the user whose name (or id) is `who`."""
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        rows = (await s.execute(select(User.id, User.name).where(or_(User.id == who, User.name == who)))).all()
    if not rows:
        raise fail(f"--user: no user {who!r} (see `llmrelay users list`)")
    return next((r.id for r in rows if r.name == who), rows[0].id)


async def _names(relay: Relay) -> dict[str, str]:
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        return {r.id: r.name for r in (await s.execute(select(User.id, User.name))).all()}


def _body(fields: dict[str, Any]) -> Any:
    """The budget these options describe, checked by the API's rules; else one line naming the option."""
    from pydantic import ValidationError

    from ..api.errors import Problem
    from ..api.routes.budgets import BudgetIn, invalid

    try:
        return BudgetIn.model_validate({k: v for k, v in fields.items() if v is not None}).check()
    except ValidationError as exc:
        problem = invalid(exc)
    except Problem as exc:
        problem = exc
    option = _OPTIONS.get(problem.field or "", problem.field or "")
    detail = problem.detail.removeprefix(f"{problem.field}: ") if problem.field else problem.detail
    raise fail(f"{option}: {detail}" if option else detail)


@budgets_app.command("set")
def budgets_set(
    user: str | None = typer.Option(None, "--user", metavar="USER", help="The user's name (or id)."),
    agent: str | None = typer.Option(None, "--agent", metavar="ID", help="The agent's id."),
    limit: str = typer.Option(..., "--limit", metavar="USD", help="The hard limit per period, e.g. 25.00."),
    period: str = typer.Option("month", "--period", metavar="PERIOD", help="month, week or day (UTC)."),
    reset_day: int | None = typer.Option(None, "--reset-day", metavar="N",
                                         help="The day of the month a monthly period starts on (1-31)."),
    soft: int = typer.Option(80, "--soft", metavar="PERCENT", help="The soft threshold, in percent of the limit."),
    unpriced: str = typer.Option("refuse", "--unpriced", metavar="MODE",
                                 help="refuse or allow models without a known price."),
    webhook: str | None = typer.Option(None, "--webhook", metavar="URL",
                                       help="Told (POST, JSON) when a period crosses the soft or hard limit."),
    as_json: bool = typer.Option(False, "--json", help="Print the budget as JSON."),
) -> None:
    """Set (create or replace) the budget of a user, an agent, or a user on an agent."""
    if user is None and agent is None:
        raise fail("--user or --agent: a budget is on a user, an agent, or both")
    body = _body({"userId": user, "agentId": agent, "limitUsd": limit, "period": period, "resetDay": reset_day,
                  "softPercent": soft, "unpriced": unpriced, "webhookUrl": webhook})

    async def go() -> dict[str, Any]:
        async with Relay(load_settings()) as relay:
            assert relay.budgets is not None
            if agent is not None and agent not in relay.agents:
                raise fail(f"--agent: unknown agent {agent!r} (known: {', '.join(sorted(relay.agents))})")
            user_id = await _user_id(relay, user) if user is not None else None
            wanted = body.model_copy(update={"userId": user_id}).spec()
            audit = Action(cli_actor(), "budget.set", wanted.scope, wanted.audited())
            spec = await relay.budgets.store.put(wanted, audit)
            return (await relay.budgets.status([spec]))[0].to_dict()

    status = asyncio.run(go())
    if as_json:
        print(json.dumps(status))
        return
    console.print(f"budget {escape(_label(status, {}, user))} set: {status['limitUsd']} USD per {status['period']}"
                  f" (soft at {status['softUsd']}); {status['spentUsd']} spent this period, which resets at "
                  f"{status['resetsAt']}")


@budgets_app.command("list")
def budgets_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Every budget and where its current period stands."""

    async def go() -> tuple[list[dict[str, Any]], dict[str, str]]:
        async with Relay(load_settings()) as relay:
            assert relay.budgets is not None
            return [s.to_dict() for s in await relay.budgets.status()], await _names(relay)

    statuses, names = asyncio.run(go())
    if as_json:
        print(json.dumps(statuses))
        return
    table = Table(title="Budgets (USD; periods in UTC)", title_justify="left")
    for col in ("scope", "period", "spent", "soft", "hard", "level", "resets at (UTC)"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("spent", "soft", "hard") else "left")
    for s in statuses:
        period = s["period"] + (f" from day {s['resetDay']}" if s["period"] == "month" and s["resetDay"] != 1 else "")
        table.add_row(escape(_label(s, names)), period, s["spentUsd"], s["softUsd"], s["limitUsd"],
                      f"[{_LEVELS[s['level']]}]{s['level']}[/]", s["resetsAt"][:16].replace("T", " "))
    if not statuses:
        console.print("no budgets (set one: llmrelay budgets set --user NAME --limit USD)")
        return
    show(table)


@budgets_app.command("clear")
def budgets_clear(
    user: str | None = typer.Option(None, "--user", metavar="USER", help="The user's name (or id)."),
    agent: str | None = typer.Option(None, "--agent", metavar="ID", help="The agent's id."),
) -> None:
    """Remove the budget of a user, an agent, or a user on an agent."""
    if user is None and agent is None:
        raise fail("--user or --agent: a budget is on a user, an agent, or both")

    async def go() -> str:
        async with Relay(load_settings()) as relay:
            assert relay.budgets is not None
            scope = scope_of(await _user_id(relay, user) if user is not None else None, agent)
            if not await relay.budgets.store.delete(scope, Action(cli_actor(), "budget.clear", scope)):
                raise fail(f"no budget on {scope_of(user, agent)} (see `llmrelay budgets list`)", 1)
            return scope

    asyncio.run(go())
    console.print(f"budget {escape(scope_of(user, agent))} removed")


def _label(status: dict[str, Any], names: dict[str, str], user: str | None = None) -> str:
    """The scope with the user's name for their id."""
    name = user if user is not None else names.get(status["userId"] or "")
    return scope_of(name or status["userId"], status["agentId"])
