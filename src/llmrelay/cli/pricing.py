"""`llmrelay pricing …`: the price table, with history (list, set, sync from a published source, unpriced)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ..config import load_settings
from ..db.audit import cli_actor, record
from ..ledger import Ledger
from ..ledger.pricing import (
    Price,
    SyncReport,
    add_prices,
    load_price_book,
    per_token_prices,
    plan_sync,
    usd_per_1m,
    write_sync,
)
from ..providers.registry import known_providers, provider_class
from .app import app, console, fail, show, with_ledger

pricing_app = typer.Typer(help="Model prices (USD per 1M tokens), with history.", no_args_is_help=True)
app.add_typer(pricing_app, name="pricing")


def _usd(option: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return usd_per_1m(value)
    except ValueError as err:
        raise fail(f"{option}: {err}") from None


_AUDITED_MODELS = 200
"""A sync's audit row names at most this many of the models whose price it added (with their prices)."""
_SHOWN_CHANGES = 50
"""A sync prints the changes of at most this many models (`--json` gives them all)."""
_LABELS = {"input": "input", "output": "output", "cached_input": "cached input", "cache_write": "cache write",
           "cache_write_1h": "cache write 1h"}


def _per_million(price: Price) -> dict[str, Any]:
    """A price as an audit row and `--json` keep it: USD per 1M tokens, its tiers with it."""
    v = price.per_million_view()
    out: dict[str, Any] = {"input": v["input"], "output": v["output"], "cachedInput": v["cached_input"],
                           "cacheWrite": v["cache_write"], "cacheWrite1h": v["cache_write_1h"]}
    if price.tiers:
        out["tiers"] = [{"aboveInputTokens": t.above, **_per_million(t)} for t in price.tiers]
    return out


def _m(v: Decimal | None) -> str:
    return "—" if v is None else f"{v.normalize():f}"


