"""Clients of `/v1/embeddings` against `llmrelay serve`: the official openai SDK (`client.embeddings.create`,
floats and its default base64) and LangChain's `OpenAIEmbeddings` (`embed_documents`, `embed_query`), with each
embedding provider serving; the ledger rows each request leaves (kind `embedding`, input tokens, the exact
cost the answer's `x-llmrelay-cost-usd` reported); a fallback between models of one dimension after a 503;
Anthropic skipped with the reason.

LangChain sends token ids unless `check_embedding_ctx_length=False`: llmrelay relays texts only, so it refuses
ids with a 400 naming `input` (LangChain raises the SDK's `BadRequestError`); with the flag off it works."""

from __future__ import annotations

import sqlite3
import uuid
from decimal import Decimal

import openai
import orjson
import pytest
import tiktoken

from llmrelay.providers.embeddings import estimated_tokens
from llmrelay.testing import faults
from llmrelay.testing.embeddings import vector
from tests.servers import wait_for

SERVING = {"openai": ("openai/text-embedding-3-small", 1536), "google": ("google/gemini-embedding-001", 3072),
           "ollama": ("ollama/nomic-embed-text", 768),
           "openrouter": ("openrouter/openai/text-embedding-3-small", 1536)}
PICO = Decimal(10) ** 12
providers = pytest.mark.parametrize("name", list(SERVING))


def texts(n: int = 2) -> list[str]:
    tok = uuid.uuid4().hex[:10]
    return [f"text {i} of {tok} to embed here" for i in range(n)]


def expected(name: str, text: str, dims: int | None = None) -> list[float]:
    model, native = SERVING[name]
    upstream = model.split("/", 1)[1]
    return vector(upstream, text, dims or native, native)


def tokens(name: str, inputs: list[str]) -> int:
    return estimated_tokens(inputs) if name == "google" else sum(len(t.split()) for t in inputs)


def ledger_rows(served, request_id: str, count: int) -> list[tuple]:
    """(kind, provider, status, prompt, completion tokens, cost in USD, error) once `count` rows are written."""
    def read() -> list[tuple] | None:
        with sqlite3.connect(served.home / "llmrelay.db") as db:
            rows = db.execute("SELECT kind, provider, status, prompt_tokens, completion_tokens, cost_usd, "
                              "error_message FROM ai_model_usage WHERE request_id = ? ORDER BY attempt",
                              (request_id,)).fetchall()
        return [(*r[:5], None if r[5] is None else Decimal(r[5]) / PICO, r[6]) for r in rows] \
            if len(rows) >= count else None
    return wait_for(f"{count} ledger rows", read, 10)


@pytest.fixture
def sdk(served):
    return openai.OpenAI(base_url=served.v1, api_key=served.key, max_retries=0)


@providers
@pytest.mark.parametrize("encoding", ["float", None])
def test_the_openai_sdk_gets_each_providers_vectors_and_the_ledger_prices_them(served, sdk, name, encoding):
    inputs = texts()
    kw = {"encoding_format": encoding} if encoding else {}  # None: the SDK's own default, base64
    raw = sdk.embeddings.with_raw_response.create(model=SERVING[name][0], input=inputs, **kw)
    assert orjson.loads(raw.http_request.content)["encoding_format"] == (encoding or "base64")
    done = raw.parse()
    assert [d.embedding for d in done.data] == [expected(name, t) for t in inputs]
    assert done.usage.prompt_tokens == done.usage.total_tokens == tokens(name, inputs)
    assert raw.headers["x-llmrelay-provider"] == name and raw.headers["x-llmrelay-fallback"] == "false"
    [row] = ledger_rows(served, raw.headers["x-request-id"], 1)
    assert row[:5] == ("embedding", name, "success", tokens(name, inputs), 0)
    assert row[5] == Decimal(raw.headers["x-llmrelay-cost-usd"])


@providers
def test_langchain_embeds_documents_and_a_query(served, name):
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(model=SERVING[name][0], base_url=served.v1, api_key=served.key, max_retries=0,
                           check_embedding_ctx_length=False)
    docs = texts(3)
    assert emb.embed_documents(docs) == [expected(name, t) for t in docs]
    assert emb.embed_query(docs[0]) == expected(name, docs[0])


def test_langchains_token_ids_are_refused_naming_input(served, monkeypatch):
    """LangChain's default tokenizes with tiktoken (its BPE files would be downloaded: a local byte-level
    encoding stands in) and sends the ids."""
    local = tiktoken.Encoding(name="bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([i]): i for i in range(256)},
                              special_tokens={})
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda name: local)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: local)
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(model="openai/text-embedding-3-small", base_url=served.v1, api_key=served.key,
                           max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        emb.embed_documents(texts())
    assert err.value.param == "input" and "check_embedding_ctx_length=False" in err.value.message


def test_an_embedding_agent_falls_back_after_a_503_between_models_of_one_dimension(served, sdk):
    served.fakes["openai"].script(faults.overloaded(model="text-embedding-3-large"))
    inputs = texts()
    raw = sdk.embeddings.with_raw_response.create(model="agent:small-vectors", input=inputs, encoding_format="float")
    done = raw.parse()
    assert raw.headers["x-llmrelay-provider"] == "openrouter" and raw.headers["x-llmrelay-fallback"] == "true"
    assert [d.embedding for d in done.data] == [vector("openai/text-embedding-3-small", t, 1536) for t in inputs]
    sent = served.fakes["openrouter"].requests[-1].body
    assert sent["input"] == inputs and "dimensions" not in sent  # 1536 is its own length
    rows = ledger_rows(served, raw.headers["x-request-id"], 2)
    assert [r[:5] for r in rows] == [("embedding", "openai", "failed", 0, 0),
                                     ("embedding", "openrouter", "fallback", tokens("openai", inputs), 0)]
    assert rows[0][5] + rows[1][5] == Decimal(raw.headers["x-llmrelay-cost-usd"]) == \
        tokens("openai", inputs) * Decimal("0.02") / 1_000_000


def test_the_agents_dimensions_shorten_the_first_models_vectors(served, sdk):
    inputs = texts(1)
    done = sdk.embeddings.create(model="agent:small-vectors", input=inputs, encoding_format="float")
    assert done.data[0].embedding == vector("text-embedding-3-large", inputs[0], 1536, 3072)
    assert served.fakes["openai"].requests[-1].body["dimensions"] == 1536


def test_anthropic_is_skipped_with_the_reason(served, sdk):
    with pytest.raises(openai.BadRequestError) as err:
        sdk.embeddings.create(model="anthropic/claude-3-5-haiku-20241022", input=texts())
    assert err.value.param == "model" and "anthropic has no embedding models" in err.value.message
    rid = err.value.response.headers["x-request-id"]
    assert ledger_rows(served, rid, 1) == [("embedding", "anthropic", "skipped", 0, 0, Decimal(0),
                                            "anthropic has no embedding models")]
