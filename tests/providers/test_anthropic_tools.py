"""The Anthropic adapter's agent-grade requests against the fake Anthropic server: tool calls, images,
structured output (native and by a forced tool), thinking and sampling, plain and streaming, checked
both on the wire the fake received and in the unified answer."""

from __future__ import annotations

import base64
import json

import jsonschema
import pytest
from aiohttp import web
from pydantic import SecretStr

from llmrelay.content import Image, Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import Timeouts
from llmrelay.testing import FakeServers, faults
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finished,
    ProviderError,
    ReasoningDelta,
    Sampling,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

KEY = "sk-ant-api03-test-key-0123456789"
MODEL = "claude-haiku-4-5"  # the 4.5 generation: native structured output
OLD_MODEL = "claude-3-5-haiku-20241022"  # before it: JSON by a forced tool
WEATHER = Tool("get_weather", "The weather in a city.",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = Tool("get_time", "The time in a zone.",
            {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
             "required": ["zone"]})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 24).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 24).decode()
BMP = base64.b64encode(b"BM" + b"\0" * 30).decode()
CITY = {"type": "object", "properties": {"name": {"type": "string"},
                                         "where": {"type": "object", "properties": {"lat": {"type": "number"}},
                                                   "required": ["lat"]}},
        "required": ["name", "where"]}


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["anthropic"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def provider(fakes):
    p = AnthropicProvider(fakes.url("anthropic"), SecretStr(KEY), timeouts=Timeouts(connect=2.0, idle=2.0))
    yield p
    await p.aclose()


def chat(*messages: Message | str, **kw) -> ChatRequest:
    turns = tuple(Message("user", m) if isinstance(m, str) else m for m in messages) or (Message("user", "hi"),)
    return ChatRequest(model=kw.pop("model", MODEL), messages=turns, **kw)


async def answer(provider, request: ChatRequest, stream: bool) -> ChatResponse:
    """The answer of a plain call, or the one a stream's events make (as the fallback executor builds it)."""
    if not stream:
        return await provider.complete(request)
    text, calls, thoughts, finish = [], {}, {}, None
    async for e in provider.stream(request):
        if isinstance(e, TextDelta):
            text.append(e.text)
        elif isinstance(e, ToolCallStart):
            assert e.index == len(calls)  # ordinals, in order
            calls[e.index] = [e.id, e.name, [], False]
        elif isinstance(e, ToolCallDelta):
            assert not calls[e.index][3]
            calls[e.index][2].append(e.arguments)
        elif isinstance(e, ToolCallEnd):
            calls[e.index][3] = True
        elif isinstance(e, ReasoningDelta):
            block = thoughts.setdefault(e.index, [[], None, None])
            block[0].append(e.text)
            block[1], block[2] = e.signature or block[1], e.redacted or block[2]
        elif isinstance(e, Finished):
            finish = e
    assert finish is not None and all(c[3] for c in calls.values())  # every call ended
    return ChatResponse("".join(text), request.model, "anthropic", Usage(), finish.finish_reason,
                        tool_calls=tuple(ToolCall(i, n, "".join(a)) for i, n, a, _ in calls.values()),
                        reasoning=tuple(Reasoning("".join(t), s, r, "anthropic") for t, s, r in thoughts.values()),
                        output_mode=finish.output_mode)


def sent(fakes) -> dict:
    return fakes["anthropic"].requests[-1].body


async def refused(provider, fakes, request: ChatRequest, stream: bool = False) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await answer(provider, request, stream)
    assert fakes["anthropic"].requests == []  # refused before sending
    return info.value


# -- tool calls ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_round_trip_call_then_result_then_final_text(provider, fakes, stream):
    first = chat("Please call get_weather for me", tools=(WEATHER,))
    called = await answer(provider, first, stream)
    assert called.finish_reason == "tool_calls" and called.text == ""
    (call,) = called.tool_calls
    assert call.id.startswith("toolu_") and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example"}
    assert sent(fakes)["tools"] == [{"name": "get_weather", "description": "The weather in a city.",
                                     "input_schema": WEATHER.parameters}]
    assert "tool_choice" not in sent(fakes)

    history = (*first.messages, called.message, Message("user", [ToolResult(call.id, "sunny, 21 C")]))
    final = await answer(provider, chat(*history, tools=(WEATHER,)), stream)
    assert final.finish_reason == "stop" and final.tool_calls == ()
    assert final.text.endswith("The tools said: sunny, 21 C")
    assert sent(fakes)["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": "get_weather",
                                           "input": {"city": "example"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}]}]


