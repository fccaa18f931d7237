"""The OpenAI adapter's agent-grade requests against the fake OpenAI (real HTTP on 127.0.0.1): tools
and the tool loop, images, structured output, every sampling parameter, and what it refuses to send."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from llmrelay.providers.base import Timeouts
from llmrelay.providers.openai import OpenAIProvider, StreamState
from llmrelay.providers.sse import SSEEvent
from llmrelay.testing import FakeServers, faults
from llmrelay.testing.tools import IMAGE_TOKENS, TOOL_TOKENS
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
    Image,
    Message,
    OutputFormat,
    ProviderError,
    ReasoningDelta,
    Sampling,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolResult,
    UsageReport,
    needs_of,
)

MODEL = "gpt-4o"
WEATHER = Tool("get_weather", "The weather in a city", {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"enum": ["C", "F"]}}, "required": ["city", "unit"]})
TIME = Tool("get_time", "The time in a city", {"type": "object", "properties": {"city": {"type": "string"}},
                                                "required": ["city"]})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake image bytes").decode()


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["openai"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def provider(fakes):
    p = OpenAIProvider(fakes.url("openai"), SecretStr("sk-test"), timeouts=Timeouts(connect=2, idle=5))
    yield p
    await p.aclose()


def req(*messages: Message | str, stream: bool = False, model: str = MODEL, **kw) -> ChatRequest:
    turns = tuple(Message("user", m) if isinstance(m, str) else m for m in messages)
    needs, images, _ = needs_of(turns, kw.get("tools", ()), kw.get("tool_choice"), kw.get("parallel_tool_calls"),
                                kw.get("output"), kw.get("sampling", Sampling()))
    return ChatRequest(model=model, messages=turns, stream=stream, needs=needs, images=images, **kw)


def sent(fakes) -> dict:
    return fakes["openai"].requests[-1].body


async def collect(provider, request):
    return [e async for e in provider.stream(request)]


# -- tools ---------------------------------------------------------------------------------------------


async def test_tools_choice_and_parallel_flag_go_out_in_openais_shape(provider, fakes):
    await provider.complete(req("hi", tools=(WEATHER, Tool("noop")), tool_choice=ToolChoice("tool", "get_weather"),
                                parallel_tool_calls=False))
    body = sent(fakes)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                          "parameters": dict(WEATHER.parameters)}},
        {"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


async def test_a_tool_call_answer_has_the_calls_no_text_and_finish_tool_calls(provider, fakes):
    resp = await provider.complete(req("what is get_weather in Paris?", tools=(WEATHER, TIME)))
    assert resp.finish_reason == "tool_calls" and resp.text == ""
    [call] = resp.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "example", "unit": "C"}
    assert call.id.startswith("call_") and resp.usage.input_tokens == 5 + 2 * TOOL_TOKENS


async def test_parallel_calls_come_in_order_and_one_when_parallel_calls_are_off(provider):
    resp = await provider.complete(req("use get_weather and get_time", tools=(WEATHER, TIME)))
    assert [c.name for c in resp.tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in resp.tool_calls}) == 2
    resp = await provider.complete(req("use get_weather and get_time", tools=(WEATHER, TIME),
                                       parallel_tool_calls=False))
    assert [c.name for c in resp.tool_calls] == ["get_weather"]


async def test_a_streamed_tool_call_is_start_argument_pieces_and_end(provider):
    events = await collect(provider, req("use get_weather and get_time", stream=True, tools=(WEATHER, TIME)))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    for start in starts:
        pieces = [e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == start.index]
        assert len(pieces) >= 2 and json.loads("".join(pieces))["city"] == "example"
        begun = events.index(start)
        assert all(events.index(e) > begun for e in events if isinstance(e, ToolCallDelta) and e.index == start.index)
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert ends == [ToolCallEnd(0), ToolCallEnd(1)]
    assert events.index(ends[0]) > max(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta))
    assert not any(isinstance(e, TextDelta) for e in events)
    assert isinstance(events[-2], UsageReport) and events[-1] == Finished("tool_calls")


@pytest.mark.parametrize("stream", [False, True])
async def test_the_tool_loop_sends_the_call_and_its_result_and_gets_the_answer(provider, fakes, stream):
    first = await provider.complete(req("what is get_weather in Paris?", tools=(WEATHER,)))
    call = first.tool_calls[0]
    loop = req("what is get_weather in Paris?", first.message, Message("user", [ToolResult(call.id, "18 C, sunny")]),
               tools=(WEATHER,), stream=stream)
    if stream:
        events = await collect(provider, loop)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert events[-1] == Finished("stop")
    else:
        text = (await provider.complete(loop)).text
    assert text.endswith("The tools said: 18 C, sunny")
    messages = sent(fakes)["messages"]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}


async def test_required_choice_calls_again_after_results(provider):
    history = req("go", Message("assistant", [ToolCall("c1", "get_weather", "{}")]),
                  Message("user", [ToolResult("c1", "done")]), tools=(WEATHER, TIME),
                  tool_choice=ToolChoice("required"))
    resp = await provider.complete(history)
    assert [c.name for c in resp.tool_calls] == ["get_time"]  # the one not called yet


async def test_another_providers_long_ids_and_signatures_are_sent_as_short_ids(provider, fakes):
    long_id = "toolu_" + "a" * 50
    await provider.complete(req("go", Message("assistant", [ToolCall(long_id, "get_weather", "{}", "sig")]),
                                Message("user", [ToolResult(long_id, "ok")]), tools=(WEATHER,)))
    messages = sent(fakes)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"]
    assert len(messages[2]["tool_call_id"]) <= 40  # the fake refuses longer ones, as OpenAI does


async def test_a_scripted_call_is_read_back(provider, fakes):
    fakes["openai"].script(faults.reply(tool_calls=[{"name": "get_time", "arguments": {"city": "Oslo"}}]))
    resp = await provider.complete(req("hi", tools=(TIME,)))
    assert [(c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [("get_time", {"city": "Oslo"})]


@pytest.mark.parametrize("name", ["dotted.name", "x" * 65, "with space"])
async def test_a_tool_name_openai_refuses_fails_before_sending_and_falls_through(provider, fakes, name):
    err = await _refused(provider, req("hi", tools=(Tool(name),)))
    assert "'tools'" in err.message and err.falls_through and fakes["openai"].requests == []


async def test_a_forced_call_without_tools_is_a_bad_request_everywhere(provider, fakes):
    err = await _refused(provider, req("hi", tool_choice=ToolChoice("required")))
    assert not err.falls_through and fakes["openai"].requests == []


async def test_no_tool_choice_is_sent_without_tools(provider, fakes):
    await provider.complete(req("hi", tool_choice=ToolChoice("none"), parallel_tool_calls=True))
    assert "tool_choice" not in sent(fakes) and "parallel_tool_calls" not in sent(fakes)


async def _refused(provider, request) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await provider.complete(request)
    assert info.value.kind is ErrorKind.BAD_REQUEST and not info.value.retryable
    return info.value


# -- images --------------------------------------------------------------------------------------------


async def test_images_go_as_image_url_parts_inline_or_by_url(provider, fakes):
    turn = Message("user", [Text("what is in these?"), Image(data=PNG, media_type="image/png", detail="low"),
                            Image(url="https://img.example/cat.jpg")])
    resp = await provider.complete(req(turn))
    assert sent(fakes)["messages"][0]["content"] == [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://img.example/cat.jpg"}}]
    assert resp.text.endswith("(I saw 2 images.)") and resp.usage.input_tokens == 4 + 2 * IMAGE_TOKENS


# -- structured output ------------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


@pytest.mark.parametrize("stream", [False, True])
async def test_json_schema_output_is_native_and_the_answer_fits(provider, fakes, stream):
    request = req("who?", output=OutputFormat("json_schema", SCHEMA, "person", strict=True), stream=stream)
    if stream:
        events = await collect(provider, request)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert events[-1] == Finished("stop", "native")
    else:
        resp = await provider.complete(request)
        text = resp.text
        assert resp.output_mode == "native"
    assert json.loads(text) == {"name": "example", "age": 1}
    assert sent(fakes)["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "person", "schema": SCHEMA, "strict": True}}


async def test_json_mode_gets_the_word_json_when_no_message_says_it(provider, fakes):
    resp = await provider.complete(req("who are you?", output=OutputFormat("json_object")))
    assert json.loads(resp.text) == {"answer": "who are you?"}
    assert sent(fakes)["messages"][0] == {"role": "system", "content": "Answer in JSON."}
    await provider.complete(req("reply in JSON please", output=OutputFormat("json_object")))
    assert [m["role"] for m in sent(fakes)["messages"]] == ["user"]


# -- sampling and the end user ---------------------------------------------------------------------------


async def test_every_sampling_parameter_and_the_end_user_are_sent(provider, fakes):
    await provider.complete(req("hi", end_user="user-42", sampling=Sampling(
        top_p=0.9, seed=11, presence_penalty=0.5, frequency_penalty=-0.5, logit_bias={"50256": -100})))
    body = sent(fakes)
    assert (body["top_p"], body["seed"], body["presence_penalty"], body["frequency_penalty"]) == (0.9, 11, 0.5, -0.5)
    assert body["logit_bias"] == {"50256": -100} and body["user"] == "user-42"


async def test_top_k_is_not_openais_and_is_never_dropped_silently(provider, fakes):
    assert "top_k" not in OpenAIProvider.takes
    err = await _refused(provider, req("hi", sampling=Sampling(top_k=5)))
    assert "'top_k'" in err.message and err.falls_through and fakes["openai"].requests == []


# -- compatible servers ------------------------------------------------------------------------------------


def test_a_compatible_servers_call_without_id_or_index_gets_one_and_early_arguments_wait_for_the_name(provider):
    state = StreamState()
    frames = ['{"id":"cmpl-9","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{\\"a\\""}}]}}]}',
              '{"id":"cmpl-9","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"name":"f","arguments":":1}"}}]},'
              '"finish_reason":"stop"}]}']
    events = [e for f in frames for e in provider.stream_events(SSEEvent("message", f), state, MODEL)]
    assert events == [ToolCallStart(0, "call_cmpl-9_0", "f"), ToolCallDelta(0, '{"a"'), ToolCallDelta(0, ":1}"),
                      ToolCallEnd(0)]
    assert provider.finish_reason(state.finish, state.refused, state.called) == "tool_calls"


def test_reasoning_content_deltas_are_reasoning(provider):
    frame = '{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"hmm","content":"Hi"}}]}'
    assert provider.stream_events(SSEEvent("message", frame), StreamState(), MODEL) == [ReasoningDelta("hmm"),
                                                                                        TextDelta("Hi")]


def test_a_completion_without_call_ids_gets_them(provider):
    body = {"id": "x1", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}]}
    resp = provider.response_from(body, MODEL)
    assert resp.tool_calls == (ToolCall("call_x1_0", "f", "{}"),) and resp.finish_reason == "tool_calls"
