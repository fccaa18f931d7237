"""The OpenRouter adapter against the fake OpenRouter server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from aiohttp import ClientSession
from pydantic import SecretStr

from llmrelay.providers.base import Timeouts
from llmrelay.providers.openrouter import OpenRouterProvider
from llmrelay.providers.registry import provider_class
from llmrelay.testing import FakeServers, faults
from llmrelay.testing.openrouter import AUTO_ROUTE, PRICES
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
    Message,
    ProviderError,
    Reasoning,
    ReasoningDelta,
    Sampling,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageReport,
)

MODEL = "openai/gpt-4o"
KEY = "sk-or-v1-test-openrouter-key"


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["openrouter"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()
    fakes["openrouter"].prices = json.loads(json.dumps(PRICES))


@pytest.fixture
def fake(fakes):
    return fakes["openrouter"]


@pytest.fixture
async def provider(fakes):
    p = provider_class("openrouter")(fakes.url("openrouter"), SecretStr(KEY),
                                     timeouts=Timeouts(connect=2, idle=5))
    yield p
    await p.aclose()


def req(text: str = "hello there", stream: bool = False, **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", MODEL), messages=(Message("user", text),), stream=stream, **kw)


async def collect(provider, request: ChatRequest) -> list:
    return [ev async for ev in provider.stream(request)]


async def failure(provider, request: ChatRequest) -> tuple[ProviderError, list]:
    events: list = []
    with pytest.raises(ProviderError) as info:
        if request.stream:
            async for ev in provider.stream(request):
                events.append(ev)
        else:
            await provider.complete(request)
    return info.value, events


# -- answers, usage, cost ----------------------------------------------------------------------


async def test_complete_returns_text_usage_and_exact_cost(provider, fake):
    resp = await provider.complete(req("hello there"))
    assert resp.text == f"Hello from fake openrouter ({MODEL}). You said: hello there"
    assert (resp.model, resp.provider, resp.finish_reason) == (MODEL, "openrouter", "stop")
    assert resp.raw_id.startswith("gen-")
    assert resp.usage == Usage(input_tokens=2, output_tokens=9)
    assert isinstance(resp.provider_cost_usd, str)
    assert Decimal(resp.provider_cost_usd) == fake.cost(MODEL, 2, 9) == Decimal("0.000095")


async def test_stream_with_processing_comments_yields_deltas_usage_and_finished(provider, fake):
    events = await collect(provider, req("hello there", stream=True))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == f"Hello from fake openrouter ({MODEL}). You said: hello there"
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert len(reports) == 1 and events[-2] is reports[0] and events[-1] == Finished("stop")
    assert reports[0].usage == Usage(input_tokens=2, output_tokens=9)
    assert Decimal(reports[0].provider_cost_usd) == fake.cost(MODEL, 2, 9)
    assert reports[0].model == MODEL and reports[0].raw_id.startswith("gen-")


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_with_cache_reads_writes_and_reasoning(provider, fake, stream):
    model = "anthropic/claude-3.5-sonnet"
    fake.script(faults.reply(usage={"input": 5000, "cached_input": 3000, "cache_write": 1000,
                                    "output": 400, "reasoning": 150}))
    expected = Usage(input_tokens=5000, output_tokens=400, cached_input_tokens=3000, reasoning_tokens=150,
                     cache_write_tokens=1000)
    # 1000 uncached x 3e-6 + 3000 read x 3e-7 + 1000 write x 3.75e-6 + 400 out x 1.5e-5
    cost = Decimal("0.003") + Decimal("0.0009") + Decimal("0.00375") + Decimal("0.006")
    if stream:
        report = next(e for e in await collect(provider, req(stream=True, model=model))
                      if isinstance(e, UsageReport))
        usage, reported = report.usage, report.provider_cost_usd
    else:
        resp = await provider.complete(req(model=model))
        usage, reported = resp.usage, resp.provider_cost_usd
    assert usage == expected
    assert Decimal(reported) == cost == fake.cost(model, 5000, 400, 3000, 1000)


async def test_cost_follows_the_fakes_price_table(provider, fake):
    fake.prices[MODEL] = {"prompt": "0.000000123", "completion": "0.000000456"}
    resp = await provider.complete(req("a b c"))
    assert Decimal(resp.provider_cost_usd) == 3 * Decimal("0.000000123") + 10 * Decimal("0.000000456")


@pytest.mark.parametrize("raw", ["0.000123456789012345678901", "1.4e-05", "0", "0.00014"])
def test_cost_is_the_exact_number_text_never_a_float(provider, raw):
    body = ('{"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"finish_reason":"stop",'
            '"message":{"role":"assistant","content":"hi"}}],'
            '"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":' + raw + '}}')
    resp = provider.response_from(provider.parse_json(body, MODEL), MODEL)
    assert resp.provider_cost_usd == raw


@pytest.mark.parametrize("usage", [{}, {"cost": None}, {"cost": True}, {"cost": "n/a"}])
def test_missing_or_odd_cost_is_none(provider, usage):
    assert provider.read_cost(usage) is None


async def test_free_model_costs_zero(provider):
    resp = await provider.complete(req(model="meta-llama/llama-3.2-3b-instruct:free"))
    assert Decimal(resp.provider_cost_usd) == 0


async def test_auto_router_reports_the_model_that_served(provider):
    resp = await provider.complete(req(model="openrouter/auto"))
    assert resp.model == AUTO_ROUTE and Decimal(resp.provider_cost_usd) > 0


@pytest.mark.parametrize("native", ["stop", "length", "tool_calls", "content_filter"])
@pytest.mark.parametrize("stream", [False, True])
async def test_finish_reason_passes_through(provider, fake, native, stream):
    fake.script(faults.reply(finish=native))
    if stream:
        assert (await collect(provider, req(stream=True)))[-1] == Finished(native)
    else:
        assert (await provider.complete(req())).finish_reason == native


async def test_choice_error_in_a_200_body_is_server_error(provider, fake):
    fake.script(faults.reply(finish="error"))
    err, _ = await failure(provider, req())
    assert err.kind is ErrorKind.SERVER_ERROR and err.message == "Provider returned error"


async def test_finish_error_in_a_stream_raises_after_the_deltas(provider, fake):
    fake.script(faults.reply(text="partial answer", finish="error"))
    err, events = await failure(provider, req(stream=True))
    assert err.kind is ErrorKind.SERVER_ERROR
    assert events == [TextDelta("partial"), TextDelta(" answer")]


# -- what the fake received --------------------------------------------------------------------


async def test_request_wire_format(provider, fake):
    request = ChatRequest(model=MODEL, system="Be terse.", max_tokens=64, temperature=9.0,
                          stop=("1", "2", "3", "4"),
                          messages=(Message("user", "one"), Message("user", "two"), Message("assistant", ""),
                                    Message("assistant", "three"), Message("user", "four")))
    await provider.complete(request)
    recorded = fake.requests[-1]
    assert recorded.path == "/api/v1/chat/completions"
    assert recorded.headers["authorization"] == "<present>"
    assert "http-referer" not in recorded.headers  # optional, and llmrelay has no site of its own to name
    assert recorded.headers["x-title"] == "llmrelay"
    body = recorded.body
    assert body["messages"] == [{"role": "system", "content": "Be terse."},
                                {"role": "user", "content": "one\n\ntwo"},
                                {"role": "assistant", "content": "three"}, {"role": "user", "content": "four"}]
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert body["temperature"] == 2.0
    assert body["stop"] == ["1", "2", "3", "4"]


async def test_stream_request_sends_no_deprecated_stream_options(provider, fake):
    await collect(provider, req(stream=True, model="openai/o3-mini", temperature=0.3))
    body = fake.requests[-1].body
    assert body["stream"] is True and "stream_options" not in body
    assert body["temperature"] == 0.3  # OpenRouter drops unsupported parameters itself


async def test_wrong_key_is_auth():
    with FakeServers(["openrouter"], api_key="sk-or-v1-right-key-000") as servers:
        p = OpenRouterProvider(servers.url("openrouter"), SecretStr("sk-or-v1-wrong-key-000"))
        try:
            err, _ = await failure(p, req())
            assert err.kind is ErrorKind.AUTH and err.status == 401
        finally:
            await p.aclose()


# -- errors ------------------------------------------------------------------------------------

ERRORS = [
    (400, None, ErrorKind.BAD_REQUEST),
    (400, "context_length_exceeded", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (400, "max_tokens_exceeded", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (400, "token_limit_exceeded", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (400, "string_too_long", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (400, "invalid_prompt", ErrorKind.BAD_REQUEST),
    (400, "content_policy_violation", ErrorKind.CONTENT_FILTERED),
    (400, "refusal", ErrorKind.CONTENT_FILTERED),
    (401, None, ErrorKind.AUTH),
    (403, None, ErrorKind.AUTH),
    (403, "moderation", ErrorKind.CONTENT_FILTERED),
    (404, None, ErrorKind.NOT_FOUND),
    (408, None, ErrorKind.TIMEOUT),
    (412, None, ErrorKind.BAD_REQUEST),
    (413, None, ErrorKind.BAD_REQUEST),
    (422, None, ErrorKind.BAD_REQUEST),
    (429, None, ErrorKind.RATE_LIMITED),
    (500, None, ErrorKind.SERVER_ERROR),
    (500, "unmapped", ErrorKind.SERVER_ERROR),
    (502, None, ErrorKind.SERVER_ERROR),
    (503, None, ErrorKind.OVERLOADED),
    (504, None, ErrorKind.TIMEOUT),
    # error_type wins over the HTTP status; without one the status decides
    (500, "provider_overloaded", ErrorKind.OVERLOADED),
    (400, "untyped", ErrorKind.BAD_REQUEST),
    (503, "untyped", ErrorKind.OVERLOADED),
]


@pytest.mark.parametrize("status,code,kind", ERRORS)
@pytest.mark.parametrize("stream", [False, True])
async def test_http_error_maps_to_kind(provider, fake, status, code, kind, stream):
    fake.script(faults.http_error(status, code))
    err, events = await failure(provider, req(stream=stream))
    assert (err.kind, err.status, err.provider, err.model) == (kind, status, "openrouter", MODEL)
    assert err.message and events == []


async def test_402_is_auth_never_retried_even_with_hints(provider, fake):
    fake.script(faults.http_error(402, retry_after="5", should_retry="true"))
    err, _ = await failure(provider, req())
    assert err.kind is ErrorKind.AUTH and not err.retryable and err.falls_through
    assert "credits" in err.message


async def test_moderation_403_is_content_filtered(provider, fake):
    fake.script(faults.http_error(403, "moderation"))
    err, _ = await failure(provider, req())
    assert err.kind is ErrorKind.CONTENT_FILTERED and not err.retryable and err.falls_through


async def test_429_carries_retry_after_seconds(provider, fake):
    fake.script(faults.http_error(429, retry_after="12"))
    err, _ = await failure(provider, req())
    assert err.kind is ErrorKind.RATE_LIMITED and err.retry_after == 12.0 and err.retryable


async def test_no_provider_503_without_retry_after_goes_to_next_link(provider, fake):
    fake.script(faults.http_error(503, "no_provider"))
    err, _ = await failure(provider, req())
    assert err.kind is ErrorKind.OVERLOADED
    assert not err.retryable and err.falls_through and err.retry_after is None


async def test_no_provider_503_with_retry_after_is_retried(provider, fake):
    fake.script(faults.http_error(503, "no_provider", retry_after="3"))
    err, _ = await failure(provider, req())
    assert err.kind is ErrorKind.OVERLOADED and err.retryable and err.retry_after == 3.0


@pytest.mark.parametrize("code,kind", [(None, ErrorKind.SERVER_ERROR),
                                       ("rate_limit_exceeded", ErrorKind.RATE_LIMITED),
                                       ("context_length_exceeded", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
                                       ("provider_overloaded", ErrorKind.OVERLOADED),
                                       ("timeout", ErrorKind.TIMEOUT),
                                       ("moderation", ErrorKind.CONTENT_FILTERED),
                                       ("string_code", ErrorKind.SERVER_ERROR)])
async def test_mid_stream_error_chunk_maps_to_kind_after_deltas(provider, fake, code, kind):
    fake.script(faults.stream_error(after_chunks=3, code=code))
    err, events = await failure(provider, req(stream=True))
    assert err.kind is kind and err.status is None
    assert events == [TextDelta("Hello"), TextDelta(" from"), TextDelta(" fake")]


@pytest.mark.parametrize("error,kind", [({"code": 429, "message": "slow down"}, ErrorKind.RATE_LIMITED),
                                        ({"code": 502, "message": "down"}, ErrorKind.SERVER_ERROR),
                                        ({"code": "rate_limited", "message": "x"}, ErrorKind.RATE_LIMITED),
                                        ({"code": "something_new", "message": "x"}, ErrorKind.SERVER_ERROR),
                                        ({"message": "x", "metadata": {"error_type": "refusal"}},
                                         ErrorKind.CONTENT_FILTERED)])
def test_in_band_error_code_int_or_string(provider, error, kind):
    assert provider.inband_error(error, MODEL).kind is kind


def test_non_json_error_body_maps_by_status(provider):
    err = provider.error_from_response(502, {"retry-after": "4"}, b"<html>502 Bad Gateway</html>", MODEL)
    assert err.kind is ErrorKind.SERVER_ERROR and "502 Bad Gateway" in err.message and err.retry_after == 4


# -- transport ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_is_connection(provider, fake, stream):
    fake.script(faults.disconnect())
    err, _ = await failure(provider, req(stream=stream))
    assert err.kind is ErrorKind.CONNECTION


async def test_cut_stream_keeps_deltas_and_fails(provider, fake):
    fake.script(faults.cut(2))
    err, events = await failure(provider, req(stream=True))
    assert err.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)
    assert events == [TextDelta("Hello"), TextDelta(" from")]


async def test_malformed_stream_frame_is_server_error(provider, fake):
    fake.script(faults.malformed())
    err, _ = await failure(provider, req(stream=True))
    assert err.kind is ErrorKind.SERVER_ERROR and "not json" in err.message


async def test_stalled_stream_times_out(fakes, fake):
    p = OpenRouterProvider(fakes.url("openrouter"), SecretStr(KEY), timeouts=Timeouts(connect=2, idle=0.3))
    fake.script(faults.reply(text="slow words", seconds=1.0))
    try:
        err, events = await failure(p, req(stream=True))
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.TIMEOUT and events == [TextDelta("slow")]


# -- the fake's wire format --------------------------------------------------------------------


async def test_fake_stream_has_processing_comments_and_usage_only_in_final_empty_chunk(fakes):
    async with ClientSession() as s, s.post(fakes.url("openrouter") + "/chat/completions",
                                            json={"model": MODEL, "stream": True,
                                                  "messages": [{"role": "user", "content": "a b c d"}]},
                                            headers={"authorization": f"Bearer {KEY}"}) as resp:
        raw = (await resp.read()).decode()
    frames = [f for f in raw.split("\n\n") if f]
    assert frames[0] == ": OPENROUTER PROCESSING"
    assert frames.count(": OPENROUTER PROCESSING") >= 3 and frames[-1] == "data: [DONE]"
    chunks = [json.loads(f[6:]) for f in frames if f.startswith("data: {")]
    with_usage = [c for c in chunks if "usage" in c]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and with_usage[0]["choices"] == []
    assert with_usage[0]["usage"]["is_byok"] is False and "cost" in with_usage[0]["usage"]
    assert all(c["provider"] == "OpenAI" for c in chunks)
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish[0]["choices"][0]["native_finish_reason"] == "stop"


async def test_fake_native_finish_reason_is_the_upstreams(fakes, fake):
    fake.script(faults.reply(finish="length"))
    async with ClientSession() as s, s.post(fakes.url("openrouter") + "/chat/completions",
                                            json={"model": "anthropic/claude-3.5-sonnet",
                                                  "messages": [{"role": "user", "content": "hi"}]},
                                            headers={"authorization": f"Bearer {KEY}"}) as resp:
        body = await resp.json()
    choice = body["choices"][0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("length", "max_tokens")
    assert body["provider"] == "Anthropic"


async def test_fake_error_body_shape(fakes, fake):
    fake.script(faults.http_error(403, "moderation"))
    async with ClientSession() as s, s.post(fakes.url("openrouter") + "/chat/completions",
                                            json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
                                            headers={"authorization": f"Bearer {KEY}"}) as resp:
        body = await resp.json()
    assert resp.status == 403 and body["error"]["code"] == 403
    assert body["error"]["metadata"]["reasons"] == ["harassment"]
    assert body["error"]["metadata"]["model_slug"] == MODEL


async def test_fake_models_list_has_decimal_string_prices(fakes, fake):
    fake.prices["openai/gpt-4o"]["prompt"] = "0.0000099"
    async with ClientSession() as s, s.get(fakes.url("openrouter") + "/models") as resp:
        data = (await resp.json())["data"]
    by_id = {m["id"]: m for m in data}
    assert {"meta-llama/llama-3.1-70b-instruct", "openai/gpt-4o", "anthropic/claude-3.5-sonnet",
            "meta-llama/llama-3.2-3b-instruct:free", "openrouter/auto"} <= set(by_id)
    assert by_id["openai/gpt-4o"]["pricing"]["prompt"] == "0.0000099"
    assert by_id["meta-llama/llama-3.2-3b-instruct:free"]["pricing"]["completion"] == "0"
    assert by_id["openrouter/auto"]["pricing"]["prompt"] == "-1"
    for m in data:
        assert all(isinstance(v, str) for v in m["pricing"].values())
        assert isinstance(m["context_length"], int) and m["top_provider"]["context_length"] == m["context_length"]
    assert fake.requests[-1].path == "/api/v1/models"


def test_fake_cost_is_deterministic(fake):
    assert fake.cost(MODEL, 1000, 100) == Decimal("0.0035")
    assert fake.cost("some/unlisted-model", 1000, 100) == Decimal("0.0012")
    assert fake.cost("openrouter/auto", 1000, 100) == 0


def test_choice_level_error_in_a_chunk_raises(provider):
    from llmrelay.providers.openai import StreamState
    from llmrelay.providers.sse import SSEEvent

    chunk = ('{"id":"gen-1","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error",'
             '"error":{"code":504,"message":"upstream timed out"}}]}')
    with pytest.raises(ProviderError) as info:
        provider.stream_events(SSEEvent("message", chunk), StreamState(), MODEL)
    assert info.value.kind is ErrorKind.TIMEOUT and info.value.message == "upstream timed out"


# -- agent-grade requests ----------------------------------------------------------------------

WEATHER = Tool("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


async def test_top_k_and_reasoning_effort_go_out_in_openrouters_shape(provider, fake):
    await provider.complete(req(sampling=Sampling(top_k=40, top_p=0.8, seed=3, reasoning_effort="medium"),
                                end_user="u-1"))
    body = fake.requests[-1].body
    assert (body["top_k"], body["top_p"], body["seed"], body["user"]) == (40, 0.8, 3, "u-1")
    assert body["reasoning"] == {"effort": "medium"} and "reasoning_effort" not in body
    assert "top_k" in OpenRouterProvider.takes


async def test_reasoning_comes_back_with_its_tokens(provider):
    resp = await provider.complete(req("why is the sky blue", sampling=Sampling(reasoning_effort="high")))
    assert resp.reasoning == (Reasoning("Thinking it over: why is the sky blue", provider="openrouter"),)
    assert resp.usage.reasoning_tokens == 8 and resp.usage.output_tokens == 8 + len(resp.text.split())


async def test_streamed_reasoning_comes_before_the_text(provider):
    events = await collect(provider, req("why is the sky blue", stream=True, sampling=Sampling(reasoning_effort="low")))
    kinds = [type(e) for e in events if isinstance(e, ReasoningDelta | TextDelta)]
    assert kinds[:2] == [ReasoningDelta, ReasoningDelta] and set(kinds[2:]) == {TextDelta}
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Thinking it over: why is the sky blue"
    assert [e.usage.reasoning_tokens for e in events if isinstance(e, UsageReport)] == [8]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_loop_through_openrouter(provider, fake, stream):
    first = await provider.complete(req("use get_weather", tools=(WEATHER,)))
    assert first.finish_reason == "tool_calls" and [c.name for c in first.tool_calls] == ["get_weather"]
    call = first.tool_calls[0]
    loop = ChatRequest(model=MODEL, stream=stream, tools=(WEATHER,), messages=(
        Message("user", "use get_weather"), first.message, Message("user", [ToolResult(call.id, "rain")]),
        Message("user", "thanks")))
    if stream:
        events = await collect(provider, loop)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
    else:
        text = (await provider.complete(loop)).text
    assert "You said: thanks" in text and text.endswith("The tools said: rain")
    assert [m["role"] for m in fake.requests[-1].body["messages"]] == ["user", "assistant", "tool", "user"]


async def test_a_streamed_tool_call_through_openrouter(provider):
    events = await collect(provider, req("use get_weather", stream=True, tools=(WEATHER,)))
    calls = [e for e in events if isinstance(e, ToolCallStart | ToolCallDelta | ToolCallEnd)]
    assert calls[0] == ToolCallStart(0, calls[0].id, "get_weather") and calls[-1] == ToolCallEnd(0)
    assert json.loads("".join(e.arguments for e in calls if isinstance(e, ToolCallDelta))) == {"city": "example"}
    assert events[-1] == Finished("tool_calls")


async def test_a_tool_name_some_upstream_would_refuse_fails_before_sending_and_falls_through(provider, fake):
    with pytest.raises(ProviderError) as info:
        await provider.complete(req(tools=(Tool("ns.lookup"),)))
    assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.falls_through and "'ns.lookup'" in info.value.message
    assert fake.requests == []


async def test_the_fake_refuses_for_an_openai_upstream_what_openai_refuses(fakes, fake):
    long_id = "c" * 41
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": long_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": long_id, "content": "1"}]}
    async with ClientSession() as s, s.post(fakes.url("openrouter") + "/chat/completions", json=body,
                                            headers={"authorization": f"Bearer {KEY}"}) as resp:
        answer = await resp.json()
    assert resp.status == 400 and answer["error"]["metadata"]["provider_name"] == "OpenAI"
    assert "maximum length 40" in answer["error"]["metadata"]["raw"]
    body["model"] = "meta-llama/llama-3.1-70b-instruct"
    async with ClientSession() as s, s.post(fakes.url("openrouter") + "/chat/completions", json=body,
                                            headers={"authorization": f"Bearer {KEY}"}) as resp:
        assert resp.status == 200


def test_a_history_from_another_provider_keeps_the_call_and_result_together(provider):
    long_id = "toolu_" + "b" * 40
    body = provider.request_body(ChatRequest(model=MODEL, messages=(
        Message("user", "a"), Message("assistant", [ToolCall(long_id, "f", "{}")]),
        Message("user", [ToolResult(long_id, "1")]), Message("user", "b"), Message("user", "c"))), stream=False)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"]
    assert body["messages"][-1]["content"] == "b\n\nc"
    assert body["messages"][1]["tool_calls"][0]["id"] == body["messages"][2]["tool_call_id"]
