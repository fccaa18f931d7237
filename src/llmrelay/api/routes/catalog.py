"""`/api/ai/models` and `/api/ai/providers`: what can be used, what it costs, and how it is doing.

`GET /api/ai/models` lists every model llmrelay knows: the catalog's (context window, output
limit, capability flags: tools, vision, JSON output) and the price table's, with the price in
effect now per 1M tokens as exact decimal strings.  A provider-wide price row (model `*`) is not
listed as a model of its own, but it prices that provider's models that have no row of their own:
every Ollama model is free, so `ollama/mistral` shows price 0 and tier `free`, and so would any
other Ollama model you run.  A model the catalog does not know has null limits and capabilities;
a model no price covers has a null price and cost tier (its calls are recorded as unpriced).

`GET /api/ai/providers` shows each provider's state: enabled (or why not), base URL, each
model whose circuit is not closed, and from the ledger over the last `window` minutes (every
user's calls: this is the provider's health, not anyone's usage): calls, success rate and
median latency.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import Response

from ... import catalog
from ...ledger.pricing import WILDCARD, Price
from ...ledger.stats import ProviderHealth, model_health, provider_health
from ...providers.registry import known_provider
from ...types import money
from ..deps import CurrentUser, RelayDep
from ..errors import ApiRoute

router = APIRouter(prefix="/api/ai", tags=["catalog"], route_class=ApiRoute)
MAX_WINDOW_MINUTES = 24 * 60
ProviderName = Annotated[str, AfterValidator(known_provider)]
"""A provider some adapter declared (the built-in five, plugins, registered ones), checked per request."""


class PricePer1M(BaseModel):
    input: str
    output: str
    cachedInput: str | None
    cacheWrite: str | None


class RecentCalls(BaseModel):
    windowMinutes: int
    calls: int
    successes: int
    successRate: float | None
    p50LatencyMs: int | None


class Capabilities(BaseModel):
    """What the model can take, from the catalog (a flag is null when not known)."""

    tools: bool | None = Field(description="Takes tool definitions and calls tools")
    vision: bool | None = Field(description="Takes images")
    json_: bool | None = Field(alias="json", description="Answers in JSON that fits a schema")


class ModelOut(BaseModel):
    provider: str
    model: str
    pricePer1M: PricePer1M | None
    costTier: Literal["free", "low", "medium", "high"] | None
    contextWindow: int | None
    maxOutputTokens: int | None
    capabilities: Capabilities | None = Field(description="null when the catalog does not know the model")
    enabled: bool
    disabledReason: str | None
    recent: RecentCalls


class Circuit(BaseModel):
    model: str
    state: Literal["open", "half_open"]


class ProviderOut(BaseModel):
    provider: str
    enabled: bool
    disabledReason: str | None
    baseUrl: str
    circuits: list[Circuit]
    recent: RecentCalls


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _price(price: Price | None) -> dict[str, str | None] | None:
    if price is None:
        return None
    v = price.per_million_view()
    return {"input": money(v["input"]), "output": money(v["output"]), "cachedInput": money(v["cached_input"]),
            "cacheWrite": money(v["cache_write"])}


def _tier(price: Price | None) -> str | None:
    if price is None:
        return None
    v = price.per_million_view()
    return catalog.cost_tier(v["input"], v["output"])


@router.get("/models", summary="Every known model: price per 1M tokens, cost tier, limits, capabilities, enabled, "
                                "recent latency",
            response_model=list[ModelOut])
async def list_models(user: CurrentUser, relay: RelayDep,
                      provider: Annotated[ProviderName | None, Query(description="Only this provider's models")] = None,
                      window: int = Query(MAX_WINDOW_MINUTES, ge=1, le=MAX_WINDOW_MINUTES,
                                          description="Minutes of the ledger `recent` reads, up to a day")
                      ) -> Response:
    book = relay.ledger.recorder.prices  # type: ignore[union-attr]
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        health = await model_health(s, datetime.now(UTC) - timedelta(minutes=window))
    keys = set(catalog.KNOWN_MODELS) | {(p.provider, p.model) for p in book.current() if p.model != WILDCARD}
    status = {p.name: p for p in relay.provider_status()}
    out = []
    for prov, model in sorted(keys):
        if provider is not None and prov != provider:
            continue
        price = book.lookup(prov, model)
        facts = catalog.facts(prov, model)
        ps = status.get(prov)
        out.append({
            "provider": prov, "model": model, "pricePer1M": _price(price),
            "costTier": _tier(price),
            "contextWindow": facts.context_window if facts else None,
            "maxOutputTokens": facts.max_output_tokens if facts else None,
            "capabilities": facts.capabilities() if facts else None,
            "enabled": bool(ps and ps.enabled),
            "disabledReason": None if ps is None or ps.enabled else ps.disabled_reason,
            "recent": _recent(window, health.get((prov, model))),
        })
    return _json(out)


def _recent(window: int, h: ProviderHealth | None) -> dict[str, Any]:
    """Calls in the last `window` minutes of the ledger (every user's: a provider's speed is
    everyone's), their success rate and median latency."""
    return {"windowMinutes": window, "calls": h.calls if h else 0, "successes": h.successes if h else 0,
            "successRate": h.success_rate if h else None, "p50LatencyMs": h.p50_latency_ms if h else None}


@router.get("/providers", summary="Each provider: enabled, circuits, and recent calls from the ledger",
            response_model=list[ProviderOut])
async def list_providers(user: CurrentUser, relay: RelayDep,
                         window: int = Query(60, ge=1, le=MAX_WINDOW_MINUTES,
                                             description="Minutes of the ledger to read, up to a day")) -> Response:
    since = datetime.now(UTC) - timedelta(minutes=window)
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        health = await provider_health(s, since)
    return _json([{"provider": ps.name, "enabled": ps.enabled, "disabledReason": ps.disabled_reason,
                   "baseUrl": ps.base_url, "circuits": [{"model": m, "state": st} for m, st in ps.circuits.items()],
                   "recent": _recent(window, health.get(ps.name))} for ps in relay.provider_status()])
