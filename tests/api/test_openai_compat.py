"""/v1: the OpenAI-compatible API over httpx (the official SDK is in test_openai_sdk.py), and the
model resolution behind it."""

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from sqlalchemy import select

from llmrelay.db.models import AIModelUsage
from llmrelay.routing.chain import ChainConfig
from llmrelay.testing import faults
from llmrelay.types import Link

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
HI = [{"role": "user", "content": "Hi there"}]


def ask(model: str, messages: list | None = None, **more) -> dict:
    return {"model": model, "messages": HI if messages is None else messages, **more}


def frames(text: str) -> list:
    """The `data:` payloads of an SSE body, JSON decoded (`[DONE]` as the string)."""
    out = []
    for block in text.strip().split("\n\n"):
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


async def ledger_rows(app, request_id: str) -> list[AIModelUsage]:
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(AIModelUsage.request_id == request_id).order_by(AIModelUsage.attempt)
        return list((await s.execute(stmt)).scalars().all())


# -- POST /v1/chat/completions ---------------------------------------------------------------------


async def test_an_agent_model_answers_a_chat_completion_and_records_the_agent(app, client, keys, fakes):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("agent:general-agent"))
    assert r.status_code == 200, r.text
    rid = r.headers["x-request-id"]
    d = r.json()
    assert d["id"] == f"chatcmpl-{rid}" and d["object"] == "chat.completion"
    assert abs(d["created"] - time.time()) < 60 and d["model"] == "claude-3-5-sonnet-20241022"
    choice = d["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Hello from fake anthropic")
    u = d["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0
    assert u["prompt_tokens_details"] == {"cached_tokens": 0} and u["completion_tokens_details"] == {
        "reasoning_tokens": 0}
    assert r.headers["x-llmrelay-provider"] == "anthropic" and r.headers["x-llmrelay-fallback"] == "false"
    assert Decimal(r.headers["x-llmrelay-cost-usd"]) > 0
    rows = await ledger_rows(app, rid)
    alice = await app.state.keys.principal(keys.alice)
    assert [(x.agent_id, x.user_id, x.provider, x.status) for x in rows] == [
        ("general-agent", alice.user_id, "anthropic", "success")]
    assert rows[0].cost_usd == Decimal(r.headers["x-llmrelay-cost-usd"])


async def test_system_and_developer_messages_join_the_agents_prompt(client, keys, fakes):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "developer", "content": [
        {"type": "text", "text": "Answer in "}, {"type": "text", "text": "French."}]},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": [{"type": "text", "text": "Again"}]}]
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("agent:web-dev-agent", messages, temperature=0.4, max_tokens=50, stop="END",
                                   user="someone", store=False, logprobs=None, n=1, modalities=["text"]))
    assert r.status_code == 200, r.text
    sent = fakes["anthropic"].requests[-1].body
    assert sent["system"].startswith("You are a senior web developer")
    assert sent["system"].endswith("\n\nBe brief.\n\nAnswer in French.")
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", "Hi"), ("assistant", "Bonjour"), ("user", "Again")]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.4
    assert sent["stop_sequences"] == ["END"]


async def test_a_provider_model_is_one_link_and_records_agent_direct(app, client, keys, fakes):
    r = await client.post("/v1/chat/completions", headers=keys.auth("bob"),
                          json=ask("openai/gpt-4o-mini", max_completion_tokens=64, max_tokens=9, stop=["a", "b"]))
    assert r.status_code == 200 and r.json()["model"] == "gpt-4o-mini"
    sent = fakes["openai"].requests[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["max_completion_tokens"] == 64 and sent["stop"] == ["a", "b"]
    assert [m["role"] for m in sent["messages"]] == ["user"]  # no agent, no system prompt
    rows = await ledger_rows(app, r.headers["x-request-id"])
    assert [(x.agent_id, x.provider, x.model) for x in rows] == [("direct", "openai", "gpt-4o-mini")]


async def test_an_openrouter_id_with_slashes_and_a_bare_catalog_name(client, keys, fakes):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openrouter/meta-llama/llama-3.1-70b-instruct"))
    assert r.headers["x-llmrelay-provider"] == "openrouter"
    assert fakes["openrouter"].requests[-1].body["model"] == "meta-llama/llama-3.1-70b-instruct"
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gemini-2.0-flash"))
    assert r.status_code == 200 and r.headers["x-llmrelay-provider"] == "google"


async def test_the_callers_saved_config_drives_an_agent_model(app, client, keys, fakes):
    alice = await app.state.keys.principal(keys.alice)
    await app.state.relay.ledger.configs.save(alice.user_id, "general-agent",
                                              ChainConfig(Link("google", "gemini-2.5-flash"), max_tokens=33))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("agent:general-agent"))
    assert r.headers["x-llmrelay-provider"] == "google" and r.json()["model"] == "gemini-2.5-flash"
    assert fakes["google"].requests[-1].body["generationConfig"]["maxOutputTokens"] == 33
    r = await client.post("/v1/chat/completions", headers=keys.auth("bob"), json=ask("agent:general-agent"))
    assert r.headers["x-llmrelay-provider"] == "anthropic"


