"""/api/ai/config: saving, listing and resetting a user's chain per agent, its validation, who may
touch whose config, and that the Relay serves that user's requests through it."""

import pytest

from llmrelay.api.routes.config import SavedConfigOut
from llmrelay.ledger.pricing import Price, add_prices
from llmrelay.routing.chain import ChainConfig
from llmrelay.testing import faults
from llmrelay.types import Link

GEMINI_FIRST = {"agentId": "general-agent", "primaryProvider": "google", "primaryModel": "gemini-2.5-flash",
                "fallbackChain": [{"provider": "openai", "model": "gpt-4o-mini"}], "maxTokens": 7,
                "temperature": 0.2}


@pytest.fixture
async def ids(app, keys):
    """Each test user's id (what ?userId= takes)."""
    return {name: (await app.state.keys.principal(getattr(keys, name))).user_id for name in ("admin", "alice", "bob")}


async def ask(client, keys, who, agent="general-agent"):
    r = await client.post("/api/ai/agents", headers=keys.auth(who), json={"agentId": agent, "message": "one two"})
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_saved_config_is_answered_and_listed(client, keys):
    r = await client.post("/api/ai/config", headers=keys.auth("alice"), json=GEMINI_FIRST)
    assert r.status_code == 200, r.text
    saved = r.json()
    SavedConfigOut.model_validate(saved)  # the documented shape
    assert {k: saved[k] for k in GEMINI_FIRST} == GEMINI_FIRST
    assert saved["createdAt"].endswith("+00:00") and saved["updatedAt"] >= saved["createdAt"]
    listed = (await client.get("/api/ai/config", headers=keys.auth("alice"))).json()
    assert listed == [saved]
    assert (await client.get("/api/ai/config?agentId=general-agent", headers=keys.auth("alice"))).json() == [saved]
    assert (await client.get("/api/ai/config?agentId=local-agent", headers=keys.auth("alice"))).json() == []
    assert (await client.get("/api/ai/config", headers=keys.auth("bob"))).json() == []


async def test_saving_again_replaces_the_config(client, keys):
    first = (await client.post("/api/ai/config", headers=keys.auth("alice"), json=GEMINI_FIRST)).json()
    second = await client.post("/api/ai/config", headers=keys.auth("alice"), json={
        "agentId": "general-agent", "primaryProvider": "ollama", "primaryModel": "llama3.2"})
    assert second.status_code == 200
    d = second.json()
    assert (d["primaryProvider"], d["primaryModel"], d["fallbackChain"], d["maxTokens"], d["temperature"]) == (
        "ollama", "llama3.2", [], None, None)
    assert d["createdAt"] == first["createdAt"]
    assert (await client.get("/api/ai/config", headers=keys.auth("alice"))).json() == [d]


async def test_a_saved_config_changes_who_answers_for_that_user_only(client, keys, fakes):
    r = await client.post("/api/ai/config", headers=keys.auth("alice"), json=GEMINI_FIRST)
    assert r.status_code == 200
    alice = await ask(client, keys, "alice")
    assert (alice["usedProvider"], alice["model"]) == ("google", "gemini-2.5-flash")
    assert alice["finishReason"] == "length" and alice["tokensUsed"]["completion"] == 7  # the saved maxTokens
    bob = await ask(client, keys, "bob")
    assert (bob["usedProvider"], bob["model"]) == ("anthropic", "claude-3-5-sonnet-20241022")

    fakes["google"].script(faults.overloaded())  # alice's own fallback chain is walked, not the agent's
    alice = await ask(client, keys, "alice")
    assert [(a["provider"], a["model"]) for a in alice["attemptedProviders"]] == [
        ("google", "gemini-2.5-flash"), ("openai", "gpt-4o-mini")]

    agents = {a["id"]: a for a in (await client.get("/api/ai/agents", headers=keys.auth("alice"))).json()}
    assert agents["general-agent"]["config"]["primaryProvider"] == "google"
    agents = {a["id"]: a for a in (await client.get("/api/ai/agents", headers=keys.auth("bob"))).json()}
    assert agents["general-agent"]["config"] is None