def _tokens(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _lines(price: Price | None) -> dict[str, str]:
    """A price's figures per 1M tokens by label, its tiers' as `input >200k`, …; absent ones left out."""
    if price is None:
        return {}
    out = {}
    for p in (price, *price.tiers):
        suffix = f" >{_tokens(p.above)}" if p.above else ""
        for name, value in p.per_million_view().items():
            if value is not None:
                out[_LABELS[name] + suffix] = _m(value)
    return out


def _tiers_text(price: Price) -> str:
    return "; ".join(f">{_tokens(t.above)}: {_m(t.per_million_view()['input'])} / {_m(t.per_million_view()['output'])}"
                     for t in price.tiers)


@pricing_app.command("list")
def pricing_list(
    provider: str | None = typer.Option(None, "--provider", metavar="NAME", help="Only this provider."),
    history: bool = typer.Option(False, "--all", help="Every price row, not only those in effect now."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The prices in effect now (or their whole history), in USD per 1M tokens; a tiered price shows the
    input / output prices above each threshold of input tokens (`--json`: every figure of every tier)."""

    async def go(ledger: Ledger) -> list[Price]:
        async with ledger.sessions() as s:
            book = await load_price_book(s)
        return book.history() if history else book.current()

    prices = [p for p in asyncio.run(with_ledger(go)) if provider in (None, p.provider)]
    rows = [{"provider": p.provider, "model": p.model, **{k: _m(v) for k, v in p.per_million_view().items()},
             "tiers": [{"aboveInputTokens": t.above, **{k: _m(v) for k, v in t.per_million_view().items()}}
                       for t in p.tiers],
             "effectiveFrom": p.effective_from.isoformat() if p.effective_from else None, "source": p.source}
            for p in prices]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title="Prices, USD per 1M tokens", title_justify="left")
    for col in ("provider", "model", "input", "output", "cached input", "cache write", "cache write 1h",
                "above n input tokens: input / output", "effective from", "source"):
        table.add_column(col, overflow="fold")
    for p, r in zip(prices, rows, strict=True):
        table.add_row(escape(r["provider"]), escape(r["model"]), r["input"], r["output"], r["cached_input"],
                      r["cache_write"], r["cache_write_1h"], escape(_tiers_text(p)),
                      (r["effectiveFrom"] or "")[:19].replace("T", " "), escape(r["source"]))
    show(table, heading=2)


def _tier_option(spec: str) -> tuple[int, list[Decimal | None]]:
    """`ABOVE:INPUT:OUTPUT[:CACHED[:WRITE[:WRITE_1H]]]` (USD per 1M tokens; an empty field: not given)."""
    parts = spec.split(":")
    if not 3 <= len(parts) <= 6:
        raise fail(f"--tier: expected ABOVE:INPUT:OUTPUT[:CACHED[:WRITE[:WRITE_1H]]], not {spec!r}")
    try:
        above = int(parts[0])
    except ValueError:
        raise fail(f"--tier: ABOVE must be a whole number of input tokens, not {parts[0]!r}") from None
    if above <= 0:
        raise fail(f"--tier: ABOVE must be a positive number of input tokens, not {parts[0]!r}")
    figures = [_usd("--tier", v or None) for v in parts[1:]]
    if figures[0] is None or figures[1] is None:
        raise fail(f"--tier: INPUT and OUTPUT are required, not {spec!r}")
    return above, figures


@pricing_app.command("set")
def pricing_set(
    provider: str = typer.Argument(..., help="anthropic, openai, google, openrouter or ollama."),
    model: str = typer.Argument(..., help="The model id as the provider names it ('*': every other model)."),
    input: str = typer.Option(..., "--input", metavar="USD", help="USD per 1M input tokens."),
    output: str = typer.Option(..., "--output", metavar="USD", help="USD per 1M output tokens (reasoning included)."),
    cached_input: str | None = typer.Option(None, "--cached-input", metavar="USD",
                                            help="USD per 1M cached input tokens (default: as input)."),
    cache_write: str | None = typer.Option(None, "--cache-write", metavar="USD",
                                           help="USD per 1M tokens written to a cache, 5 minutes (default: as input)."),
    cache_write_1h: str | None = typer.Option(None, "--cache-write-1h", metavar="USD",
                                              help="USD per 1M tokens written to a 1-hour cache (default: as "
                                                   "--cache-write)."),
    tiers: list[str] = typer.Option([], "--tier", metavar="SPEC",
                                    help="ABOVE:INPUT:OUTPUT[:CACHED[:WRITE[:WRITE_1H]]]: the prices (USD per 1M) "
                                         "of every token of a call with more than ABOVE input tokens; repeatable. "
                                         "Example: --tier 200000:2.5:15:0.25"),
) -> None:
    """Add a price effective now (with its tiers: a price without --tier has none).  Calls made before keep
    the price they had."""
    known = known_providers()
    if provider not in known:
        raise fail(f"unknown provider {provider!r} (known: {', '.join(known)})")
    if not model.strip():
        raise fail("MODEL must not be empty")
    price = Price.per_million(provider, model.strip(), _usd("--input", input), _usd("--output", output),  # type: ignore
                              _usd("--cached-input", cached_input), _usd("--cache-write", cache_write),
                              _usd("--cache-write-1h", cache_write_1h))
    for spec in tiers:
        above, figures = _tier_option(spec)
        try:
            price = price.tier(above, *figures)  # type: ignore[arg-type]
        except ValueError as err:
            raise fail(f"--tier: {err}") from None

    async def go(ledger: Ledger) -> None:
        async with ledger.sessions() as s, s.begin():
            await add_prices(s, [price])
            await record(s, cli_actor(), "price.set", f"{provider}/{price.model}", _per_million(price))

    asyncio.run(with_ledger(go))
    v = price.per_million_view()
    console.print(f"{escape(provider)}/{escape(model)}: input ${_m(v['input'])}, output ${_m(v['output'])}, cached "
                  f"input {'$' + _m(v['cached_input']) if v['cached_input'] is not None else 'as input'} per 1M "
                  f"tokens{', tiers ' + escape(_tiers_text(price)) if price.tiers else ''}, effective now")


_SOURCE_HELP = ("genai-prices (the maintained genai-prices package: dated prices, cache reads and writes, tiers), "
                "openrouter (OpenRouter's model list, as --provider openrouter) or file:PATH (a JSON or TOML file "
                "you keep; its format is below).")


@pricing_app.command("sync")
def pricing_sync(
    source: str | None = typer.Option(None, "--source", metavar="SOURCE", help=_SOURCE_HELP),
    provider: str | None = typer.Option(None, "--provider", metavar="NAME",
                                        help="Only this provider's prices; without --source, read the price list "
                                             "this provider publishes (openrouter, the default)."),
    everything: bool = typer.Option(False, "--all-models",
                                    help="genai-prices: every model it lists for llmrelay's providers, not only the "
                                         "catalog's and those with a price row."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the changes as JSON instead of a table."),
) -> None:
    """Add a dated price row (effective now) for every model whose price differs from the one in effect,
    and print what changed (old -> new, USD per 1M tokens).  Rows already there never change.

    \b
    Sources:
      genai-prices   the catalog's models and every model with a price row, of anthropic, openai,
                     google and openrouter (--all-models: every model genai-prices lists for them);
                     the models it does not know are listed
      openrouter     OpenRouter's /api/v1/models
      file:PATH      a JSON or TOML file, prices in USD per 1M tokens (strings or numbers), e.g.
                       [\\[prices]]
                       provider = "google"
                       model = "gemini-2.5-pro"
                       input = "1.25"
                       output = "10"
                       cached_input = "0.125"      # optional, as are cache_write (5 min),
                       effective_from = "2026-12-01"  # cache_write_1h and effective_from
                       [\\[prices.tiers]]            # optional: a call of more input tokens
                       above_input_tokens = 200000
                       input = "2.5"
                       output = "15"
                     JSON: {"prices": [{"provider": …, "model": …, "input": …, "tiers": [ … ]}]}
    """
    from ..ledger.price_sources import FILE_SOURCE, GENAI_SOURCE, PriceFileError

    known = known_providers()
    if provider is not None and provider not in known:
        raise fail(f"unknown provider {provider!r} (known: {', '.join(known)})")
    if source is None or source == "openrouter" or source in known:
        published = provider if source is None and provider is not None else (source or "openrouter")
        if source is not None and provider is not None and provider != published:
            raise fail(f"--source {source} gives {source}'s prices only, not {provider}'s")
        fetch, label = _published(published), published
    elif source == GENAI_SOURCE:
        fetch, label = _genai(provider, everything), GENAI_SOURCE
    elif source.startswith("file:") and len(source) > 5:
        fetch, label = _file(source[5:], provider, known), FILE_SOURCE
    else:
        raise fail(f"--source must be genai-prices, openrouter or file:PATH, not {source!r}")

    async def go(ledger: Ledger):
        async with ledger.sessions() as s, s.begin():
            book = await load_price_book(s)
            fetched = await fetch(book)
            report = plan_sync(book, fetched.prices, fetched.unknown)
            if not dry_run:
                await write_sync(s, report)
                await record(s, cli_actor(), "price.sync", source or label,
                             {"added": len(report.changes), "unchanged": report.unchanged,
                              "unknown": len(report.unknown),
                              "models": {f"{p.provider}/{p.model}": _per_million(p)
                                         for p in report.added[:_AUDITED_MODELS]}})
            return fetched, report

    try:
        fetched, report = asyncio.run(with_ledger(go))
    except PriceFileError as err:
        raise fail(str(err)) from None
    _print_sync(label, fetched, report, dry_run, as_json)


def _published(provider: str):
    """A provider's own price list (OpenRouter's model list), through its adapter."""
    from ..ledger.price_sources import Fetched
    from ..types import ProviderError

    settings = load_settings()
    ps = settings.provider(provider)
    adapter = provider_class(provider)(ps.base_url, ps.api_key)  # a public price list needs no key

    async def fetch(book):
        try:
            entries = await adapter.model_prices()
        except ProviderError as err:
            raise fail(f"cannot read {provider}'s model list at {ps.base_url}: {err.kind}: {err.message}", 1) from None
        finally:
            await adapter.aclose()
        if entries is None:
            raise fail(f"{provider} publishes no price list: set its prices with `llmrelay pricing set`, or "
                       f"sync --source genai-prices")
        prices, unknown = per_token_prices(provider, ((e.model, e.prompt, e.completion, e.cache_read, e.cache_write)
                                                      for e in entries), provider)
        return Fetched(prices, unknown)

    return fetch


def _genai(provider: str | None, everything: bool):
    from ..db.types import utcnow
    from ..ledger.price_sources import from_genai, wanted_models

    async def fetch(book):
        return from_genai(wanted_models(book), utcnow(), everything=everything,
                          providers=None if provider is None else [provider])

    return fetch


def _file(path: str, provider: str | None, known: list[str]):
    from pathlib import Path

    from ..ledger.price_sources import read_price_file

    async def fetch(book):
        fetched = read_price_file(Path(path), known)
        if provider is not None:
            fetched.prices = [p for p in fetched.prices if p.provider == provider]
        return fetched

    return fetch


def _print_sync(label: str, fetched, report: SyncReport, dry_run: bool, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"source": label, "dryRun": dry_run, "unchanged": report.unchanged,
                          "changes": [{"provider": c.new.provider, "model": c.new.model,
                                       "old": None if c.old is None else _per_million(c.old),
                                       "new": _per_million(c.new)} for c in report.changes],
                          "unknown": report.unknown, "notes": fetched.notes}, default=str))
        return
    console.print(f"{escape(label)}: {len(report.changes)} new price(s){' (dry run: none written)' if dry_run else ''}"
                  f", {report.unchanged} unchanged, {len(report.unknown)} without a usable price")
    if report.changes:
        table = Table(title=f"Price changes, USD per 1M tokens{' (dry run: nothing written)' if dry_run else ''}",
                      title_justify="left")
        for col in ("provider", "model", "price", "old -> new"):
            table.add_column(col, overflow="fold")
        for c in report.changes[:_SHOWN_CHANGES]:
            old, new = _lines(c.old), _lines(c.new)
            for name in [*new, *(k for k in old if k not in new)]:
                if old.get(name) != new.get(name):
                    table.add_row(escape(c.new.provider), escape(c.new.model), escape(name),
                                  f"{old.get(name, '—')} -> {new.get(name, '—')}")
        show(table, heading=2)
        if len(report.changes) > _SHOWN_CHANGES:
            console.print(f"… and {len(report.changes) - _SHOWN_CHANGES} more (--json lists them all)")
    if report.unknown:
        console.print(f"without a price from {escape(label)}:")
        for line in report.unknown:
            console.print(f"  {escape(line)}")
    if fetched.notes:
        console.print("priced by their tokens only:")
        for line in fetched.notes:
            console.print(f"  {escape(line)}")


@pricing_app.command("unpriced")
def pricing_unpriced(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Models used without a known price: their calls have no cost (NULL), never a false 0."""
    from ..ledger.stats import unpriced_usage

    async def go(ledger: Ledger):
        async with ledger.sessions() as s:
            return await unpriced_usage(s)

    rows = asyncio.run(with_ledger(go))
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