async def test_models_list_adds_fallbacks_and_the_headers_say_so(app, client, keys, fakes):
    fakes["openai"].script(faults.overloaded())
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", models=["openai/gpt-4o", "google/gemini-2.0-flash"]))
    assert r.status_code == 200, r.text
    assert r.headers["x-llmrelay-provider"] == "google" and r.headers["x-llmrelay-fallback"] == "true"
    assert r.json()["model"] == "gemini-2.0-flash"
    rows = await ledger_rows(app, r.headers["x-request-id"])
    assert [(x.provider, x.status, x.agent_id) for x in rows] == [
        ("openai", "failed", "direct"), ("google", "fallback", "direct")]
    assert Decimal(r.headers["x-llmrelay-cost-usd"]) == sum(x.cost_usd for x in rows)


async def test_an_unpriced_model_has_no_cost_header(client, keys):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("google/gemini-9-ultra"))
    assert r.status_code == 200 and "x-llmrelay-cost-usd" not in r.headers


def assert_openai_error(r, status: int, type_: str, code: str | None = None, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["type"] == type_ and err["param"] == param
    if code is not None:
        assert err["code"] == code
    return err


async def test_a_missing_or_bad_key_is_401_in_openai_shape(client, keys):
    assert_openai_error(await client.post("/v1/chat/completions", json=ask("gpt-4o")), 401, "invalid_request_error",
                        "missing_api_key")
    r = await client.post("/v1/chat/completions", headers={"authorization": "Bearer lr_wrong"}, json=ask("gpt-4o"))
    assert_openai_error(r, 401, "invalid_request_error", "invalid_api_key")
    assert_openai_error(await client.get("/v1/models"), 401, "invalid_request_error")


async def test_an_unknown_agent_or_model_is_404(client, keys):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("agent:nobody"))
    err = assert_openai_error(r, 404, "invalid_request_error", "model_not_found", "model")
    assert "general-agent" in err["message"]  # the known agents are named
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gpt-4o", models=["nope"]))
    assert_openai_error(r, 404, "invalid_request_error", "model_not_found", "models[0]")