async def test_delete_resets_to_the_agents_chain_and_is_idempotent(client, keys):
    await client.post("/api/ai/config", headers=keys.auth("alice"), json=GEMINI_FIRST)
    r = await client.delete("/api/ai/config/general-agent", headers=keys.auth("alice"))
    assert r.status_code == 204 and r.content == b""
    assert (await client.get("/api/ai/config", headers=keys.auth("alice"))).json() == []
    assert (await ask(client, keys, "alice"))["usedProvider"] == "anthropic"
    assert (await client.delete("/api/ai/config/general-agent", headers=keys.auth("alice"))).status_code == 204
    r = await client.delete("/api/ai/config/no-such-agent", headers=keys.auth("alice"))
    assert r.status_code == 404 and r.json()["field"] == "agentId"


async def test_a_config_that_outlived_its_agent_can_be_read_and_deleted(app, client, keys, ids):
    await app.state.relay.ledger.configs.save(ids["alice"], "retired-agent", ChainConfig(Link("openai", "gpt-4o")))
    r = await client.get("/api/ai/config?agentId=retired-agent", headers=keys.auth("alice"))
    assert r.status_code == 200 and [c["agentId"] for c in r.json()] == ["retired-agent"]
    assert (await client.delete("/api/ai/config/retired-agent", headers=keys.auth("alice"))).status_code == 204
    r = await client.get("/api/ai/config?agentId=retired-agent", headers=keys.auth("alice"))
    assert r.status_code == 404 and r.json()["field"] == "agentId"


def body(**changes):
    return {**GEMINI_FIRST, "maxTokens": None, **changes}


def chain(*links):
    return [{"provider": p, "model": m} for p, m in links]


@pytest.mark.parametrize(("payload", "status", "field", "says"), [
    (body(agentId="nope"), 404, "agentId", "unknown agent"),
    (body(primaryProvider="acme"), 400, "primaryProvider", "unknown provider 'acme'"),
    (body(primaryModel="gpt-4o"), 400, "primaryModel", "not a known google model"),
    (body(fallbackChain=chain(("openai", "gpt-4o"), ("acme", "x"))), 400, "fallbackChain.1.provider", "acme"),
    (body(fallbackChain=chain(("openai", "claude-3-5-haiku-latest"))), 400, "fallbackChain.0.model", "openai"),
    (body(fallbackChain=chain(("openai", "gpt-4o"), ("google", "gemini-2.5-flash"))), 400, "fallbackChain.1",
     "already in the chain (as the primary)"),
    (body(fallbackChain=chain(("openai", "gpt-4o"), ("ollama", "mistral"), ("openai", "gpt-4o"))), 400,
     "fallbackChain.2", "(as fallbackChain.0)"),
    (body(fallbackChain=chain(*(("ollama", f"model-{i}") for i in range(8)))), 400, "fallbackChain",
     "at most 8 links"),
    (body(temperature=2.01), 422, "temperature", "less than or equal to 2"),
    (body(temperature=-0.1), 422, "temperature", "greater than or equal to 0"),
    (body(maxTokens=0), 422, "maxTokens", "greater than or equal to 1"),
    (body(fallbackChain=[], maxTokens=65_537), 400, "maxTokens", "google/gemini-2.5-flash (65536 tokens)"),
    (body(fallbackChain=chain(("anthropic", "claude-3-haiku-20240307"), ("openai", "gpt-4")), maxTokens=4097), 400,
     "maxTokens", "anthropic/claude-3-haiku-20240307 (4096 tokens), the smallest in the chain"),
    ({"agentId": "general-agent", "primaryProvider": "google"}, 422, "primaryModel", "Field required"),
    (body(fallbackChain=[{"provider": "openai"}]), 422, "fallbackChain.0.model", "Field required"),
])
async def test_bad_configs_are_refused_naming_the_field(client, keys, payload, status, field, says):
    r = await client.post("/api/ai/config", headers=keys.auth("alice"), json=payload)
    assert r.status_code == status, r.text
    p = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert p["field"] == field and says in p["detail"], p
    assert (await client.get("/api/ai/config", headers=keys.auth("alice"))).json() == []


