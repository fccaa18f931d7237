"""Where `llmrelay pricing sync` reads prices: the `genai-prices` package, OpenRouter's model list (read by
its adapter, `providers/openrouter.py`), or a file the operator keeps.  Each source gives `Price`s in
the table's unit (USD per 1k tokens) and the models it could not price; `pricing.plan_sync` decides
which of them changed.

**genai-prices** (pydantic's maintained price data, with dated prices, cache prices and tiers) is asked
for each model of llmrelay's catalog and each model the price table already has, of the providers it
knows (anthropic, openai, google, openrouter; Ollama runs locally and is priced by its `*` row), and
with `everything` for every model it lists for them.  What it prices per token becomes a `Price`:

    input_mtok -> input        cache_read_mtok -> cached_input     cache_write_mtok -> cache_write (5 min)
    output_mtok -> output      cache_write_1h_mtok -> cache_write_1h

Each key's tiers (`TieredPrices`, a cliff on the call's input tokens) are merged into whole tiers: one
per threshold any key has, holding every key's price above it, which bills exactly what genai-prices
does.  Its other keys (web searches, audio, image or video tokens, characters, requests) are counts
llmrelay does not keep: such a model is priced by its tokens and its note names what is left out.  A
model without a per-token input price is not priced (its calls stay unpriced, never 0).  Of its dated
prices the one in effect at the sync is taken (`StartDateConstraint`); a price by time of day
(DeepSeek's off-peak hours) is not modelled: the standard price is taken.

**A price file** is JSON or TOML (by its suffix: `.toml`, else JSON).  Prices are USD per 1M tokens,
best written as strings ("0.075"; numbers are read as exact decimals too):

    # prices.toml
    [[prices]]
    provider = "google"              # anthropic, openai, google, openrouter, ollama, or a plugin's
    model = "gemini-2.5-pro"         # the id as the provider names it; "*": every other model of it
    input = "1.25"                   # required
    output = "10"                    # required
    cached_input = "0.125"           # optional: input read from a prompt cache (default: as input)
    cache_write = "1.625"            # optional: input written to a cache, 5-minute (default: as input)
    cache_write_1h = "2.5"           # optional: written to a 1-hour cache (default: as cache_write)
    effective_from = "2026-12-01"    # optional: a date or ISO time, UTC unless it says (default: now)
    [[prices.tiers]]                 # optional, any number: the prices of a call of more input tokens
    above_input_tokens = 200000      #   than this (all its tokens, cached ones included)
    input = "2.5"
    output = "15"
    cached_input = "0.25"

    // prices.json: the same keys
    {"prices": [{"provider": "openai", "model": "gpt-4o", "input": "2.50", "output": "10",
                 "cached_input": "1.25", "tiers": []}]}
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .pricing import FIGURES, PER_1M_PLACES, WILDCARD, Price, PriceBook, usd_per_1m

GENAI_SOURCE = "genai-prices"
FILE_SOURCE = "file"
GENAI_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "google": "google", "openrouter": "openrouter"}
"""llmrelay's provider -> genai-prices' provider id."""
_KEYS = {"input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cached_input",
         "cache_write_mtok": "cache_write", "cache_write_1h_mtok": "cache_write_1h"}
_THOUSAND = Decimal(1000)
_TOOL_KEYS = frozenset({"web_searches_kcount", "storage_searches_kcount", "social_searches_kcount",
                        "code_executions_kcount"})
"""Prices of tool calls a provider runs (web search, …): llmrelay counts none; not worth a note per model."""


@dataclass(slots=True)
class Fetched:
    """What a source gave: prices, the models it could not price (with why), and notes on prices it
    gave only in part."""

    prices: list[Price] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class PriceFileError(ValueError):
    """A price file that cannot be read: says where and why."""


# -- genai-prices -----------------------------------------------------------------------------------------


def genai_version() -> str:
    from genai_prices import __version__

    return __version__


def genai_price(provider: str, model: str, at: datetime) -> tuple[Price | None, str]:
    """The price genai-prices gives `provider`/`model` at `at` (the table's unit), and a note: why there is
    none, or what it leaves out ("" when nothing)."""
    from genai_prices import data_snapshot

    gid = GENAI_PROVIDERS.get(provider)
    if gid is None:
        return None, f"genai-prices does not know the provider {provider}"
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, gid, None)
    except LookupError:
        return None, "not in genai-prices"
    return _from_model_price(provider, model, _standard(info, at), at)


def _standard(info: Any, at: datetime) -> Any:
    """The ModelPrice in effect at `at`, ignoring prices by time of day (genai-prices' own rule otherwise:
    the last conditional price whose constraint holds; the first when none does)."""
    from genai_prices.types import ModelPrice, StartDateConstraint

    if isinstance(info.prices, ModelPrice):
        return info.prices
    for conditional in reversed(info.prices):
        c = conditional.constraint
        if c is None or (isinstance(c, StartDateConstraint) and c.active(at)):
            return conditional.prices
    return info.prices[0].prices


def _from_model_price(provider: str, model: str, mp: Any, at: datetime) -> tuple[Price | None, str]:
    from genai_prices.types import TieredPrices

    given = {k: v for k, v in mp.__dict__.items() if not k.startswith("_") and v is not None}
    if "input_mtok" not in given:
        return None, "genai-prices has no per-token input price for it"
    left_out = sorted(k for k in given if k not in _KEYS and k not in _TOOL_KEYS)
    figures = {_KEYS[k]: v for k, v in given.items() if k in _KEYS}
    figures.setdefault("output", Decimal(0))  # genai-prices bills output it has no price for at 0
    thresholds = sorted({t.start for v in figures.values() if isinstance(v, TieredPrices) for t in v.tiers})

    def at_tokens(value: Decimal | TieredPrices, tokens: int) -> Decimal:
        """The per-1M price genai-prices applies to a call of `tokens` input tokens."""
        if not isinstance(value, TieredPrices):
            return value
        applied = value.base
        for tier in value.tiers:
            if tokens > tier.start:
                applied = tier.price
        return applied

    def figures_at(tokens: int) -> dict[str, Decimal]:
        return {name: at_tokens(v, tokens) for name, v in figures.items()}

    price = Price.per_million(provider, model, effective_from=at, source=GENAI_SOURCE, **figures_at(0))
    for threshold in thresholds:
        price = price.tier(threshold, **figures_at(threshold + 1))
    lost = [name for name, v in figures_at(0).items() if v != v.quantize(PER_1M_PLACES)]
    note = ""
    if left_out:
        note = "not counted by llmrelay: " + ", ".join(left_out)
    if lost:
        note = (note + "; " if note else "") + "rounded to the pico-dollar per 1k: " + ", ".join(lost)
    return price, note


def from_genai(wanted: Iterable[tuple[str, str]], at: datetime, *, everything: bool = False,
               providers: Iterable[str] | None = None) -> Fetched:
    """genai-prices' prices at `at` of the `wanted` provider/models (and with `everything` of every model
    it lists for llmrelay's providers, by its id), limited to `providers` when given."""
    from genai_prices import data_snapshot

    keep = set(providers) if providers is not None else None
    models = {(p, m) for p, m in wanted if m != WILDCARD}
    if everything:
        for provider, gid in GENAI_PROVIDERS.items():
            for gp in data_snapshot.get_snapshot().providers:
                if gp.id == gid:
                    models.update((provider, info.id) for info in gp.models)
    out = Fetched()
    elsewhere: dict[str, list[str]] = {}
    for provider, model in sorted(models):
        if keep is not None and provider not in keep:
            continue
        if provider not in GENAI_PROVIDERS:
            elsewhere.setdefault(provider, []).append(model)
            continue
        price, note = genai_price(provider, model, at)
        if price is None:
            out.unknown.append(f"{provider}/{model}: {note}")
            continue
        out.prices.append(price)
        if note:
            out.notes.append(f"{provider}/{model}: {note}")
    for provider, names in elsewhere.items():  # Ollama: local models, priced by its own rows
        out.unknown.append(f"{provider} ({len(names)} models: {', '.join(names)}): genai-prices does not know "
                           f"the provider")
    return out


def wanted_models(book: PriceBook) -> list[tuple[str, str]]:
    """The models a sync prices: llmrelay's catalog and every model with a price row of its own."""
    from ..catalog import KNOWN_MODELS

    return sorted(set(KNOWN_MODELS) | {key for key in book.models() if key[1] != WILDCARD})


# -- a price file ---------------------------------------------------------------------------------------------


def read_price_file(path: Path, known_providers: Iterable[str]) -> Fetched:
    """The prices of a JSON or TOML price file (the module docstring shows its format)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PriceFileError(f"{path}: cannot read it: {err.strerror or err}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
        else:
            data = json.loads(raw, parse_float=Decimal, parse_int=int)
    except (ValueError, UnicodeDecodeError) as err:
        raise PriceFileError(f"{path}: not {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {err}") from None
    entries = data.get("prices") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise PriceFileError(f"{path}: expected a list of prices under the key 'prices'")
    known = set(known_providers)
    out = Fetched()
    for i, entry in enumerate(entries):
        where = f"{path}: prices[{i}]"
        out.prices.append(_file_price(entry, where, known))
    return out


def _file_price(entry: Any, where: str, known: set[str]) -> Price:
    if not isinstance(entry, dict):
        raise PriceFileError(f"{where}: expected a table of provider, model, input, output, …")
    unknown_keys = set(entry) - {"provider", "model", "effective_from", "tiers", *FIGURES}
    if unknown_keys:
        raise PriceFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown_keys))}")
    provider, model = entry.get("provider"), entry.get("model")
    if not isinstance(provider, str) or provider not in known:
        raise PriceFileError(f"{where}: provider must be one of {', '.join(sorted(known))}, not {provider!r}")
    if not isinstance(model, str) or not model.strip():
        raise PriceFileError(f"{where}: model must be a non-empty string")
    at = _moment(entry.get("effective_from"), where)
    price = Price.per_million(provider, model.strip(), effective_from=at, source=FILE_SOURCE,
                              **_figures(entry, where))
    tiers = entry.get("tiers", [])
    if not isinstance(tiers, list):
        raise PriceFileError(f"{where}: tiers must be a list")
    for j, tier in enumerate(tiers):
        here = f"{where}.tiers[{j}]"
        if not isinstance(tier, dict) or set(tier) - {"above_input_tokens", *FIGURES}:
            raise PriceFileError(f"{here}: expected above_input_tokens and prices ({', '.join(FIGURES)})")
        above = tier.get("above_input_tokens")
        if type(above) is not int or above <= 0:
            raise PriceFileError(f"{here}: above_input_tokens must be a positive whole number of tokens")
        try:
            price = price.tier(above, **_figures(tier, here))
        except ValueError as err:
            raise PriceFileError(f"{here}: {err}") from None
    return price


def _figures(entry: dict, where: str) -> dict[str, Decimal | None]:
    out: dict[str, Decimal | None] = {}
    for name in FIGURES:
        value = entry.get(name)
        if value is None:
            if name in ("input", "output"):
                raise PriceFileError(f"{where}: {name} is required (USD per 1M tokens)")
            out[name] = None
            continue
        try:
            out[name] = usd_per_1m(value)
        except ValueError as err:
            raise PriceFileError(f"{where}: {name}: {err}") from None
    return out


def _moment(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # TOML's own date-times
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PriceFileError(f"{where}: effective_from: not an ISO date or time: {value!r}") from None
    else:
        raise PriceFileError(f"{where}: effective_from must be an ISO date or time, not {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