@pytest.mark.parametrize(("body", "param", "code", "says"), [
    ({"messages": HI}, "model", "missing_required_parameter", "model"),
    (ask("gpt-4o", []), "messages", "invalid_value", "at least 1"),
    (ask("gpt-4o", temperature=2.5), "temperature", "invalid_value", "less than or equal to 2"),
    (ask("gpt-4o", max_tokens=0), "max_tokens", "invalid_value", "greater than or equal to 1"),
    (ask("gpt-4o", [{"role": "robot", "content": "x"}]), "messages[0].role", "invalid_value", "'robot'"),
    (ask("gpt-4o", [{"role": "user", "content": "x"}, {"role": "tool", "content": "42", "tool_call_id": "c1"}]),
     "messages[1].tool_call_id", "invalid_value", "answers no tool call"),
    (ask("gpt-4o", [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]}]), "messages[0].tool_calls[0]",
     "invalid_value", "function tool calls"),
    (ask("gpt-4o", [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "y"}]),
     "messages[1].tool_calls", "invalid_value", "unanswered: c1"),
    (ask("gpt-4o", [{"role": "user", "content": [{"type": "text", "text": "see"}, {
        "type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]), "messages[0].content[1].image_url.url",
     "invalid_value", "http(s)"),
    (ask("gpt-4o", [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
     "messages[0].content[0]", "invalid_value", "'input_audio'"),
    (ask("gpt-4o", [{"role": "user", "content": 5}]), "messages[0].content", "invalid_value", "a string or an array"),
    (ask("gpt-4o", [{"role": "user"}]), "messages[0].content", "invalid_value", "a string or an array"),
    (ask("gpt-4o", [{"role": "system", "content": "only rules"}]), "messages", "invalid_value", "user or assistant"),
    (ask("gpt-4o", tools=[{"type": "function", "function": {"name": "has space"}}]), "tools[0].function.name",
     "invalid_value", "name"),
    (ask("gpt-4o", tool_choice="always"), "tool_choice", "invalid_value", "auto"),
    (ask("gpt-4o", response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
     "response_format.json_schema.name", "invalid_value", "name"),
    (ask("gpt-4o", reasoning_effort="minimal"), "reasoning_effort", "invalid_value", "'low'"),
    (ask("gpt-4o", top_p=1.5), "top_p", "invalid_value", "less than or equal to 1"),
    (ask("gpt-4o", logit_bias={"abc": 1}), "logit_bias", "invalid_value", "pattern"),
    (ask("gpt-4o", modalities=["text", "audio"]), "modalities", "unsupported_parameter", "only text"),
    (ask("gpt-4o", n=2), "n", "unsupported_parameter", "one answer"),
    (ask("gpt-4o", stop=["x"] * 17), "stop", "invalid_value", "16"),
    (ask("gpt-4o", logprobs=True), "logprobs", "unsupported_parameter", "log probabilities"),
    (ask("gpt-4o", stream="yes please"), "stream", "invalid_value", "boolean"),
])
async def test_bad_input_is_400_naming_the_param(client, keys, body, param, code, says):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=body)
    err = assert_openai_error(r, 400, "invalid_request_error", code, param)
    assert says in err["message"]


async def test_a_body_that_is_not_json_is_400(client, keys):
    r = await client.post("/v1/chat/completions", headers={**keys.auth("alice"), "content-type": "application/json"},
                          content=b'{"model": "gpt-4o", ')
    assert_openai_error(r, 400, "invalid_request_error", "invalid_json")
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=[1, 2])
    assert_openai_error(r, 400, "invalid_request_error", "invalid_value")


async def test_every_link_failing_is_502_naming_each_attempt(app, client, keys, fakes):
    fakes["openai"].script(faults.http_error(503))
    fakes["google"].script(faults.http_error(500))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", models=["google/gemini-2.0-flash"]))
    err = assert_openai_error(r, 502, "api_error", "all_providers_failed")
    assert "openai/gpt-4o" in err["message"] and "google/gemini-2.0-flash" in err["message"]
    assert [a["provider"] for a in r.json()["attemptedProviders"]] == ["openai", "google"]
    rows = await ledger_rows(app, r.headers["x-request-id"])
    assert [(x.provider, x.status, x.agent_id) for x in rows] == [("openai", "failed", "direct"),
                                                                  ("google", "failed", "direct")]


async def test_a_request_the_provider_rejects_is_400_without_trying_further(client, keys, fakes):
    fakes["openai"].script(faults.http_error(400, message="max_tokens is too large"))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", models=["google/gemini-2.0-flash"]))
    err = assert_openai_error(r, 400, "invalid_request_error", "provider_rejected")
    assert "max_tokens is too large" in err["message"]
    assert [a["status"] for a in r.json()["attemptedProviders"]] == ["failed", "skipped"]
    assert fakes["google"].requests == []


async def test_a_request_every_link_refuses_itself_is_400_with_the_refusals_code(app, client, keys, fakes):
    """Every link tried said the request is at fault (its context window): the answer is that refusal, a 400,
    not a 502 that blames the providers."""
    for name in ("openai", "google"):
        fakes[name].script(faults.http_error(400, code="context_length_exceeded"))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", models=["google/gemini-2.0-flash"]))
    err = assert_openai_error(r, 400, "invalid_request_error", "context_length_exceeded")
    assert err["message"].startswith("no link of the chain took this request: openai/gpt-4o")
    assert r.headers["x-should-retry"] == "false"
    rows = await ledger_rows(app, r.headers["x-request-id"])
    assert [(x.status, x.error_kind) for x in rows] == [("failed", "context_length_exceeded")] * 2


async def test_a_parameter_the_one_model_cannot_take_is_400_request_refused(client, keys):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", reasoning_effort="low"))
    err = assert_openai_error(r, 400, "invalid_request_error", "request_refused")
    assert "'reasoning_effort' cannot be sent: gpt-4o is not a reasoning model" in err["message"]


async def test_a_refusal_beside_a_providers_failure_is_still_502(client, keys, fakes):
    fakes["openai"].script(faults.http_error(400, code="context_length_exceeded"))
    fakes["google"].script(faults.http_error(500))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", models=["google/gemini-2.0-flash"]))
    assert_openai_error(r, 502, "api_error", "all_providers_failed")


class TestRateLimited:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 2, "rate_tpm": 0}

    async def test_over_the_limit_is_429_rate_limit_error_with_retry_after(self, client, keys):
        for _ in range(2):
            assert (await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                                      json=ask("gpt-4o"))).status_code == 200
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gpt-4o"))
        assert_openai_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
        assert int(r.headers["retry-after"]) >= 1
        assert (await client.get("/v1/models", headers=keys.auth("alice"))).status_code == 200  # reads are free


class TestTokenBudget:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 0, "rate_tpm": 15}

    async def test_a_streams_tokens_count_against_the_budget(self, client, keys):
        long = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                              json=ask("gpt-4o", long, stream=True, stream_options={"include_usage": True}))
        assert frames(r.text)[-2]["usage"]["total_tokens"] > 15
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gpt-4o"))
        assert r.status_code == 429 and "tokens per minute" in r.json()["error"]["message"]


