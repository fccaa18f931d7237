import pytest

from llmrelay.agents import BUILTIN_AGENTS, Agent, load_agents
from llmrelay.routing.chain import ChainConfig, resolve_chain
from llmrelay.types import ConfigError, InvalidRequest, Link


def test_builtin_agents_have_the_seed_plan_chains():
    agents = load_agents()
    assert [str(x) for x in agents["web-dev-agent"].links] == [
        "anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash", "ollama/mistral"]
    assert [x.provider for x in agents["general-agent"].links] == [
        "anthropic", "openai", "google", "openrouter", "ollama"]
    assert agents["general-agent"].links[3].model == "meta-llama/llama-3.1-70b-instruct"
    assert len(BUILTIN_AGENTS) >= 4


def test_legacy_agent_with_only_provider_and_model_has_a_one_link_chain():
    a = Agent(id="old-agent", name="Old", provider="ollama", model="llama3.2")
    assert a.links == [Link("ollama", "llama3.2")]


def test_default_provider_goes_first_then_priority_order():
    a = Agent.model_validate({"id": "x", "name": "X", "default_provider": "ollama", "supported_providers": [
        {"provider": "openai", "model": "gpt-4o", "priority": 2},
        {"provider": "ollama", "model": "mistral", "priority": 3},
        {"provider": "anthropic", "model": "claude", "priority": 1, "max_retries": 0}]})
    assert [str(x) for x in a.links] == ["ollama/mistral", "anthropic/claude", "openai/gpt-4o"]
    assert a.links[1].max_retries == 0


GOOD = '''
[[agents]]
id = "support-agent"
name = "Support Agent"
system_prompt = "You answer customer questions."
cost_tier = "low"
default_provider = "openai"
supported_providers = [
  { provider = "openai", model = "gpt-4o-mini", priority = 1, max_retries = 2 },
  { provider = "ollama", model = "mistral", priority = 2 },
]

[[agents]]
id = "web-dev-agent"
name = "Replaced"
provider = "ollama"
model = "codellama"
'''


def test_agents_file_adds_and_replaces(tmp_path):
    f = tmp_path / "agents.toml"
    f.write_text(GOOD)
    agents = load_agents(f)
    assert agents["support-agent"].links == [Link("openai", "gpt-4o-mini", 2), Link("ollama", "mistral")]
    assert agents["web-dev-agent"].name == "Replaced"
    assert agents["web-dev-agent"].links == [Link("ollama", "codellama")]
    assert "general-agent" in agents


@pytest.mark.parametrize(("body", "message"), [
    ('[[agents]]\nid = "a"\nname = "A"\nsupported_providers = [{provider = "opneai", model = "m", priority = 1}]\n',
     "agents.toml: agent 'a': supported_providers[0].provider: unknown provider 'opneai'"),
    ('[[agents]]\nid = "a"\nname = "A"\nsupported_providers = [{provider = "openai", model = "m", priority = 1},'
     ' {provider = "ollama", model = "m", priority = 1}]\n',
     "agents.toml: agent 'a': supported_providers[1]: priority 1 is already used by supported_providers[0]"),
    ('[[agents]]\nid = "a"\nsupported_providers = [{provider = "openai", model = "m", priority = 1}]\n',
     "agents.toml: agent 'a': name: missing required field"),
    ('[[agents]]\nid = "a"\nname = "A"\nsupported_providers = [{provider = "openai", priority = 1}]\n',
     "agents.toml: agent 'a': supported_providers[0].model: missing required field"),
    ('[[agents]]\nid = "a"\nname = "A"\n', "agents.toml: agent 'a': needs supported_providers"),
    ('[[agents]]\nid = "a"\nname = "A"\nprovider = "ollama"\nmodel = "m"\ncolour = "red"\n',
     "agents.toml: agent 'a': colour: unknown field"),
    ('[[agents]]\nid = "a"\nname = "A"\ncost_tier = "cheap"\nprovider = "ollama"\nmodel = "m"\n',
     "agents.toml: agent 'a': cost_tier: Input should be 'free', 'low', 'medium' or 'high'"),
    ('[[agents]\nid = 1', "agents.toml: not valid TOML"),
    ('[[agent]]\nid = "a"\n', "agents.toml: unknown top-level key 'agent'"),
])
def test_a_bad_agents_file_names_the_file_the_agent_and_the_field(tmp_path, body, message):
    f = tmp_path / "agents.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as exc:
        load_agents(f)
    assert str(exc.value).startswith(message)


def test_missing_agents_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"LLMRELAY_AGENTS_FILE: .*no such file"):
        load_agents(tmp_path / "nope.toml")


def test_chain_preference_goes_first_without_duplicating_the_agent_chain():
    agent = load_agents()["web-dev-agent"]
    links = resolve_chain(agent, preferred_provider="ollama", preferred_model="mistral")
    assert [str(x) for x in links] == ["ollama/mistral", "anthropic/claude-3-5-sonnet-20241022",
                                       "google/gemini-2.0-flash"]
    links = resolve_chain(agent, preferred_provider="google")
    assert str(links[0]) == "google/gemini-2.0-flash" and len(links) == 3
    links = resolve_chain(agent, preferred_provider="openai", preferred_model="gpt-4o")
    assert [str(x) for x in links][:2] == ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"]
    with pytest.raises(InvalidRequest, match="no openai model"):
        resolve_chain(agent, preferred_provider="openai")


def test_saved_config_replaces_the_agent_chain_and_preference_still_wins():
    agent = load_agents()["general-agent"]
    cfg = ChainConfig(Link("openai", "gpt-4o-mini"), (Link("ollama", "mistral"),))
    assert [str(x) for x in resolve_chain(agent, config=cfg)] == ["openai/gpt-4o-mini", "ollama/mistral"]
    links = resolve_chain(agent, config=cfg, preferred_provider="ollama", preferred_model="mistral")
    assert [str(x) for x in links] == ["ollama/mistral", "openai/gpt-4o-mini"]
