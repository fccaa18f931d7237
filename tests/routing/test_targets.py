"""What a request's target means (`routing.targets`): agents, provider/model, bare names, fallbacks."""

from datetime import UTC, datetime

import pytest

from llmrelay.agents import load_agents
from llmrelay.ledger.pricing import Price, PriceBook
from llmrelay.providers.registry import known_providers
from llmrelay.routing.targets import Targets
from llmrelay.types import ChainConfig, InvalidRequest, Link, UnknownAgent, UnknownModel

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

def resolver(book: PriceBook | None = None, default: str | None = None, saved: dict | None = None) -> Targets:
    async def lookup(user_id, agent_id):
        return (saved or {}).get((user_id, agent_id))

    return Targets(load_agents(), known_providers, config_lookup=lookup, default_provider=default,
                   prices=lambda: book)


async def test_an_agent_model_is_the_agents_chain_with_its_system_prompt():
    target = await resolver().resolve("agent:web-dev-agent")
    assert target.agent_id == "web-dev-agent"
    assert [str(x) for x in target.links] == ["anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash",
                                              "ollama/mistral"]
    assert target.system_prompt.startswith("You are a senior web developer")


async def test_an_agent_model_uses_the_callers_saved_config():
    config = ChainConfig(Link("openai", "gpt-4o-mini"), (Link("ollama", "llama3.2"),), max_tokens=77)
    r = resolver(saved={("u1", "web-dev-agent"): config})
    target = await r.resolve("agent:web-dev-agent", user_id="u1")
    assert [str(x) for x in target.links] == ["openai/gpt-4o-mini", "ollama/llama3.2"]
    assert target.config is config
    other = await r.resolve("agent:web-dev-agent", user_id="u2")
    assert other.links[0].provider == "anthropic" and other.config is None


@pytest.mark.parametrize(("model", "link"), [
    ("openai/gpt-4o", "openai/gpt-4o"),
    ("openrouter/meta-llama/llama-3.1-70b-instruct", "openrouter/meta-llama/llama-3.1-70b-instruct"),
    ("ollama/llama3.2:3b", "ollama/llama3.2:3b"),
    ("anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
    ("gpt-4o-mini", "openai/gpt-4o-mini"),
    ("gemini-2.0-flash", "google/gemini-2.0-flash"),
    ("meta-llama/llama-3.1-70b-instruct", "openrouter/meta-llama/llama-3.1-70b-instruct"),
    ("mistral", "ollama/mistral"),
])
async def test_provider_slash_model_and_catalog_names_are_one_link(model, link):
    target = await resolver().resolve(model)
    assert [str(x) for x in target.links] == [link]
    assert target.agent_id == "direct" and target.system_prompt == "" and target.config is None


async def test_a_bare_name_only_the_price_book_knows_is_served_by_its_provider():
    book = PriceBook([Price.per_million("openai", "gpt-9-nano", "0.1", "0.4", effective_from=EPOCH)])
    target = await resolver(book).resolve("gpt-9-nano")
    assert str(target.links[0]) == "openai/gpt-9-nano"
    with pytest.raises(UnknownModel) as err:
        await resolver().resolve("gpt-9-nano")
    assert err.value.field == "model"


async def test_a_new_price_book_is_picked_up_by_the_resolution_cache():
    books = [PriceBook()]
    r = Targets(load_agents(), known_providers, prices=lambda: books[-1])
    with pytest.raises(UnknownModel):
        await r.resolve("gpt-9-nano")
    books.append(PriceBook([Price.per_million("openai", "gpt-9-nano", "0.1", "0.4", effective_from=EPOCH)]))  # a reload
    assert str((await r.resolve("gpt-9-nano")).links[0]) == "openai/gpt-9-nano"


async def test_an_unknown_bare_name_goes_to_the_default_provider_else_404():
    assert str((await resolver(default="openrouter").resolve("qwen/qwen-2.5-72b")).links[0]) == \
        "openrouter/qwen/qwen-2.5-72b"
    with pytest.raises(UnknownModel) as err:
        await resolver().resolve("qwen/qwen-2.5-72b")
    assert "LLMRELAY_DEFAULT_PROVIDER" in str(err.value)


@pytest.mark.parametrize(("model", "param"), [
    ("agent:nope", "model"), ("openai/", "model"), ("openai/llama-3-70b", "model"), ("anthropic/gpt-4o", "model")])
async def test_unknown_agents_and_implausible_models_are_refused_naming_the_field(model, param):
    with pytest.raises((UnknownAgent, UnknownModel)) as err:
        await resolver().resolve(model)
    assert err.value.field == param


async def test_models_fallbacks_are_appended_once_each():
    target = await resolver().resolve("openai/gpt-4o", fallbacks=[
        "gemini-2.0-flash", "openai/gpt-4o", "agent:local-agent", "ollama/mistral"])
    assert [str(x) for x in target.links] == ["openai/gpt-4o", "google/gemini-2.0-flash", "ollama/mistral",
                                              "ollama/llama3.2"]
    assert target.agent_id == "direct"
    with pytest.raises(UnknownModel) as err:
        await resolver().resolve("openai/gpt-4o", fallbacks=["gpt-4o-mini", "no-such-model"])
    assert err.value.field == "models[1]"


async def test_a_preferred_provider_and_model_go_first_in_an_agents_chain():
    target = await resolver().resolve("agent:general-agent", prefer_provider="ollama", prefer_model="mistral")
    assert str(target.links[0]) == "ollama/mistral" and target.agent_id == "general-agent"
    assert [str(x) for x in target.links].count("ollama/mistral") == 1
    with pytest.raises(InvalidRequest) as err:
        await resolver().resolve("agent:general-agent", prefer_provider="nope")
    assert err.value.field == "preferredProvider"
    with pytest.raises(InvalidRequest) as err:
        await resolver().resolve("openai/gpt-4o", prefer_model="gpt-4o-mini")
    assert err.value.field == "preferredModel"


async def test_the_target_field_names_the_callers_parameter():
    with pytest.raises(UnknownAgent) as err:
        await resolver().resolve("agent:nobody", field="agentId")
    assert err.value.field == "agentId" and "general-agent" in str(err.value)
