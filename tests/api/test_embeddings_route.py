"""POST /v1/embeddings in-process (the app over httpx's ASGI transport, the fakes over real HTTP): OpenAI's
request and answer, the official SDK as the client, ledger rows of kind `embedding`, fallback, refusals,
rate limits."""

from __future__ import annotations

import base64
import struct
from decimal import Decimal

import httpx
import openai
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from llmrelay.api.errors import Problem
from llmrelay.api.openai_embeddings import IDS_REFUSED, float32_base64, parse_embeddings_request
from llmrelay.db.models import AIModelUsage
from llmrelay.providers.embeddings import estimated_tokens
from llmrelay.testing import faults
from llmrelay.testing.embeddings import vector

TEXTS = ["the quick brown fox", "jumps over the lazy dog today"]
WORDS = 10
AGENTS = """
[[agents]]
id = "vectors"
name = "Vectors"
kind = "embedding"
supported_providers = [
  { provider = "openai", model = "text-embedding-3-small", priority = 1 },
  { provider = "openrouter", model = "openai/text-embedding-3-small", priority = 2 },
]
"""


@pytest.fixture
def settings_overrides(tmp_path):
    path = tmp_path / "agents.toml"
    path.write_text(AGENTS)
    return {"agents_file": path}


async def embed(client, keys, who: str = "alice", **body) -> httpx.Response:
    return await client.post("/v1/embeddings", headers=keys.auth(who), json=body)


async def rows(app, request_id: str) -> list[AIModelUsage]:
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(AIModelUsage.request_id == request_id).order_by(AIModelUsage.attempt)
        return list((await s.execute(stmt)).scalars().all())


async def test_an_answer_in_openais_shape_with_llmrelays_headers_and_its_ledger_row(app, client, keys, fakes):
    r = await embed(client, keys, model="openai/text-embedding-3-small", input=TEXTS)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d == {"object": "list", "model": "text-embedding-3-small",
                 "data": [{"object": "embedding", "index": i, "embedding": vector("text-embedding-3-small", t, 1536)}
                          for i, t in enumerate(TEXTS)],
                 "usage": {"prompt_tokens": WORDS, "total_tokens": WORDS}}
    assert r.headers["x-llmrelay-provider"] == "openai" and r.headers["x-llmrelay-fallback"] == "false"
    cost = Decimal(r.headers["x-llmrelay-cost-usd"])
    assert cost == WORDS * Decimal("0.02") / 1_000_000  # 0008's price, exact
    [row] = await rows(app, r.headers["x-request-id"])
    alice = await app.state.keys.principal(keys.alice)
    assert (row.kind, row.agent_id, row.user_id, row.provider, row.model, row.status) == (
        "embedding", "direct", alice.user_id, "openai", "text-embedding-3-small", "success")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens, row.cost_usd) == (WORDS, 0, WORDS, cost)


async def test_base64_is_each_vectors_little_endian_float32(client, keys):
    r = await embed(client, keys, model="text-embedding-3-small", input="one text", encoding_format="base64")
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    expected = vector("text-embedding-3-small", "one text", 1536)
    assert struct.unpack(f"<{len(raw) // 4}f", raw) == tuple(expected)


@pytest.mark.parametrize(("model", "dims", "price"), [
    ("google/gemini-embedding-001", 3072, "0.15"), ("ollama/nomic-embed-text", 768, "0"),
    ("openrouter/openai/text-embedding-3-small", 1536, "0.02"), ("text-embedding-004", 768, "0")])
async def test_every_embedding_provider_serves_and_is_priced(app, client, keys, model, dims, price):
    r = await embed(client, keys, model=model, input=TEXTS)
    assert r.status_code == 200, r.text
    assert [len(x["embedding"]) for x in r.json()["data"]] == [dims, dims]
    tokens = estimated_tokens(TEXTS) if "google" in model or model == "text-embedding-004" else WORDS
    assert r.json()["usage"]["prompt_tokens"] == tokens  # Gemini reports none: the estimate
    [row] = await rows(app, r.headers["x-request-id"])
    assert row.kind == "embedding" and row.prompt_tokens == tokens and row.completion_tokens == 0
    assert row.cost_usd == Decimal(r.headers["x-llmrelay-cost-usd"]) == tokens * Decimal(price) / 1_000_000


async def test_an_embedding_agent_falls_back_after_a_503_and_the_ledger_has_both(app, client, keys, fakes):
    fakes["openai"].script(faults.overloaded())
    r = await embed(client, keys, model="agent:vectors", input=TEXTS, dimensions=512)
    assert r.status_code == 200, r.text
    assert r.headers["x-llmrelay-provider"] == "openrouter" and r.headers["x-llmrelay-fallback"] == "true"
    assert r.json()["model"] == "openai/text-embedding-3-small" and len(r.json()["data"][0]["embedding"]) == 512
    got = await rows(app, r.headers["x-request-id"])
    assert [(x.kind, x.agent_id, x.provider, x.status, x.error_kind) for x in got] == [
        ("embedding", "vectors", "openai", "failed", "overloaded"),
        ("embedding", "vectors", "openrouter", "fallback", None)]
    assert sum(x.cost_usd for x in got) == Decimal(r.headers["x-llmrelay-cost-usd"]) > 0


async def test_anthropic_is_skipped_with_the_reason_and_no_link_is_a_400_naming_model(client, keys, fakes):
    r = await embed(client, keys, model="anthropic/claude-3-5-haiku-20241022", input=TEXTS)
    assert r.status_code == 400
    err = r.json()
    assert err["error"]["param"] == "model" and err["error"]["code"] == "unsupported_parameter"
    assert err["attemptedProviders"][0]["status"] == "skipped"
    assert err["attemptedProviders"][0]["error"] == "anthropic has no embedding models"
    assert fakes["anthropic"].requests == []