@pytest.mark.parametrize("payload", [
    body(temperature=0), body(temperature=2), body(fallbackChain=[], maxTokens=65_536), body(maxTokens=16_384),
    body(maxTokens=1),
    body(fallbackChain=chain(*(("ollama", f"model-{i}") for i in range(7)))),  # 8 links with the primary
    body(primaryProvider="openai", primaryModel="gpt-5-preview", fallbackChain=[]),  # unknown, but shaped right
    body(fallbackChain=chain(("ollama", "mistral:7b-instruct"), ("openrouter", "mistralai/mixtral-8x7b:free"))),
])
async def test_configs_at_the_limits_and_plausible_models_are_accepted(client, keys, payload):
    r = await client.post("/api/ai/config", headers=keys.auth("alice"), json=payload)
    assert r.status_code == 200, r.text


async def test_a_model_known_only_to_the_price_table_is_accepted(app, client, keys):
    payload = body(fallbackChain=chain(("google", "text-bison-001")))
    r = await client.post("/api/ai/config", headers=keys.auth("alice"), json=payload)
    assert r.status_code == 400 and r.json()["field"] == "fallbackChain.0.model"
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await add_prices(s, [Price.per_million("google", "text-bison-001", "0.5", "1.5")])
    await app.state.relay.ledger.recorder.reload_prices()
    r = await client.post("/api/ai/config", headers=keys.auth("alice"), json=payload)
    assert r.status_code == 200, r.text


async def test_a_user_cannot_read_or_change_anothers_config(client, keys, ids):
    await client.post("/api/ai/config", headers=keys.auth("bob"), json=GEMINI_FIRST)
    q = {"userId": ids["bob"]}
    for r in (await client.get("/api/ai/config", params=q, headers=keys.auth("alice")),
              await client.post("/api/ai/config", params=q, headers=keys.auth("alice"), json=body(agentId="local-agent",
                                primaryProvider="ollama", primaryModel="mistral", fallbackChain=[])),
              await client.delete("/api/ai/config/general-agent", params=q, headers=keys.auth("alice"))):
        assert r.status_code == 403 and r.json()["field"] == "userId", r.text
    bobs = (await client.get("/api/ai/config", headers=keys.auth("bob"))).json()
    assert [c["agentId"] for c in bobs] == ["general-agent"]
    own = await client.get("/api/ai/config", params={"userId": ids["alice"]}, headers=keys.auth("alice"))
    assert own.status_code == 200 and own.json() == []
    assert (await client.get("/api/ai/config")).status_code == 401


async def test_an_admin_may_read_and_write_anyones_config(client, keys, ids):
    q = {"userId": ids["bob"]}
    r = await client.post("/api/ai/config", params=q, headers=keys.auth("admin"), json=GEMINI_FIRST)
    assert r.status_code == 200
    assert (await client.get("/api/ai/config", headers=keys.auth("admin"))).json() == []  # not the admin's own
    assert (await client.get("/api/ai/config", params=q, headers=keys.auth("admin"))).json() == [r.json()]
    assert (await client.get("/api/ai/config", headers=keys.auth("bob"))).json() == [r.json()]
    assert (await ask(client, keys, "bob"))["usedProvider"] == "google"
    r = await client.delete("/api/ai/config/general-agent", params=q, headers=keys.auth("admin"))
    assert r.status_code == 204
    assert (await client.get("/api/ai/config", headers=keys.auth("bob"))).json() == []
    r = await client.get("/api/ai/config", params={"userId": "no-such-user"}, headers=keys.auth("admin"))
    assert r.status_code == 404 and r.json()["field"] == "userId"