# -- streaming ---------------------------------------------------------------------------------------


async def test_a_stream_sends_chunks_then_finish_then_usage_then_done(app, client, keys):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("agent:code-review-agent", stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-llmrelay-provider"] == "openai" and r.headers["x-llmrelay-fallback"] == "false"
    assert "x-llmrelay-cost-usd" not in r.headers  # not known when the headers leave
    got = frames(r.text)
    rid = r.headers["x-request-id"]
    assert got[-1] == "[DONE]"
    chunks, finish, usage = got[:-3], got[-3], got[-2]
    assert {c["id"] for c in got[:-1]} == {f"chatcmpl-{rid}"}
    assert {c["object"] for c in got[:-1]} == {"chat.completion.chunk"} and {c["model"] for c in chunks} == {"gpt-4o"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert text.startswith("Hello from fake openai (gpt-4o)")
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len(text.split())
    rows = await ledger_rows(app, rid)
    assert [(x.agent_id, x.status, x.completion_tokens) for x in rows] == [
        ("code-review-agent", "success", usage["usage"]["completion_tokens"])]


async def test_without_include_usage_there_is_no_usage_chunk(client, keys):
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gpt-4o", stream=True))
    got = frames(r.text)
    assert got[-1] == "[DONE]" and got[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in got[:-1])


async def test_a_fallback_before_the_first_text_is_invisible_in_the_stream(client, keys, fakes):
    fakes["anthropic"].script(faults.overloaded())
    fakes["openai"].script(faults.stream_error(after_chunks=0))  # breaks before any text: still transparent
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("agent:general-agent", stream=True))
    assert r.status_code == 200
    assert r.headers["x-llmrelay-provider"] == "google" and r.headers["x-llmrelay-fallback"] == "true"
    got = frames(r.text)
    assert got[-1] == "[DONE]" and got[0]["model"] == "gemini-2.0-flash"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in got[:-1]).startswith("Hello from fake google")


class TestRetriedLink:
    @pytest.fixture
    def settings_overrides(self):
        return {"max_retries": 1}

    async def test_the_provider_header_names_a_link_that_served_on_its_retry(self, client, keys, fakes):
        fakes["anthropic"].script(faults.http_error(500))  # retried on the same link, not a fallback
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                              json=ask("agent:general-agent", stream=True))
        assert r.headers["x-llmrelay-provider"] == "anthropic" and r.headers["x-llmrelay-fallback"] == "false"
        assert len(fakes["anthropic"].requests) == 2 and fakes["openai"].requests == []


async def test_a_stream_that_fails_before_text_is_an_ordinary_error(client, keys, fakes):
    fakes["openai"].script(faults.http_error(503))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gpt-4o", stream=True))
    assert_openai_error(r, 502, "api_error", "all_providers_failed")


async def test_a_stream_that_breaks_after_text_ends_with_an_error_frame_and_no_done(app, client, keys, fakes):
    fakes["openai"].script(faults.stream_error(after_chunks=2, code="server_error"))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json=ask("openai/gpt-4o", stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200
    got = frames(r.text)
    assert "[DONE]" not in got
    text = "".join(c["choices"][0]["delta"]["content"] for c in got[:-1])
    assert text == "Hello from"
    err = got[-1]["error"]
    assert set(err) == {"message", "type", "param", "code"} and "broke after output" in err["message"]
    rows = await ledger_rows(app, r.headers["x-request-id"])
    assert [(x.provider, x.status, x.agent_id) for x in rows] == [("openai", "failed", "direct")]


async def test_an_empty_answer_still_streams_a_role_chunk_and_finish(client, keys, fakes):
    fakes["openai"].script(faults.reply(text=""))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("gpt-4o", stream=True))
    got = frames(r.text)
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert got[1]["choices"][0]["finish_reason"] == "stop" and got[-1] == "[DONE]"


