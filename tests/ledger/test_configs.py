"""Saved model preferences (ai_model_config) and stored conversations."""

from llmrelay.routing.chain import ChainConfig
from llmrelay.types import Link


async def test_a_saved_config_builds_that_users_chain_and_only_theirs(relay, ledger, fakes):
    cfg = ChainConfig(Link("ollama", "llama3.2"), (Link("openai", "gpt-4o-mini"),), max_tokens=64, temperature=0.2)
    saved = await ledger.configs.save("alice", "general-agent", cfg)
    assert saved.to_dict()["fallbackChain"] == [{"provider": "openai", "model": "gpt-4o-mini"}]
    result = await relay.chat("general-agent", "Hi", user="alice")
    assert (result.provider, result.model) == ("ollama", "llama3.2")
    body = fakes["ollama"].requests[-1].body
    assert body["options"]["num_predict"] == 64 and body["options"]["temperature"] == 0.2
    other = await relay.chat("general-agent", "Hi", user="bob")
    assert other.provider == "anthropic"
    # a request's explicit preference still goes first
    pref = await relay.chat("general-agent", "Hi", user="alice", preferred_provider="google",
                            preferred_model="gemini-2.0-flash")
    assert pref.provider == "google" and [a.provider for a in pref.attempts] == ["google"]


async def test_save_is_an_upsert_and_delete_restores_the_agent_chain(relay, ledger):
    await ledger.configs.save("alice", "general-agent", ChainConfig(Link("ollama", "mistral")))
    await ledger.configs.save("alice", "general-agent", ChainConfig(Link("openai", "gpt-4o")))
    (only,) = await ledger.configs.list("alice")
    assert only.chain.primary == Link("openai", "gpt-4o")
    assert (await relay.chat("general-agent", "Hi", user="alice")).provider == "openai"
    assert await ledger.configs.delete("alice", "general-agent") is True
    assert await ledger.configs.delete("alice", "general-agent") is False
    assert (await relay.chat("general-agent", "Hi", user="alice")).provider == "anthropic"


async def test_another_process_sees_a_saved_config_within_the_ttl(settings, db_url):
    import asyncio

    from llmrelay.ledger import Ledger

    a, b = Ledger(settings, url=db_url), Ledger(settings, url=db_url)
    await a.start()
    await b.start()
    b.configs.ttl = 0.05
    assert await b.configs.get("carol", "web-dev-agent") is None
    await a.configs.save("carol", "web-dev-agent", ChainConfig(Link("ollama", "mistral")))
    for _ in range(100):
        await asyncio.sleep(0.06)
        if await b.configs.get("carol", "web-dev-agent") is not None:
            break
    assert await b.configs.get("carol", "web-dev-agent") == ChainConfig(Link("ollama", "mistral"))
    await a.aclose()
    await b.aclose()


async def test_conversations_continue_by_id_and_belong_to_their_user(ledger):
    from llmrelay.db.conversations import StoredTurn

    cid = await ledger.conversations.create("alice", "general-agent", "Greeting")
    await ledger.conversations.append(cid, [StoredTurn("user", "Hi"), StoredTurn("assistant", "Hello!", "openai",
                                                                                  "gpt-4o", "req1")])
    agent, turns = await ledger.conversations.history(cid, "alice")
    assert agent == "general-agent"
    assert [(t.role, t.content) for t in turns] == [("user", "Hi"), ("assistant", "Hello!")]
    assert await ledger.conversations.history(cid, "mallory") is None
    assert await ledger.conversations.history("nope", "alice") is None
