"""`llmrelay db …` and `llmrelay pricing …`: the ledger's schema and its price table."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal, InvalidOperation

import typer
from rich.markup import escape
from rich.table import Table

from ..config import load_settings
from ..db.audit import cli_actor, record
from ..db.engine import display_url, make_engine
from ..db.migrate import current, head, upgrade
from ..ledger import Ledger
from ..ledger.pricing import Price, add_prices, load_price_book, sync_prices
from ..providers.registry import known_providers, provider_class
from .app import app, console, fail

db_app = typer.Typer(help="The ledger database: schema migrations.", no_args_is_help=True)
pricing_app = typer.Typer(help="Model prices (USD per 1M tokens), with history.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(pricing_app, name="pricing")


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


def _usd(option: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise fail(f"{option}: not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise fail(f"{option}: must be a non-negative amount of USD per 1M tokens, not {value!r}")
    return d


async def _with_ledger(fn):
    ledger = Ledger(load_settings())
    await ledger.start()
    try:
        return await fn(ledger)
    finally:
        await ledger.aclose()


_AUDITED_MODELS = 200
"""A sync's audit row names at most this many of the models whose price it added (with their prices)."""


def _per_million(price: Price) -> dict[str, Decimal | None]:
    """A price's new values as an audit row keeps them: USD per 1M tokens."""
    v = price.per_million_view()
    return {"input": v["input"], "output": v["output"], "cachedInput": v["cached_input"],
            "cacheWrite": v["cache_write"]}


def _m(v: Decimal | None) -> str:
    return "—" if v is None else f"{v.normalize():f}"


@pricing_app.command("list")
def pricing_list(
    provider: str | None = typer.Option(None, "--provider", help="Only this provider."),
    history: bool = typer.Option(False, "--all", help="Every price row, not only those in effect now."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The prices in effect now (or their whole history), in USD per 1M tokens."""

    async def go(ledger: Ledger) -> list[Price]:
        async with ledger.sessions() as s:
            book = await load_price_book(s)
        return book.history() if history else book.current()

    prices = [p for p in asyncio.run(_with_ledger(go)) if provider in (None, p.provider)]
    rows = [{"provider": p.provider, "model": p.model, **{k: _m(v) for k, v in p.per_million_view().items()},
             "effectiveFrom": p.effective_from.isoformat() if p.effective_from else None, "source": p.source}
            for p in prices]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title="Prices, USD per 1M tokens", title_justify="left")
    for col in ("provider", "model", "input", "output", "cached input", "cache write", "effective from", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["provider"], escape(r["model"]), r["input"], r["output"], r["cached_input"], r["cache_write"],
                      (r["effectiveFrom"] or "")[:19].replace("T", " "), r["source"])
    console.print(table)


@pricing_app.command("set")
def pricing_set(
    provider: str = typer.Argument(..., help="anthropic, openai, google, openrouter or ollama."),
    model: str = typer.Argument(..., help="The model id as the provider names it ('*': every other model)."),
    input: str = typer.Option(..., "--input", help="USD per 1M input tokens."),
    output: str = typer.Option(..., "--output", help="USD per 1M output tokens."),
    cached_input: str | None = typer.Option(None, "--cached-input", help="USD per 1M cached input tokens."),
    cache_write: str | None = typer.Option(None, "--cache-write", help="USD per 1M tokens written to a cache."),
) -> None:
    """Add a price effective now.  Calls made before keep the price they had."""
    known = known_providers()
    if provider not in known:
        raise fail(f"unknown provider {provider!r} (known: {', '.join(known)})")
    if not model.strip():
        raise fail("MODEL must not be empty")
    price = Price.per_million(provider, model.strip(), _usd("--input", input), _usd("--output", output),  # type: ignore
                              _usd("--cached-input", cached_input), _usd("--cache-write", cache_write))

    async def go(ledger: Ledger) -> None:
        async with ledger.sessions() as s, s.begin():
            await add_prices(s, [price])
            await record(s, cli_actor(), "price.set", f"{provider}/{price.model}", _per_million(price))

    asyncio.run(_with_ledger(go))
    v = price.per_million_view()
    console.print(f"{provider}/{escape(model)}: input ${_m(v['input'])}, output ${_m(v['output'])}, cached input "
                  f"{'$' + _m(v['cached_input']) if v['cached_input'] is not None else 'as input'} per 1M tokens, "
                  f"effective now")


@pricing_app.command("sync")
def pricing_sync(
    provider: str = typer.Option("openrouter", "--provider", help="A provider that publishes its prices."),
) -> None:
    """Read a provider's published model list and add a price row for every model whose price changed."""
    from ..types import ProviderError

    settings = load_settings()
    if provider not in known_providers():
        raise fail(f"unknown provider {provider!r} (known: {', '.join(known_providers())})")
    ps = settings.provider(provider)
    adapter = provider_class(provider)(ps.base_url, ps.api_key)  # a public price list needs no key

    async def go(ledger: Ledger):
        try:
            entries = await adapter.model_prices()
        finally:
            await adapter.aclose()
        if entries is None:
            return None
        async with ledger.sessions() as s, s.begin():
            book = await load_price_book(s)
            report = await sync_prices(s, book, provider,
                                       ((e.model, e.prompt, e.completion, e.cache_read, e.cache_write)
                                        for e in entries), provider)
            await record(s, cli_actor(), "price.sync", provider,
                         {"added": len(report.added), "unchanged": report.unchanged, "unknown": len(report.unknown),
                          "models": {p.model: _per_million(p) for p in report.added[:_AUDITED_MODELS]}})
            return report

    try:
        report = asyncio.run(_with_ledger(go))
    except ProviderError as err:
        raise fail(f"cannot read {provider}'s model list at {ps.base_url}: {err.kind}: {err.message}", 1) from None
    if report is None:
        raise fail(f"{provider} publishes no price list: set its prices with `llmrelay pricing set`")
    console.print(f"{provider}: {len(report.added)} new price(s), {report.unchanged} unchanged, "
                  f"{len(report.unknown)} without a usable price")
    for p in report.added[:50]:
        v = p.per_million_view()
        console.print(f"  + {escape(p.model)}: ${_m(v['input'])} / ${_m(v['output'])} per 1M")
    if len(report.added) > 50:
        console.print(f"  … and {len(report.added) - 50} more (`llmrelay pricing list --provider {provider}`)")


@pricing_app.command("unpriced")
def pricing_unpriced(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Models used without a known price: their calls have no cost (NULL), never a false 0."""
    from ..ledger.stats import unpriced_usage

    async def go(ledger: Ledger):
        async with ledger.sessions() as s:
            return await unpriced_usage(s)

    rows = asyncio.run(_with_ledger(go))
    data = [r.to_dict() for r in rows]
    if as_json:
        print(json.dumps(data, default=str))
        return
    if not data:
        console.print("every call in the ledger is priced")
        return
    table = Table(title="Unpriced usage: set a price with `llmrelay pricing set`", title_justify="left")
    keys = list(data[0])
    for k in keys:
        table.add_column(k, overflow="fold")
    for d in data:
        table.add_row(*(escape(str(d[k])) for k in keys))
    console.print(table)
