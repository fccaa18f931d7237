"""/api/ai/models (catalog facts and the prices in effect) and /api/ai/providers (enablement,
circuits, recent calls from the ledger), on SQLite and on PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import TypeAdapter
from sqlalchemy import insert, select

from llmrelay import catalog
from llmrelay.api.routes.catalog import ModelOut, ProviderOut
from llmrelay.db.models import AIModelUsage, AIProviderCost
from llmrelay.ledger.pricing import Price, add_prices
from llmrelay.redaction import without_credentials as _without_credentials
from llmrelay.testing import faults

MILLION = Decimal(1000)  # the table holds USD per 1k tokens


@pytest.fixture
def settings_overrides(db_url):
    """Google's key is not set: the provider is disabled."""
    return {"database_url": db_url, "google_api_key": ""}


async def get(client, keys, path, who="alice", **params):
    r = await client.get(path, params=params, headers=keys.auth(who))
    assert r.status_code == 200, r.text
    return r.json()


async def test_models_carry_the_seeded_prices_exactly(app, client, keys):
    listed = await get(client, keys, "/api/ai/models")
    TypeAdapter(list[ModelOut]).validate_python(listed)  # the documented shape
    models = {(m["provider"], m["model"]): m for m in listed}
    async with app.state.relay.ledger.sessions() as s:
        seeded = (await s.execute(select(AIProviderCost).where(AIProviderCost.source == "seed"))).scalars().all()
    assert len(seeded) > 20
    newest = {}  # the rows in effect now: each model's latest base row (0013's replace some of 0002's; tiers aside)
    for row in sorted(seeded, key=lambda r: r.effective_from):
        if row.above_input_tokens == 0:
            newest[(row.provider, row.model)] = row
    for row in newest.values():
        if row.model == "*":
            assert (row.provider, "*") not in models
            continue
        price = models[(row.provider, row.model)]["pricePer1M"]
        for key, column in (("input", row.input_cost_per_1k_tokens), ("output", row.output_cost_per_1k_tokens),
                            ("cachedInput", row.cached_input_cost_per_1k_tokens),
                            ("cacheWrite", row.cache_write_cost_per_1k_tokens)):
            assert (None if price[key] is None else Decimal(price[key])) == (
                None if column is None else column * MILLION), (row.provider, row.model, key)
    assert models[("openai", "gpt-4o")] == {
        "provider": "openai", "model": "gpt-4o",
        "pricePer1M": {"input": "2.5", "output": "10", "cachedInput": "1.25", "cacheWrite": None},
        "costTier": "medium", "contextWindow": 128_000, "maxOutputTokens": 16_384,
        "capabilities": {"tools": True, "vision": True, "json": True}, "enabled": True,
        "disabledReason": None, "recent": {"windowMinutes": 1440, "calls": 0, "successes": 0, "successRate": None,
                                           "p50LatencyMs": None}}
    assert models[("anthropic", "claude-3-5-sonnet-20241022")]["pricePer1M"] == {
        "input": "3", "output": "15", "cachedInput": "0.3", "cacheWrite": "3.75"}
    assert models[("openai", "gpt-4o-mini")]["costTier"] == "low"
    assert models[("openai", "gpt-4")]["costTier"] == "high"


async def test_models_join_the_catalog_and_the_price_table(client, keys):
    models = {(m["provider"], m["model"]): m for m in await get(client, keys, "/api/ai/models")}
    assert set(catalog.KNOWN_MODELS) <= set(models)
    mistral = models[("ollama", "mistral")]  # priced by ollama's `*` row: free
    assert (mistral["pricePer1M"]["input"], mistral["pricePer1M"]["output"], mistral["costTier"]) == ("0", "0", "free")
    assert (mistral["contextWindow"], mistral["maxOutputTokens"]) == (32_768, None)
    priced_only = models[("anthropic", "claude-3-5-sonnet-20240620")]  # in the price table, not the catalog
    assert (priced_only["contextWindow"], priced_only["maxOutputTokens"], priced_only["costTier"]) == (
        None, None, "medium")
    keys_in_order = [(m["provider"], m["model"]) for m in await get(client, keys, "/api/ai/models")]
    assert keys_in_order == sorted(keys_in_order)


