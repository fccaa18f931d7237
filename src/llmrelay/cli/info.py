"""`llmrelay agents` and `llmrelay providers`: what is configured and whether it works."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.markup import escape
from rich.table import Table

from ..config import load_settings
from ..relay import Relay
from .app import app, console, show


@app.command()
def agents(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the agents and their fallback chains (disabled providers dimmed)."""
    relay = Relay(load_settings(), ledger=None)
    catalog = relay.agents
    enabled = {p.name for p in relay.provider_status() if p.enabled}
    if as_json:
        print(json.dumps([{"id": a.id, "name": a.name, "description": a.description, "costTier": a.cost_tier,
                           "defaultProvider": a.primary.provider,
                           "chain": [{"provider": x.provider, "model": x.model, "enabled": x.provider in enabled}
                                     for x in a.links]} for a in catalog.values()]))
        return
    table = Table(title="Agents", title_justify="left")
    for col in ("id", "name", "tier", "fallback chain (first to last)"):
        table.add_column(col, no_wrap=col != "fallback chain (first to last)", overflow="fold")
    for a in catalog.values():
        chain = " → ".join(escape(str(x)) if x.provider in enabled else f"[dim strike]{escape(str(x))}[/]"
                           for x in a.links)
        table.add_row(escape(a.id), escape(a.name), a.cost_tier, chain)
    show(table)
    if len(enabled) < len(relay.provider_status()):
        console.print("[dim]struck-through links belong to disabled providers: see `llmrelay providers`[/]")


@app.command()
def providers(
    check: bool = typer.Option(False, "--check", help="Send each enabled provider a one-token request."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Which providers are enabled, and why not.  Exit code 1 when a --check fails."""
    relay = Relay(load_settings(), ledger=None)
    checks = asyncio.run(_check_all(relay)) if check else {}
    rows = [{"name": p.name, "enabled": p.enabled, "reason": p.disabled_reason, "baseUrl": p.base_url,
             **({"check": checks[p.name]} if p.name in checks else {})} for p in relay.provider_status()]
    if as_json:
        print(json.dumps(rows))
    else:
        table = Table(title="Providers", title_justify="left")
        for col in ("provider", "status", "base URL") + (("check",) if check else ()):
            table.add_column(col, no_wrap=col in ("provider", "base URL"), overflow="fold")
        for r in rows:
            status = "[green]enabled[/]" if r["enabled"] else f"[yellow]disabled[/]: {escape(r['reason'] or '')}"
            extra = ()
            if check:
                c = r.get("check")
                if c is None:
                    extra = ("—",)
                elif c["ok"]:
                    extra = (f"[green]ok[/] {c['latencyMs']} ms ({escape(c['detail'])})",)
                else:
                    extra = (f"[red]failed[/] {escape(c['detail'])}",)
            table.add_row(r["name"], status, escape(r["baseUrl"] or ""), *extra)
        show(table)
    if any(not c["ok"] for c in checks.values()):
        raise typer.Exit(1)


async def _check_all(relay: Relay) -> dict[str, dict]:
    async with relay:
        names = list(relay.providers)
        results = await asyncio.gather(*(relay.check_provider(n) for n in names))
    return {name: {"ok": ok, "latencyMs": ms, "detail": detail}
            for name, (ok, ms, detail) in zip(names, results, strict=True)}