@pytest.mark.parametrize("stream", [False, True])
async def test_parallel_calls_are_answered_together(provider, fakes, stream):
    first = chat("Use get_weather and get_time", tools=(WEATHER, TIME))
    called = await answer(provider, first, stream)
    assert [c.name for c in called.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(called.tool_calls[1].arguments) == {"zone": "UTC"}
    assert len({c.id for c in called.tool_calls}) == 2
    results = Message("user", [ToolResult(c.id, f"result of {c.name}") for c in called.tool_calls])
    final = await answer(provider, chat(*first.messages, called.message, results, tools=(WEATHER, TIME)), stream)
    assert final.text.endswith("The tools said: result of get_weather; result of get_time")


@pytest.mark.parametrize(("choice", "parallel", "wire", "calls"), [
    (None, None, None, []),
    (ToolChoice("auto"), None, {"type": "auto"}, []),
    (ToolChoice("none"), None, {"type": "none"}, []),
    (ToolChoice("required"), None, {"type": "any"}, ["get_weather"]),
    (ToolChoice("tool", "get_time"), None, {"type": "tool", "name": "get_time"}, ["get_time"]),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}, []),
    (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}, ["get_weather"]),
])
async def test_tool_choice_forms_on_the_wire(provider, fakes, choice, parallel, wire, calls):
    resp = await provider.complete(chat("hello", tools=(WEATHER, TIME), tool_choice=choice,
                                        parallel_tool_calls=parallel))
    assert sent(fakes).get("tool_choice") == wire
    assert [c.name for c in resp.tool_calls] == calls


async def test_parallel_calls_off_makes_one_call(provider, fakes):
    resp = await provider.complete(chat("Use get_weather and get_time", tools=(WEATHER, TIME),
                                        parallel_tool_calls=False))
    assert [c.name for c in resp.tool_calls] == ["get_weather"]


async def test_results_go_first_in_their_turn_and_errors_are_flagged(provider, fakes):
    call = ToolCall("toolu_abc", "get_weather", '{"city": "Oslo"}')
    turn = Message("user", [Text("Here you go."), ToolResult("toolu_abc", "no such city", is_error=True)])
    await provider.complete(chat("weather?", Message("assistant", [call]), turn, tools=(WEATHER,)))
    assert sent(fakes)["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_abc", "content": "no such city", "is_error": True},
        {"type": "text", "text": "Here you go."}]


async def test_ids_anthropic_refuses_are_mapped_the_same_for_call_and_result(provider, fakes):
    call = ToolCall("functions.get_weather:0", "get_weather", "{}")  # ids as other providers make them
    resp = await provider.complete(chat("weather?", Message("assistant", [call]),
                                        Message("user", [ToolResult(call.id, "rain")]), tools=(WEATHER,)))
    assert resp.text.endswith("The tools said: rain")  # the fake checks the pairing
    (use,) = sent(fakes)["messages"][1]["content"]
    (result,) = sent(fakes)["messages"][2]["content"]
    assert use["id"] == result["tool_use_id"] != call.id


async def test_a_history_with_calls_but_no_tools_declares_them_and_forbids_calling(provider, fakes):
    call = ToolCall("toolu_1", "get_weather", '{"city": "Oslo"}')
    resp = await provider.complete(chat("weather?", Message("assistant", [call]),
                                        Message("user", [ToolResult("toolu_1", "rain")])))
    assert resp.finish_reason == "stop" and not resp.tool_calls
    assert [t["name"] for t in sent(fakes)["tools"]] == ["get_weather"]
    assert sent(fakes)["tool_choice"] == {"type": "none"}


@pytest.mark.parametrize("arguments", ["[1, 2]", "not json", '"text"'])
async def test_a_call_whose_arguments_are_not_an_object_falls_through(provider, fakes, arguments):
    call = ToolCall("toolu_1", "get_weather", arguments)
    err = await refused(provider, fakes, chat("w?", Message("assistant", [call]),
                                              Message("user", [ToolResult("toolu_1", "x")]), tools=(WEATHER,)))
    assert (err.kind, err.retryable, err.falls_through) == (ErrorKind.BAD_REQUEST, False, True)
    assert "not a JSON object" in err.message


