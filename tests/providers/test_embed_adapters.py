"""Each adapter's `embed` against its fake (real HTTP on 127.0.0.1): the wire request, the vectors in order,
the input tokens, and failures mapped as the adapter's chat maps them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from llmrelay.providers.base import Timeouts
from llmrelay.providers.embeddings import checked_vectors, estimated_tokens, openai_vectors
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.providers.registry import provider_class
from llmrelay.testing import FakeServers, faults
from llmrelay.testing.embeddings import vector
from llmrelay.types import EmbeddingRequest, ErrorKind, ProviderError

MODELS = {"openai": "text-embedding-3-small", "openrouter": "openai/text-embedding-3-small",
          "google": "gemini-embedding-001", "ollama": "nomic-embed-text"}
DIMS = {"openai": 1536, "openrouter": 1536, "google": 3072, "ollama": 768}
TEXTS = ("the first text", "a second, longer text to embed")
each = pytest.mark.parametrize("name", list(MODELS))


@pytest.fixture(scope="module")
def fakes():
    with FakeServers([*MODELS, "anthropic"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def adapters(fakes):
    made = {}
    for name in [*MODELS, "anthropic"]:
        key = fakes[name].default_key
        made[name] = provider_class(name)(fakes.url(name), SecretStr(key) if key else None,
                                          timeouts=Timeouts(connect=2, idle=5))
    yield made
    for p in made.values():
        await p.aclose()


def ask(name: str, texts=TEXTS, **kw) -> EmbeddingRequest:
    return EmbeddingRequest(kw.pop("model", MODELS[name]), tuple(texts), **kw)


@each
async def test_vectors_come_back_one_per_input_in_order(adapters, name):
    resp = await adapters[name].embed(ask(name))
    assert resp.provider == name and resp.model == MODELS[name]
    assert resp.vectors == [vector(MODELS[name], t, DIMS[name]) for t in TEXTS]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5) for v in resp.vectors)
    assert resp.usage.output_tokens == 0


@each
async def test_the_input_tokens_are_the_providers_count_or_geminis_estimate(adapters, name):
    resp = await adapters[name].embed(ask(name))
    words = sum(len(t.split()) for t in TEXTS)
    assert resp.usage.input_tokens == (estimated_tokens(TEXTS) if name == "google" else words)
    assert estimated_tokens(TEXTS) == math.ceil(len(TEXTS[0]) / 4) + math.ceil(len(TEXTS[1]) / 4)


async def test_openai_sends_every_input_as_floats_with_dimensions_and_user(adapters, fakes):
    resp = await adapters["openai"].embed(ask("openai", dimensions=256, end_user="u-42"))
    assert [len(v) for v in resp.vectors] == [256, 256]
    assert fakes["openai"].requests[-1].path == "/v1/embeddings"
    assert fakes["openai"].requests[-1].body == {"model": "text-embedding-3-small", "input": list(TEXTS),
                                                 "encoding_format": "float", "dimensions": 256, "user": "u-42"}
    assert resp.vectors[0] == vector("text-embedding-3-small", TEXTS[0], 256, 1536)


async def test_openrouter_reads_vectors_as_floats_though_it_keeps_chat_costs_as_text(adapters, fakes):
    resp = await adapters["openrouter"].embed(ask("openrouter"))
    assert all(type(x) is float for x in resp.vectors[0])
    assert fakes["openrouter"].requests[-1].path == "/api/v1/embeddings"


async def test_gemini_batches_name_the_model_and_the_output_dimensionality(adapters, fakes):
    resp = await adapters["google"].embed(ask("google", dimensions=768))
    assert [len(v) for v in resp.vectors] == [768, 768]
    sent = fakes["google"].requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.body == {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]},
                                       "outputDimensionality": 768} for t in TEXTS]}


async def test_gemini_takes_more_than_a_batch_of_inputs_in_several_batches_in_order(adapters, fakes):
    texts = [f"text number {i}" for i in range(230)]
    resp = await adapters["google"].embed(ask("google", texts, model="text-embedding-004"))
    assert resp.vectors == [vector("text-embedding-004", t, 768) for t in texts]
    assert sorted(len(r.body["requests"]) for r in fakes["google"].requests) == [30, 100, 100]


async def test_ollama_asks_not_to_truncate_so_an_overlong_input_fails(adapters, fakes):
    await adapters["ollama"].embed(ask("ollama"))
    assert fakes["ollama"].requests[-1].body == {"model": "nomic-embed-text", "input": list(TEXTS), "truncate": False}
    with pytest.raises(ProviderError) as err:
        await adapters["ollama"].embed(ask("ollama", ["word " * 600], model="mxbai-embed-large"))
    assert err.value.kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED and err.value.falls_through


@pytest.mark.parametrize(("fault", "kind"), [
    (faults.overloaded(), ErrorKind.OVERLOADED), (faults.http_error(429), ErrorKind.RATE_LIMITED),
    (faults.http_error(401), ErrorKind.AUTH), (faults.http_error(500), ErrorKind.SERVER_ERROR),
    (faults.malformed(), ErrorKind.SERVER_ERROR), (faults.cut(), ErrorKind.CONNECTION)])
@each
async def test_failures_are_mapped_as_the_chats_are(adapters, fakes, name, fault, kind):
    fakes[name].script(fault)
    with pytest.raises(ProviderError) as err:
        await adapters[name].embed(ask(name))
    assert err.value.kind is kind and err.value.provider == name


@each
async def test_a_model_the_provider_lacks_is_not_found(adapters, name):
    with pytest.raises(ProviderError) as err:
        await adapters[name].embed(ask(name, model="openai/no-embedder" if name == "openrouter" else "no-embedder"))
    assert err.value.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize(("name", "dimensions"), [("openai", 4000), ("google", 4000), ("ollama", 4000)])
async def test_dimensions_beyond_the_models_are_refused_by_the_provider(adapters, name, dimensions):
    with pytest.raises(ProviderError) as err:
        await adapters[name].embed(ask(name, dimensions=dimensions))
    assert err.value.kind is ErrorKind.BAD_REQUEST


async def test_a_dimensions_parameter_is_refused_by_a_model_that_cannot_shorten(adapters):
    with pytest.raises(ProviderError) as err:
        await adapters["openai"].embed(ask("openai", model="text-embedding-ada-002", dimensions=512))
    assert err.value.kind is ErrorKind.BAD_REQUEST and "does not support specifying dimensions" in err.value.message


async def test_anthropic_has_no_embeddings(adapters):
    assert "embeddings" not in adapters["anthropic"].takes
    assert all("embeddings" in adapters[n].takes for n in MODELS)
    with pytest.raises(ProviderError) as err:
        await adapters["anthropic"].embed(ask("openai", model="claude-3-5-haiku-20241022"))
    assert err.value.kind is ErrorKind.NOT_FOUND


# -- reading replies ------------------------------------------------------------------------------------


@given(st.permutations(range(6)))
def test_openai_shaped_rows_come_back_in_the_inputs_order_whatever_order_they_arrive_in(order):
    provider = OpenAIProvider("http://127.0.0.1:9")
    data = {"data": [{"object": "embedding", "index": i, "embedding": [float(i), 0.5]} for i in order]}
    assert openai_vectors(provider, data, 6, "m") == [[float(i), 0.5] for i in range(6)]


@pytest.mark.parametrize("vectors", [[[0.1]], [[0.1], [0.2], [0.3]], [[0.1], []], [[0.1], ["0.2"]], [[0.1], None],
                                     "nope"])
def test_a_reply_without_one_vector_of_numbers_per_input_is_a_server_error(vectors):
    provider = OpenAIProvider("http://127.0.0.1:9")
    with pytest.raises(ProviderError) as err:
        checked_vectors(provider, vectors, 2, "m")
    assert err.value.kind is ErrorKind.SERVER_ERROR and err.value.falls_through