async def test_models_carry_the_catalogs_capability_flags(client, keys):
    """tools / vision / json from `catalog.facts`, for every known model; null for a model the
    catalog does not know (priced only)."""
    listed = await get(client, keys, "/api/ai/models")
    TypeAdapter(list[ModelOut]).validate_python(listed)
    models = {(m["provider"], m["model"]): m["capabilities"] for m in listed}
    for key, facts in catalog.KNOWN_MODELS.items():
        assert models[key] == {"tools": facts.tools, "vision": facts.vision, "json": facts.json_schema}, key
    assert models[("ollama", "mistral")] == {"tools": True, "vision": False, "json": True}
    assert models[("ollama", "llava")] == {"tools": False, "vision": True, "json": True}
    assert models[("openai", "gpt-4")] == {"tools": True, "vision": False, "json": False}
    assert models[("anthropic", "claude-3-5-sonnet-20240620")] is None  # in the price table, not the catalog


async def test_models_show_the_price_in_effect_now(app, client, keys):
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await add_prices(s, [Price.per_million("openai", "gpt-4o", "2", "8", "1"),
                             Price.per_million("openai", "gpt-9-test", "20", "80")])
    await app.state.relay.ledger.recorder.reload_prices()
    models = {(m["provider"], m["model"]): m for m in await get(client, keys, "/api/ai/models", provider="openai")}
    assert {p for p, _ in models} == {"openai"}
    assert models[("openai", "gpt-4o")]["pricePer1M"] == {"input": "2", "output": "8", "cachedInput": "1",
                                                           "cacheWrite": None}
    new = models[("openai", "gpt-9-test")]
    assert (new["costTier"], new["contextWindow"], new["pricePer1M"]["output"]) == ("high", None, "80")


async def test_a_disabled_provider_says_why_in_models_and_providers(client, keys):
    models = await get(client, keys, "/api/ai/models", provider="google")
    assert models and all(not m["enabled"] and m["disabledReason"] == "GOOGLE_API_KEY is not set" for m in models)
    providers = {p["provider"]: p for p in await get(client, keys, "/api/ai/providers")}
    assert list(providers) == ["anthropic", "openai", "google", "openrouter", "ollama"]
    google = providers["google"]
    assert (google["enabled"], google["disabledReason"]) == (False, "GOOGLE_API_KEY is not set")
    assert (providers["openai"]["enabled"], providers["openai"]["disabledReason"]) == (True, None)
    assert providers["openai"]["baseUrl"].startswith("http://127.0.0.1:")
    r = await client.get("/api/ai/models", params={"provider": "acme"}, headers=keys.auth("alice"))
    assert r.status_code == 422 and r.json()["field"] == "provider"