async def test_a_tool_name_anthropic_refuses_falls_through(provider, fakes):
    err = await refused(provider, fakes, chat("hi", tools=(Tool("weather.get"),)))
    assert err.kind is ErrorKind.BAD_REQUEST and err.falls_through


@pytest.mark.parametrize(("model", "strict"), [(MODEL, True), (OLD_MODEL, False)])
async def test_strict_tools_are_closed_where_the_model_takes_them(provider, fakes, model, strict):
    tool = Tool("get_weather", "w", WEATHER.parameters, strict=True)
    await provider.complete(chat("hi", tools=(tool,), model=model))
    (wire,) = sent(fakes)["tools"]
    assert wire.get("strict", False) is strict
    assert ("additionalProperties" in wire["input_schema"]) is strict


# -- images -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_images_inline_and_by_url(provider, fakes, stream):
    turn = Message("user", [Text("What is this?"), Image(data=PNG, media_type="image/png"),
                            Image(data=JPEG), Image(url="https://example.com/cat.webp", detail="high")])
    resp = await answer(provider, chat(turn), stream)
    assert "(I saw 3 images.)" in resp.text
    assert sent(fakes)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}},  # sniffed
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}}]


async def test_an_image_anthropic_cannot_read_falls_through(provider, fakes):
    err = await refused(provider, fakes, chat(Message("user", [Image(data=BMP, media_type="image/bmp")])))
    assert err.kind is ErrorKind.BAD_REQUEST and err.falls_through and "image/bmp" in err.message


# -- structured output ------------------------------------------------------------------------------


def fits(text: str, schema: dict) -> object:
    value = json.loads(text)
    jsonschema.validate(value, schema)
    return value


@pytest.mark.parametrize("stream", [False, True])
async def test_native_structured_output_closes_every_object(provider, fakes, stream):
    resp = await answer(provider, chat("Name a city", output=OutputFormat("json_schema", CITY, "city")), stream)
    assert resp.output_mode == "native" and resp.finish_reason == "stop"
    assert fits(resp.text, CITY) == {"name": "example", "where": {"lat": 1.5}}
    schema = sent(fakes)["output_config"]["format"]["schema"]
    assert sent(fakes)["output_config"]["format"]["type"] == "json_schema"
    assert schema["additionalProperties"] is False and schema["properties"]["where"]["additionalProperties"] is False
    assert "tools" not in sent(fakes) and "tool_choice" not in sent(fakes)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "schema"), [
    (OLD_MODEL, CITY),  # the model has no native structured output
    (MODEL, {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}, "required": ["n"]}),
    (MODEL, {"type": "object", "properties": {"tags": {"type": "object"}}, "required": ["tags"]}),  # open
])
async def test_structured_output_by_a_forced_tool(provider, fakes, stream, model, schema):
    resp = await answer(provider, chat("Name a city", output=OutputFormat("json_schema", schema, "city"), model=model),
                        stream)
    assert (resp.output_mode, resp.finish_reason, resp.tool_calls) == ("tool", "stop", ())
    fits(resp.text, schema)
    body = sent(fakes)
    assert body["tools"] == [{"name": "city", "description": "Give the final answer by calling this tool: its "
                              "input is the answer.", "input_schema": schema}]
    assert body["tool_choice"] == {"type": "tool", "name": "city"} and "output_config" not in body


@pytest.mark.parametrize("stream", [False, True])
async def test_json_object_is_a_tool_taking_any_object(provider, fakes, stream):
    resp = await answer(provider, chat("hi", output=OutputFormat("json_object")), stream)
    assert resp.output_mode == "tool" and isinstance(json.loads(resp.text), dict)
    assert sent(fakes)["tools"][0]["input_schema"] == {"type": "object"}
    assert sent(fakes)["tools"][0]["name"] == "response"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_schema_that_is_not_an_object_is_wrapped_and_unwrapped(provider, fakes, stream):
    schema = {"type": "array", "items": {"type": "string"}}
    resp = await answer(provider, chat("list", output=OutputFormat("json_schema", schema, "names")), stream)
    assert fits(resp.text, schema) == ["example"] and resp.output_mode == "tool"
    assert sent(fakes)["tools"][0]["input_schema"] == {"type": "object", "properties": {"response": schema},
                                                       "required": ["response"]}