@pytest.mark.parametrize(("body", "param", "says"), [
    ({"input": [[101, 102, 103]]}, "input", "token ids"),
    ({"input": [101, 102]}, "input", "token ids"),
    ({"input": []}, "input", "at least one text"),
    ({"input": ["fine", ""]}, "input", "input[1] is empty"),
    ({"input": [1, "mixed"]}, "input", "a text or a list of texts"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format", "float"),
    ({"input": "x", "dimensions": 0}, "dimensions", "greater than or equal to 1"),
    ({"input": "x", "dimensions": 4000}, "dimensions", "cannot give 4000-dimensional"),
    ({"input": "x", "suffix": "y"}, None, "Unrecognized request argument supplied: suffix"),
    ({"input": "x", "model": None}, "model", "valid string"),
])
async def test_bad_input_is_a_400_naming_the_parameter(client, keys, fakes, body, param, says):
    r = await embed(client, keys, **{"model": "openai/text-embedding-3-small", **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and says in r.json()["error"]["message"]
    assert fakes["openai"].requests == []


async def test_unknown_models_and_chat_agents_are_refused(client, keys):
    r = await embed(client, keys, model="openai/whatever-9", input="x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = await embed(client, keys, model="openai/text-embedding-9", input="x")  # plausible: OpenAI says no
    assert r.status_code == 502 and r.json()["attemptedProviders"][0]["errorKind"] == "not_found"
    r = await embed(client, keys, model="agent:general-agent", input="x")
    assert r.status_code == 400 and "chat agent" in r.json()["error"]["message"]


async def test_the_chat_door_refuses_an_embedding_model(client, keys):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json={"model": "text-embedding-3-small", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 400 and "is an embedding model" in r.json()["error"]["message"]


async def test_v1_models_lists_the_embedding_models(client, keys):
    r = await client.get("/v1/models", headers=keys.auth("alice"))
    ids = {m["id"] for m in r.json()["data"]}
    assert {"openai/text-embedding-3-small", "google/gemini-embedding-001", "ollama/nomic-embed-text",
            "openrouter/openai/text-embedding-3-small", "agent:vectors"} <= ids


async def test_no_link_answering_is_a_502_listing_the_attempts(client, keys, fakes):
    fakes["ollama"].script(faults.http_error(500))
    r = await embed(client, keys, model="ollama/all-minilm", input="x")
    assert r.status_code == 502 and r.json()["attemptedProviders"][0]["errorKind"] == "server_error"


# -- the official SDK -------------------------------------------------------------------------------------


@pytest.fixture
async def sdk(app, keys):
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(base_url="http://llmrelay.test/v1", api_key=keys.alice, http_client=http,
                                max_retries=0)
    yield client
    await client.close()


async def test_the_sdk_decodes_its_default_base64_and_floats_alike(sdk, fakes):
    raw = await sdk.embeddings.with_raw_response.create(model="openai/text-embedding-3-small", input=TEXTS)
    assert orjson.loads(raw.http_request.content)["encoding_format"] == "base64"  # the SDK's default
    assert fakes["openai"].requests[-1].body["encoding_format"] == "float"  # llmrelay asks floats upstream
    default = raw.parse()
    floats = await sdk.embeddings.create(model="openai/text-embedding-3-small", input=TEXTS, encoding_format="float")
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data] == [
        vector("text-embedding-3-small", t, 1536) for t in TEXTS]
    assert default.usage.prompt_tokens == WORDS and default.model == "text-embedding-3-small"


async def test_the_sdk_raises_its_own_errors(sdk):
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.embeddings.create(model="openai/text-embedding-3-small", input=[[1, 2, 3]])
    assert err.value.param == "input" and err.value.code == "unsupported_parameter"
    with pytest.raises(openai.NotFoundError):
        await sdk.embeddings.create(model="agent:nobody", input="x")


class TestTokensPerMinute:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 0, "rate_tpm": 8}

    async def test_the_input_tokens_are_charged_to_the_users_budget(self, client, keys):
        first = await embed(client, keys, model="openai/text-embedding-3-small", input=TEXTS)
        assert first.status_code == 200 and first.json()["usage"]["prompt_tokens"] == WORDS > 8
        r = await embed(client, keys, model="openai/text-embedding-3-small", input="again")
        assert r.status_code == 429 and "tokens per minute" in r.json()["error"]["message"]
        assert (await embed(client, keys, "bob", model="openai/text-embedding-3-small", input="x")).status_code == 200


# -- the request parser -----------------------------------------------------------------------------------


@given(st.lists(st.text(min_size=1), min_size=1, max_size=5))
def test_any_list_of_texts_is_read_as_it_is(texts):
    body, inputs = parse_embeddings_request(
        orjson.dumps({"model": "m", "input": texts}))
    assert inputs == texts and body.model == "m"


@given(st.one_of(st.lists(st.integers(0, 100_000), min_size=1),
                 st.lists(st.lists(st.integers(0, 100_000)), min_size=1)))
def test_token_ids_are_refused_naming_input(ids):
    with pytest.raises(Problem) as err:
        parse_embeddings_request(orjson.dumps({"model": "m", "input": ids}))
    assert (err.value.status, err.value.field, err.value.detail) == (400, "input", IDS_REFUSED)


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=12))
def test_any_json_body_is_read_or_refused_with_a_400(value):
    try:
        parse_embeddings_request(orjson.dumps({"model": "m", "input": value}))
    except Problem as p:
        assert p.status == 400 and p.field in ("input", None)


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=64))
def test_base64_round_trips_float32_vectors(v):
    raw = base64.b64decode(float32_base64(v))
    assert list(struct.unpack(f"<{len(v)}f", raw)) == v