async def test_providers_show_an_open_circuit_and_recent_calls(app, client, keys, fakes):
    threshold = app.state.settings.breaker_threshold
    fakes["anthropic"].script(faults.overloaded(times=threshold))
    for _ in range(threshold + 1):  # the last one skips anthropic: its circuit is open
        r = await client.post("/api/ai/agents", headers=keys.auth("bob"),
                              json={"agentId": "general-agent", "message": "Hi"})
        assert r.json()["usedProvider"] == "openai"
    assert r.json()["attemptedProviders"][0]["status"] == "skipped"
    await app.state.relay.ledger.recorder.flush()

    listed = await get(client, keys, "/api/ai/providers")  # alice asks: it is health, not usage
    TypeAdapter(list[ProviderOut]).validate_python(listed)
    providers = {p["provider"]: p for p in listed}
    anthropic, openai = providers["anthropic"], providers["openai"]
    assert anthropic["circuits"] == [{"model": "claude-3-5-sonnet-20241022", "state": "open"}]
    assert openai["circuits"] == []
    assert anthropic["recent"] | {"p50LatencyMs": None} == {
        "windowMinutes": 60, "calls": threshold, "successes": 0, "successRate": 0.0, "p50LatencyMs": None}
    async with app.state.relay.ledger.sessions() as s:
        latencies = sorted((await s.execute(select(AIModelUsage.latency_ms).where(
            AIModelUsage.provider == "openai"))).scalars().all())
    assert len(latencies) == threshold + 1
    assert (openai["recent"]["calls"], openai["recent"]["successRate"]) == (threshold + 1, 1.0)
    assert openai["recent"]["p50LatencyMs"] == latencies[(len(latencies) + 1) // 2 - 1]
    assert providers["ollama"]["recent"] == {"windowMinutes": 60, "calls": 0, "successes": 0, "successRate": None,
                                             "p50LatencyMs": None}


async def test_provider_p50_is_the_nearest_rank_median_of_the_window(app, client, keys):
    """google: five calls in the last hour (latencies 50, 10, 40, 20, 30; one failed) and one
    two hours ago (1 ms); a skipped row is not a call.  Last hour: p50 = 3rd of 5 = 30 ms,
    success 4/5.  Last three hours: 1, 10, 20, 30, 40, 50: p50 = 3rd of 6 = 20 ms."""
    now = datetime.now(UTC)
    rows = [(50, "success", 5), (10, "success", 6), (40, "failed", 7), (20, "fallback", 8), (30, "success", 9),
            (1, "success", 120), (0, "skipped", 10)]
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await s.execute(insert(AIModelUsage), [
            {"id": uuid.uuid4(), "request_id": uuid.uuid4().hex, "attempt": 1, "user_id": "someone",
             "agent_id": "summarizer-agent", "provider": "google", "model": "gemini-2.0-flash", "status": status,
             "latency_ms": ms, "created_at": now - timedelta(minutes=ago)} for ms, status, ago in rows])
    google = {p["provider"]: p for p in await get(client, keys, "/api/ai/providers")}["google"]["recent"]
    assert google == {"windowMinutes": 60, "calls": 5, "successes": 4, "successRate": 0.8, "p50LatencyMs": 30}
    google = {p["provider"]: p for p in await get(client, keys, "/api/ai/providers", window=180)}["google"]["recent"]
    assert (google["calls"], google["p50LatencyMs"]) == (6, 20)
    google = {p["provider"]: p for p in await get(client, keys, "/api/ai/providers", window=1)}["google"]["recent"]
    assert (google["calls"], google["successRate"], google["p50LatencyMs"]) == (0, None, None)


async def test_each_model_carries_its_own_recent_median_latency(app, client, keys):
    """The model selector's speed indicator: per provider *and model*, over the last day by default.
    gemini-2.0-flash: 300, 100, 200 ms (p50 = 2nd of 3 = 200); gemini-2.5-pro: 900 ms, and 2,000 ms
    two days ago (outside the default window); a model without calls has no figure."""
    now = datetime.now(UTC)
    rows = [("gemini-2.0-flash", 300, 5), ("gemini-2.0-flash", 100, 50), ("gemini-2.0-flash", 200, 600),
            ("gemini-2.5-pro", 900, 30), ("gemini-2.5-pro", 2000, 2 * 24 * 60)]
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await s.execute(insert(AIModelUsage), [
            {"id": uuid.uuid4(), "request_id": uuid.uuid4().hex, "attempt": 1, "user_id": "someone",
             "agent_id": "summarizer-agent", "provider": "google", "model": model, "status": "success",
             "latency_ms": ms, "created_at": now - timedelta(minutes=ago)} for model, ms, ago in rows])
    models = {(m["provider"], m["model"]): m["recent"] for m in await get(client, keys, "/api/ai/models")}
    assert models[("google", "gemini-2.0-flash")] == {"windowMinutes": 1440, "calls": 3, "successes": 3,
                                                      "successRate": 1.0, "p50LatencyMs": 200}
    assert (models[("google", "gemini-2.5-pro")]["calls"], models[("google", "gemini-2.5-pro")]["p50LatencyMs"]) == (
        1, 900)
    assert models[("openai", "gpt-4o")]["p50LatencyMs"] is None and models[("openai", "gpt-4o")]["calls"] == 0
    hour = {(m["provider"], m["model"]): m["recent"] for m in await get(client, keys, "/api/ai/models", window=60)}
    assert (hour[("google", "gemini-2.0-flash")]["calls"], hour[("google", "gemini-2.0-flash")]["p50LatencyMs"]) == (
        2, 100)  # 300 and 100 ms: the 1st of 2


@pytest.mark.parametrize("window", [0, 1441, "an hour"])
async def test_the_providers_window_is_bounded(client, keys, window):
    r = await client.get("/api/ai/providers", params={"window": window}, headers=keys.auth("alice"))
    assert r.status_code == 422 and r.json()["field"] == "window"


async def test_catalog_routes_need_a_key(client):
    for path in ("/api/ai/models", "/api/ai/providers"):
        assert (await client.get(path)).status_code == 401


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:secret@proxy.example:8443/ollama", "https://proxy.example:8443/ollama"),
    ("http://token@[::1]:11434", "http://[::1]:11434"),
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
])
def test_a_base_url_is_shown_without_credentials(url, shown):
    assert _without_credentials(url) == shown
