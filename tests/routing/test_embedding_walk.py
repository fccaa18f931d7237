"""Embeddings on the fallback walk, end to end: Relay.embed -> the executor's walk -> real adapters -> real
HTTP -> the fakes.  The same walk as a chat's (skips with reasons, retries, breaker, deadline), between
models of one vector dimension."""

from __future__ import annotations

import time

import pytest

from llmrelay.agents import Agent, ProviderOption, load_agents
from llmrelay.routing.embeddings import EmbeddingFit, chain_dimension
from llmrelay.testing import embeddings as fake_embeddings
from llmrelay.testing import faults
from llmrelay.testing.embeddings import EmbeddingModel, vector
from llmrelay.types import AllLinksFailed, EmbeddingRequest, ErrorKind, InvalidRequest, Link, Message

TEXTS = ["what the walk embeds", "and a second text"]


def embedding_agent(*links: tuple[str, str], dimensions: int | None = None, id: str = "vectors") -> dict[str, Agent]:
    agent = Agent(id=id, name="Vectors", kind="embedding", dimensions=dimensions, default_provider=links[0][0],
                  supported_providers=tuple(ProviderOption(provider=p, model=m, priority=i + 1)
                                            for i, (p, m) in enumerate(links)))
    return {**load_agents(), id: agent}


def statuses(outcome) -> list[tuple]:
    return [(a.provider, a.model, a.status, a.error_kind.value if a.error_kind else None) for a in outcome.attempts]


async def test_falls_back_between_models_of_one_dimension_after_a_503(fakes, make_relay):
    fakes["openai"].script(faults.overloaded())
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-3-small"),
                                              ("openrouter", "openai/text-embedding-3-small")))
    out = await relay.embed(None, "agent:vectors", TEXTS)
    assert out.error is None and out.fallback_used and out.link == Link("openrouter", "openai/text-embedding-3-small")
    assert statuses(out) == [("openai", "text-embedding-3-small", "failed", "overloaded"),
                             ("openrouter", "openai/text-embedding-3-small", "success", None)]
    assert out.vectors == [vector("openai/text-embedding-3-small", t, 1536) for t in TEXTS]
    assert out.usage.input_tokens == 8 and out.tokens_spent == 8  # a token a word; the 503 cost none


async def test_a_retryable_failure_is_retried_on_the_same_link_first(fakes, make_relay):
    fakes["ollama"].script(faults.http_error(503, retry_after="0.05"))
    relay = make_relay(max_retries=1)
    out = await relay.embed(None, "ollama/nomic-embed-text", TEXTS)
    assert statuses(out) == [("ollama", "nomic-embed-text", "failed", "overloaded"),
                             ("ollama", "nomic-embed-text", "success", None)]
    assert not out.fallback_used


async def test_links_of_another_dimension_are_skipped_with_the_reason(fakes, make_relay):
    """A saved config (or a preferred model) can put any model in an embedding agent's chain: the walk
    still falls back only to vectors of the chain's length."""
    fakes["openai"].script(faults.http_error(500))
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-3-small"),
                                              ("openrouter", "openai/text-embedding-3-small")))
    agent = relay.agents["vectors"]  # as a saved config would make it (unchecked by the agents file's rules)
    relay.agents["vectors"] = agent.model_copy(update={"supported_providers": (
        *agent.supported_providers, ProviderOption(provider="ollama", model="nomic-embed-text", priority=3))})
    fakes["openrouter"].script(faults.http_error(500))
    out = await relay.embed(None, "agent:vectors", TEXTS)
    assert statuses(out)[2] == ("ollama", "nomic-embed-text", "skipped", None)
    assert out.attempts[2].error_message == ("ollama/nomic-embed-text gives 768-dimensional vectors, not the chain's "
                                             "1536: a chain falls back only between models of one dimension")
    assert isinstance(out.error, AllLinksFailed) and fakes["ollama"].requests == []


async def test_anthropic_links_are_skipped_because_anthropic_has_no_embeddings(fakes, make_relay):
    out = await make_relay().embed(None, "anthropic/claude-3-5-haiku-20241022", TEXTS)
    assert statuses(out) == [("anthropic", "claude-3-5-haiku-20241022", "skipped", None)]
    assert out.attempts[0].error_message == "anthropic has no embedding models"
    assert isinstance(out.error, AllLinksFailed) and out.error.unsupported == "model"
    assert fakes["anthropic"].requests == []


async def test_a_chat_model_is_skipped_as_not_an_embedding_model(fakes, make_relay):
    out = await make_relay().embed(None, "openai/gpt-4o", TEXTS)
    assert out.attempts[0].error_message == "openai/gpt-4o is not an embedding model"
    assert out.error.unsupported == "model" and fakes["openai"].requests == []


async def test_dimensions_skip_a_model_that_cannot_shorten_and_are_sent_to_one_that_can(fakes, make_relay):
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-ada-002"),
                                              ("openrouter", "openai/text-embedding-3-small")))
    out = await relay.embed(None, "agent:vectors", TEXTS, dimensions=256)
    assert out.attempts[0].status == "skipped" and out.attempts[0].error_message == (
        "openai/text-embedding-ada-002 cannot give 256-dimensional vectors (it gives only 1536)")
    assert [len(v) for v in out.vectors] == [256, 256] and fakes["openrouter"].requests[-1].body["dimensions"] == 256
    none = await relay.embed(None, "openai/text-embedding-ada-002", TEXTS, dimensions=256)
    assert none.error.unsupported == "dimensions"