@pytest.mark.parametrize("stream", [False, True])
async def test_output_tool_beside_own_tools_lets_the_model_call_them_first(provider, fakes, stream):
    output = OutputFormat("json_schema", CITY, "city")
    first = chat("Use get_weather", tools=(WEATHER,), output=output, model=OLD_MODEL)
    called = await answer(provider, first, stream)
    assert sent(fakes)["tool_choice"] == {"type": "any"}
    assert [c.name for c in called.tool_calls] == ["get_weather"] and called.finish_reason == "tool_calls"
    results = Message("user", [ToolResult(called.tool_calls[0].id, "sunny")])
    final = await answer(provider, chat(*first.messages, called.message, results, tools=(WEATHER,), output=output,
                                        model=OLD_MODEL), stream)
    assert (final.output_mode, final.finish_reason, final.tool_calls) == ("tool", "stop", ())
    fits(final.text, CITY)


# -- thinking -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_is_kept_in_history_with_its_signature(provider, fakes, stream):
    first = chat("Please call get_weather", tools=(WEATHER,), max_tokens=1000,
                 sampling=Sampling(reasoning_effort="medium"))
    called = await answer(provider, first, stream)
    assert sent(fakes)["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent(fakes)["max_tokens"] == 1000 + 4096  # the budget comes on top of the answer's own
    (thought,) = called.reasoning
    assert thought.text.startswith("The user wrote: Please call get_weather") and thought.signature
    if not stream:
        assert called.usage.reasoning_tokens == 10
    history = (*first.messages, called.message, Message("user", [ToolResult(called.tool_calls[0].id, "sunny")]))
    final = await answer(provider, chat(*history, tools=(WEATHER,), sampling=Sampling(reasoning_effort="medium")),
                         stream)
    assert final.text.endswith("The tools said: sunny")
    assert sent(fakes)["messages"][1]["content"][0] == {"type": "thinking", "thinking": thought.text,
                                                        "signature": thought.signature}


async def test_without_its_thinking_the_tool_loop_is_refused_by_the_api(provider, fakes):
    first = chat("Please call get_weather", tools=(WEATHER,), sampling=Sampling(reasoning_effort="low"))
    called = await provider.complete(first)
    stripped = Message("assistant", called.tool_calls)
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat(*first.messages, stripped, Message("user", [ToolResult(
            called.tool_calls[0].id, "sunny")]), tools=(WEATHER,), sampling=Sampling(reasoning_effort="low")))
    assert info.value.kind is ErrorKind.BAD_REQUEST and "must start with a thinking block" in info.value.message


async def test_reasoning_of_another_provider_or_unsigned_is_not_sent(provider, fakes):
    turn = Message("assistant", [Reasoning("openai thoughts", provider="openai"), Reasoning("unsigned"),
                                 Reasoning(redacted="opaque", provider="anthropic"), Text("Hi!")])
    await provider.complete(chat("hello", turn, "again"))
    assert sent(fakes)["messages"][1]["content"] == [{"type": "redacted_thinking", "data": "opaque"},
                                                     {"type": "text", "text": "Hi!"}]


@pytest.mark.parametrize("kw", [
    {"temperature": 0.2}, {"sampling": Sampling(reasoning_effort="high", top_k=5)},
    {"sampling": Sampling(reasoning_effort="high", top_p=0.5)},
    {"tools": (WEATHER,), "tool_choice": ToolChoice("required")},
    {"output": OutputFormat("json_object")},
])
async def test_thinking_with_what_it_forbids_falls_through_rather_than_dropping_either(provider, fakes, kw):
    kw.setdefault("sampling", Sampling(reasoning_effort="high"))
    err = await refused(provider, fakes, chat("hi", model=OLD_MODEL, **kw))
    assert (err.kind, err.retryable, err.falls_through) == (ErrorKind.BAD_REQUEST, False, True)
    assert "thinking" in err.message


async def test_thinking_with_native_output_and_temperature_one_is_fine(provider, fakes):
    resp = await provider.complete(chat("hi", temperature=1.0, output=OutputFormat("json_schema", CITY),
                                        sampling=Sampling(reasoning_effort="low")))
    assert resp.output_mode == "native" and fits(resp.text, CITY) and resp.reasoning


# -- sampling, end user, takes ----------------------------------------------------------------------