async def test_a_client_that_disconnects_cancels_the_upstream_call_and_its_usage_is_recorded(app, keys, fakes):
    """Driven through the raw ASGI interface: httpx's in-process transport cannot hang up mid-body."""
    fakes["anthropic"].script(faults.reply(text=" ".join(["word"] * 40), seconds=0.2))
    body = orjson.dumps(ask("anthropic/claude-3-5-haiku-20241022", stream=True))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "root_path": "", "server": ("test", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {keys.alice}".encode())]}
    first_chunk = asyncio.Event()
    sent: list[dict] = []

    async def receive():
        if not sent:
            sent.append({"type": "request-sent"})
            return {"type": "http.request", "body": body, "more_body": False}
        await first_chunk.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first_chunk.set()

    t0 = time.monotonic()
    await asyncio.wait_for(app(scope, receive, send), 5)
    assert time.monotonic() - t0 < 2  # not the 8 s the whole answer takes
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 200
    rid = dict(start["headers"])[b"x-request-id"].decode()
    rows = await ledger_rows(app, rid)
    assert len(rows) == 1 and rows[0].status == "failed" and "cancelled by the caller" in rows[0].error_message
    assert rows[0].prompt_tokens > 0 and rows[0].agent_id == "direct"  # the input tokens were still billed


# -- GET /v1/models ----------------------------------------------------------------------------------


async def test_models_lists_agents_and_catalog_and_priced_models(client, keys):
    r = await client.get("/v1/models", headers=keys.auth("alice"))
    assert r.status_code == 200
    d = r.json()
    assert d["object"] == "list"
    ids = {m["id"]: m for m in d["data"]}
    assert ids["agent:general-agent"]["owned_by"] == "llmrelay"
    assert ids["openai/gpt-4o"]["owned_by"] == "openai" and ids["openai/gpt-4o"]["object"] == "model"
    assert "openrouter/meta-llama/llama-3.1-70b-instruct" in ids and "ollama/mistral" in ids
    assert "anthropic/claude-3-haiku-20240307" in ids  # priced only (not in the catalog)
    assert not any(i.endswith("/*") for i in ids)
    assert all(isinstance(m["created"], int) for m in d["data"])


async def test_one_model_can_be_retrieved_even_with_slashes_in_its_id(client, keys):
    r = await client.get("/v1/models/openrouter/meta-llama/llama-3.1-70b-instruct", headers=keys.auth("alice"))
    assert r.status_code == 200 and r.json()["owned_by"] == "openrouter"
    assert (await client.get("/v1/models/agent:local-agent", headers=keys.auth("alice"))).json()["owned_by"] == \
        "llmrelay"
    r = await client.get("/v1/models/no-such-model", headers=keys.auth("alice"))
    assert_openai_error(r, 404, "invalid_request_error", "model_not_found", "model")


class TestDisabledProvider:
    @pytest.fixture
    def settings_overrides(self):
        return {"anthropic_api_key": None}

    async def test_its_models_are_not_listed_and_asking_one_says_why(self, client, keys):
        ids = {m["id"] for m in (await client.get("/v1/models", headers=keys.auth("alice"))).json()["data"]}
        assert "agent:general-agent" in ids and "openai/gpt-4o" in ids
        assert not any(i.startswith("anthropic/") for i in ids)
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("claude-3-5-haiku-latest"))
        err = assert_openai_error(r, 502, "api_error")
        assert "ANTHROPIC_API_KEY is not set" in err["message"]
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("agent:general-agent"))
        assert r.headers["x-llmrelay-provider"] == "openai" and r.headers["x-llmrelay-fallback"] == "true"

    async def test_a_conversation_every_usable_link_finds_too_long_is_the_requests_400(self, client, keys, fakes):
        """The agent's Claude link has no key; every other link says the conversation is too long: the
        request is at fault, and the answer says so as OpenAI would (the client may shorten and ask again)."""
        for name in ("openai", "google", "openrouter", "ollama"):
            fakes[name].script(faults.http_error(400, code="context_length_exceeded"))
        r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=ask("agent:general-agent"))
        assert_openai_error(r, 400, "invalid_request_error", "context_length_exceeded")
        assert [a["status"] for a in r.json()["attemptedProviders"]] == ["skipped"] + ["failed"] * 4