async def test_a_models_own_length_asked_for_is_not_sent_to_a_model_that_would_refuse_the_question(fakes, make_relay):
    out = await make_relay().embed(None, "openai/text-embedding-ada-002", TEXTS, dimensions=1536)
    assert out.error is None and "dimensions" not in fakes["openai"].requests[-1].body


async def test_an_agents_dimensions_are_asked_of_every_link(fakes, make_relay):
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-3-large"), ("google", "gemini-embedding-001"),
                                              dimensions=1024))
    fakes["openai"].script(faults.http_error(500))
    out = await relay.embed(None, "agent:vectors", TEXTS)
    assert out.link.provider == "google" and [len(v) for v in out.vectors] == [1024, 1024]
    assert fakes["openai"].requests[-1].body["dimensions"] == 1024
    assert fakes["google"].requests[-1].body["requests"][0]["outputDimensionality"] == 1024


async def test_an_answer_of_another_length_than_the_chains_fails_the_attempt(fakes, make_relay, monkeypatch):
    """A model the catalog does not know is tried; its vectors are checked instead."""
    monkeypatch.setitem(fake_embeddings.OLLAMA_MODELS, "bge-m3", EmbeddingModel(1024, False))
    fakes["openai"].script(faults.overloaded())
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-3-small")))
    agent = relay.agents["vectors"]
    relay.agents["vectors"] = agent.model_copy(update={"supported_providers": (
        *agent.supported_providers, ProviderOption(provider="ollama", model="bge-m3", priority=2))})
    out = await relay.embed(None, "agent:vectors", TEXTS)
    assert statuses(out)[1] == ("ollama", "bge-m3", "failed", "server_error")
    assert out.attempts[1].error_message == "answered 1024-dimensional vectors where the chain's are 1536-dimensional"
    alone = await relay.embed(None, "ollama/bge-m3", TEXTS)  # alone, it is the chain
    assert alone.error is None and len(alone.vectors[0]) == 1024


async def test_an_open_circuit_is_skipped(fakes, make_relay):
    relay = make_relay(breaker_threshold=1, breaker_cooldown=60)
    fakes["google"].script(faults.http_error(500))
    assert (await relay.embed(None, "google/gemini-embedding-001", TEXTS)).attempts[0].status == "failed"
    out = await relay.embed(None, "google/gemini-embedding-001", TEXTS)
    assert out.attempts[0].status == "skipped" and "circuit" in out.attempts[0].error_message


async def test_a_link_that_hangs_times_out_and_the_chain_goes_on(fakes, make_relay):
    fakes["openai"].script(faults.hang(30))
    relay = make_relay(first_token_timeout=0.3, agents=embedding_agent(
        ("openai", "text-embedding-3-small"), ("openrouter", "openai/text-embedding-3-small")))
    t0 = time.monotonic()
    out = await relay.embed(None, "agent:vectors", TEXTS)
    assert time.monotonic() - t0 < 5
    assert statuses(out)[0][2:] == ("failed", "timeout") and out.link.provider == "openrouter"


async def test_a_request_the_provider_rejects_itself_ends_the_walk(fakes, make_relay):
    fakes["openai"].script(faults.http_error(400))
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-3-small"),
                                              ("openrouter", "openai/text-embedding-3-small")))
    out = await relay.embed(None, "agent:vectors", TEXTS)
    assert [a.status for a in out.attempts] == ["failed", "skipped"] and out.error.fatal.kind is ErrorKind.BAD_REQUEST


async def test_what_cannot_be_served_as_asked_raises_before_any_call(fakes, make_relay):
    relay = make_relay()
    for inputs, why in (([], "at least one text"), (["ok", ""], r"input\[1\] is empty"),
                        (["x"] * 2049, "at most 2048")):
        with pytest.raises(InvalidRequest, match=why):
            await relay.embed(None, "openai/text-embedding-3-small", inputs)
    with pytest.raises(InvalidRequest, match="general-agent' is a chat agent"):
        await relay.embed(None, "agent:general-agent", TEXTS)
    assert fakes["openai"].requests == []


async def test_a_chat_may_not_name_an_embedding_model_or_agent(fakes, make_relay):
    relay = make_relay(agents=embedding_agent(("openai", "text-embedding-3-small")))
    with pytest.raises(InvalidRequest, match="openai/text-embedding-3-small is an embedding model"):
        await relay.run(None, "text-embedding-3-small", [Message("user", "Hello")])
    with pytest.raises(InvalidRequest, match="makes embeddings"):
        await relay.chat("vectors", "Hello")


def test_the_chain_dimension_is_the_asked_one_else_the_first_known_embedding_models():
    links = [Link("openai", "gpt-4o"), Link("ollama", "nomic-embed-text:latest"),
             Link("openai", "text-embedding-3-small")]
    assert chain_dimension(links, None) == 768 and chain_dimension(links, 64) == 64
    assert chain_dimension([Link("ollama", "bge-m3")], None) is None


def test_a_long_input_skips_a_model_whose_context_it_clearly_exceeds():
    fit = EmbeddingFit({}, 1024)
    request = EmbeddingRequest("mxbai-embed-large", ("x" * 5 * 600,))
    assert fit(Link("ollama", "mxbai-embed-large"), request) == (
        "input", "ollama/mxbai-embed-large's context of 512 tokens is too small for an input of at least 600 tokens")
    assert fit(Link("ollama", "mxbai-embed-large"), EmbeddingRequest("m", ("x" * 5 * 500,))) is None