async def test_sampling_and_end_user_on_the_wire(provider, fakes):
    await provider.complete(chat("hi", model=OLD_MODEL, temperature=0.3, end_user="user-42",
                                 sampling=Sampling(top_p=0.9, top_k=40)))
    body = sent(fakes)
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.3, 0.9, 40)
    assert body["metadata"] == {"user_id": "user-42"}


async def test_temperature_and_top_p_together_fall_through_on_the_newer_models(provider, fakes):
    err = await refused(provider, fakes, chat("hi", temperature=0.3, sampling=Sampling(top_p=0.9)))
    assert err.kind is ErrorKind.BAD_REQUEST and err.falls_through
    await provider.complete(chat("hi", sampling=Sampling(top_p=0.9)))  # one of them is fine
    assert sent(fakes)["top_p"] == 0.9


def test_takes_what_it_sends_and_nothing_else():
    assert AnthropicProvider.takes == {
        "tools", "tool_choice=required", "tool_choice=tool", "parallel_tool_calls=false", "images", "image_url",
        "response_format=json_object", "response_format=json_schema", "top_p", "top_k", "reasoning_effort"}
    assert not {"seed", "presence_penalty", "frequency_penalty", "logit_bias"} & AnthropicProvider.takes


async def test_a_scripted_call_comes_back_as_scripted(provider, fakes):
    fakes["anthropic"].script(faults.reply(tool_calls=[{"name": "get_time", "arguments": {"zone": "CET"}}]))
    resp = await provider.complete(chat("hi", tools=(WEATHER, TIME)))
    assert [(c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [("get_time", {"zone": "CET"})]


# -- replies the fake never sends ---------------------------------------------------------------------


@pytest.fixture
async def raw_server():
    state: dict = {}

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        ctype, body = state["reply"]
        return web.Response(body=body, headers={"content-type": ctype})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    p = AnthropicProvider(f"http://127.0.0.1:{port}", SecretStr(KEY), timeouts=Timeouts(connect=2, idle=2))
    yield p, state
    await p.aclose()
    await runner.cleanup()


def frames(events: list[dict]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


async def test_stream_of_redacted_thinking_thinking_and_calls_keeps_their_ordinals(raw_server):
    provider, state = raw_server
    start = {"type": "message_start", "message": {"id": "msg_r", "type": "message", "role": "assistant",
                                                  "model": MODEL, "content": [], "stop_reason": None,
                                                  "usage": {"input_tokens": 3, "output_tokens": 1}}}
    state["reply"] = ("text/event-stream", frames([
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "enc"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Let me look."}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3,
         "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}},
        {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": 'ty":"A"}'}},
        {"type": "content_block_stop", "index": 3},
        {"type": "content_block_start", "index": 4,
         "content_block": {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {"zone": "UTC"}}},
        {"type": "content_block_stop", "index": 4},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"}]))
    events = [e async for e in provider.stream(chat("hi", tools=(WEATHER, TIME)))]
    output = [e for e in events if not hasattr(e, "usage")]
    assert output == [
        ReasoningDelta(index=0, redacted="enc"), ReasoningDelta("hm", 1), ReasoningDelta(index=1, signature="sig"),
        TextDelta("Let me look."),
        ToolCallStart(0, "toolu_a", "get_weather"), ToolCallDelta(0, '{"ci'), ToolCallDelta(0, 'ty":"A"}'),
        ToolCallEnd(0),
        ToolCallStart(1, "toolu_b", "get_time"), ToolCallDelta(1, '{"zone": "UTC"}'), ToolCallEnd(1),
        Finished("tool_calls")]


async def test_complete_reads_every_block_kind(raw_server):
    provider, state = raw_server
    state["reply"] = ("application/json", json.dumps({
        "id": "msg_c", "type": "message", "role": "assistant", "model": MODEL, "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 9},
        "content": [{"type": "redacted_thinking", "data": "enc"},
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Å"}}]}).encode())
    resp = await provider.complete(chat("hi", tools=(WEATHER,)))
    assert resp.reasoning == (Reasoning(redacted="enc", provider="anthropic"),
                              Reasoning("hm", "sig", provider="anthropic"))
    assert resp.text == "Let me look." and resp.finish_reason == "tool_calls"
    assert resp.tool_calls == (ToolCall("toolu_a", "get_weather", '{"city": "Å"}'),)
    assert resp.message.parts[0] == resp.reasoning[0]  # history order: thinking, text, calls
