"""Agents of kind `embedding` in an agents file: embedding models the catalog knows, of one dimension (or
all able to give the agent's `dimensions`); every mistake fails at load naming the file, the agent and the
links."""

import pytest

from llmrelay.agents import load_agents
from llmrelay.types import ConfigError, Link

HEAD = '[[agents]]\nid = "vectors"\nname = "Vectors"\nkind = "embedding"\n'


def load(tmp_path, body: str):
    path = tmp_path / "agents.toml"
    path.write_text(body)
    return load_agents(path)


def links(*pairs: tuple[str, str]) -> str:
    return "supported_providers = [\n" + "".join(
        f'  {{ provider = "{p}", model = "{m}", priority = {i + 1} }},\n' for i, (p, m) in enumerate(pairs)) + "]\n"


def test_an_embedding_agent_of_one_dimension_loads_with_its_chain(tmp_path):
    agents = load(tmp_path, HEAD + links(("openai", "text-embedding-3-small"),
                                         ("openrouter", "openai/text-embedding-3-small")))
    assert agents["vectors"].kind == "embedding" and agents["vectors"].links == [
        Link("openai", "text-embedding-3-small"), Link("openrouter", "openai/text-embedding-3-small")]
    assert agents["general-agent"].kind == "chat"


def test_links_that_differ_in_dimension_are_a_config_error_naming_them(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, HEAD + links(("openai", "text-embedding-3-small"), ("ollama", "nomic-embed-text")))
    assert str(exc.value) == (
        "agents.toml: agent 'vectors': the links' vectors differ in dimension (openai/text-embedding-3-small gives "
        "1536, ollama/nomic-embed-text gives 768): a chain falls back only between models of one dimension (or set "
        "dimensions to a length every link can give)")


def test_dimensions_every_link_can_give_join_models_of_different_lengths(tmp_path):
    agents = load(tmp_path, HEAD + "dimensions = 768\n" + links(("openai", "text-embedding-3-large"),
                                                                ("google", "gemini-embedding-001"),
                                                                ("ollama", "nomic-embed-text")))
    assert agents["vectors"].dimensions == 768


def test_dimensions_a_link_cannot_give_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"supported_providers\[1\]: ollama/nomic-embed-text cannot give the "
                                          r"agent's 512-dimensional vectors \(it gives only 768\)"):
        load(tmp_path, HEAD + "dimensions = 512\n" + links(("openai", "text-embedding-3-small"),
                                                           ("ollama", "nomic-embed-text")))


@pytest.mark.parametrize(("pair", "why"), [
    (("openai", "gpt-4o"), "openai/gpt-4o is not an embedding model llmrelay knows"),
    (("anthropic", "claude-3-5-haiku-20241022"), "anthropic/claude-3-5-haiku-20241022 is not an embedding model"),
    (("ollama", "bge-m3"), "ollama/bge-m3 is not an embedding model llmrelay knows"),
])
def test_a_link_that_is_not_an_embedding_model_is_a_config_error(tmp_path, pair, why):
    with pytest.raises(ConfigError, match=rf"agents.toml: agent 'vectors': supported_providers\[1\]: {why}"):
        load(tmp_path, HEAD + links(("google", "text-embedding-004"), pair))


def test_an_embedding_agent_has_no_system_prompt_or_tools(tmp_path):
    with pytest.raises(ConfigError, match="an embedding agent has no system_prompt, tools or output_format"):
        load(tmp_path, HEAD + 'system_prompt = "Be nice."\n' + links(("google", "text-embedding-004")))


def test_a_chat_agent_cannot_have_an_embedding_model_or_dimensions(tmp_path):
    chat = '[[agents]]\nid = "chatty"\nname = "Chatty"\n'
    with pytest.raises(ConfigError, match=r"supported_providers\[0\]: openai/text-embedding-3-small is an embedding "
                                          r"model: a chat agent cannot answer with it"):
        load(tmp_path, chat + links(("openai", "text-embedding-3-small"), ("openai", "gpt-4o")))
    with pytest.raises(ConfigError, match='dimensions: only an agent of kind = "embedding" has them'):
        load(tmp_path, chat + "dimensions = 256\n" + links(("openai", "gpt-4o")))


def test_the_legacy_single_link_works_for_an_embedding_agent(tmp_path):
    agents = load(tmp_path, HEAD + 'provider = "ollama"\nmodel = "all-minilm"\n')
    assert agents["vectors"].links == [Link("ollama", "all-minilm")]
    with pytest.raises(ConfigError, match="agent 'vectors': model: ollama/mistral is not an embedding model"):
        load(tmp_path, HEAD + 'provider = "ollama"\nmodel = "mistral"\n')
