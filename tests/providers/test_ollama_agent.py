"""Agent-grade requests through the Ollama adapter against the fake Ollama (real HTTP on 127.0.0.1):
tools and a whole tool round trip, images, `format`, thinking, sampling options, what the adapter
takes and refuses, and stable tool-call ids.  Every behaviour is checked plain and streamed."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from llmrelay.content import Image, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from llmrelay.providers.base import Timeouts
from llmrelay.providers.ollama import OllamaProvider
from llmrelay.providers.ollama_wire import stable_call_id
from llmrelay.routing.fit import Fit
from llmrelay.testing import FakeServers, faults
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
    Link,
    Message,
    ProviderError,
    ReasoningDelta,
    Sampling,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageReport,
    needs_of,
)

TIMEOUTS = Timeouts(connect=2.0, idle=5.0)
WEATHER = Tool("get_weather", "The weather in a city.",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = Tool("get_time", "The time in a city.",
            {"type": "object", "properties": {"city": {"type": "string"}, "utc": {"type": "boolean"}},
             "required": ["city", "utc"]})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(40))).decode()
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["ollama"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def provider(fakes):
    p = OllamaProvider(fakes.url("ollama"), None, timeouts=TIMEOUTS)
    yield p
    await p.aclose()


@dataclass
class Answer:
    """What a plain call returned, or what a stream's events add up to."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    finish: str | None = None
    output_mode: str | None = None
    events: list = field(default_factory=list)


async def run(provider: OllamaProvider, request: ChatRequest) -> Answer:
    if not request.stream:
        r = await provider.complete(request)
        assert all(x.provider == "ollama" and x.signature is None for x in r.reasoning)
        return Answer(r.text, list(r.tool_calls), [x.text for x in r.reasoning], r.finish_reason, r.output_mode)
    answer, open_calls = Answer(), {}
    async for ev in provider.stream(request):
        answer.events.append(ev)
        if isinstance(ev, TextDelta):
            answer.text += ev.text
        elif isinstance(ev, ReasoningDelta):
            assert ev.index == 0 and ev.signature is None
            answer.reasoning[:1] = ["".join([*answer.reasoning[:1], ev.text])]
        elif isinstance(ev, ToolCallStart):
            assert ev.index == len(answer.calls) + len(open_calls)
            open_calls[ev.index] = [ev.id, ev.name, ""]
        elif isinstance(ev, ToolCallDelta):
            open_calls[ev.index][2] += ev.arguments
        elif isinstance(ev, ToolCallEnd):
            answer.calls.append(ToolCall(*open_calls.pop(ev.index)))
        elif isinstance(ev, Finished):
            answer.finish, answer.output_mode = ev.finish_reason, ev.output_mode
    assert not open_calls
    return answer


def chat(*turns: Message | str, stream: bool = False, model: str = "llama3.2", **kw) -> ChatRequest:
    messages = tuple(Message("user", t) if isinstance(t, str) else t for t in turns)
    return ChatRequest(model=model, messages=messages, stream=stream, **kw)


def sent(fakes) -> dict:
    return fakes["ollama"].requests[-1].body


BOTH = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


# -- tools -----------------------------------------------------------------------------------------


@BOTH
async def test_a_tool_round_trip_calls_then_answers_from_the_result(provider, fakes, stream):
    first = chat("Please use get_weather for me", stream=stream, tools=(WEATHER,))
    answer = await run(provider, first)
    assert sent(fakes)["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.", "parameters": dict(WEATHER.parameters)}}]
    assert (answer.text, answer.finish) == ("", "tool_calls")
    [call] = answer.calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "example"})
    assert call.id == stable_call_id("llama3.2", 1, 0, "get_weather", call.arguments)

    assistant = Message("assistant", answer.calls)
    second = chat(first.messages[0], assistant, Message("user", [ToolResult(call.id, "Sunny, 21 C")]),
                  stream=stream, tools=(WEATHER,))
    answer = await run(provider, second)
    assert sent(fakes)["messages"] == [
        {"role": "user", "content": "Please use get_weather for me"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": call.id, "function": {"name": "get_weather", "arguments": {"city": "example"}}}]},
        {"role": "tool", "content": "Sunny, 21 C", "tool_name": "get_weather", "tool_call_id": call.id},
    ]
    assert answer.finish == "stop" and not answer.calls
    assert answer.text.endswith("The tools said: Sunny, 21 C")


@BOTH
async def test_two_tools_named_are_two_calls_in_order(provider, stream):
    answer = await run(provider, chat("use get_weather and get_time", stream=stream, tools=(WEATHER, TIME)))
    assert [(c.name, json.loads(c.arguments)) for c in answer.calls] == [
        ("get_weather", {"city": "example"}), ("get_time", {"city": "example", "utc": True})]
    assert len({c.id for c in answer.calls}) == 2
    if stream:  # each call whole: start, its arguments in one piece, end; then usage and finish
        kinds = [type(e) for e in answer.events]
        assert kinds == [ToolCallStart, ToolCallDelta, ToolCallEnd] * 2 + [UsageReport, Finished]


async def test_a_plain_and_a_streamed_reading_of_one_answer_give_the_same_ids(provider):
    request = chat("use get_weather and get_time", tools=(WEATHER, TIME))
    plain = await run(provider, request)
    streamed = await run(provider, chat(*request.messages, stream=True, tools=(WEATHER, TIME)))
    assert plain.calls == streamed.calls


async def test_the_same_call_later_in_the_conversation_gets_another_id(provider):
    first = await run(provider, chat("use get_weather", tools=(WEATHER,)))
    later = await run(provider, chat("hi", Message("assistant", "hello"), "use get_weather", tools=(WEATHER,)))
    assert first.calls[0].arguments == later.calls[0].arguments
    assert first.calls[0].id != later.calls[0].id


@BOTH
async def test_an_id_the_server_gives_is_kept(provider, fakes, stream):
    fakes["ollama"].script(faults.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"},
                                                     "id": "call_x1y2z3w4"}]))
    answer = await run(provider, chat("weather?", stream=stream, tools=(WEATHER,)))
    assert answer.calls == [ToolCall("call_x1y2z3w4", "get_weather", '{"city":"Oslo"}')]


@BOTH
async def test_parallel_calls_off_is_not_sent_ollama_has_no_such_switch(provider, fakes, stream):
    answer = await run(provider, chat("use get_weather and get_time", stream=stream, tools=(WEATHER, TIME),
                                      parallel_tool_calls=False))
    assert set(sent(fakes)) == {"model", "messages", "stream", "tools"}
    assert len(answer.calls) == 2  # the fallback executor keeps the first (routing/fallback.py)


@BOTH
async def test_tool_choice_none_sends_no_tools_and_gets_text(provider, fakes, stream):
    answer = await run(provider, chat("use get_weather", stream=stream, tools=(WEATHER,),
                                      tool_choice=ToolChoice("none")))
    assert "tools" not in sent(fakes)
    assert answer.calls == [] and answer.text.startswith("Hello from fake ollama")


REFUSED = [
    (dict(sampling=Sampling(logit_bias={"50256": -100})), "logit_bias"),
    (dict(tools=(WEATHER,), tool_choice=ToolChoice("required"), output=OutputFormat("json_object")), "format"),
]


@pytest.mark.parametrize(("extra", "what"), REFUSED, ids=[r[1] for r in REFUSED])
@BOTH
async def test_what_ollama_cannot_honour_is_refused_before_sending(provider, fakes, stream, extra, what):
    with pytest.raises(ProviderError) as info:
        await run(provider, chat("use get_weather", stream=stream, **extra))
    err = info.value
    assert (err.kind, err.retryable, err.falls_through) == (ErrorKind.BAD_REQUEST, False, True)
    assert fakes["ollama"].requests == []


@pytest.mark.parametrize("arguments", ['"just a string"', "[1, 2]", "{not json"])
async def test_a_tool_call_whose_arguments_are_not_an_object_cannot_be_sent(provider, fakes, arguments):
    history = (Message("user", "go"), Message("assistant", [ToolCall("call_1", "get_weather", arguments)]),
               Message("user", [ToolResult("call_1", "ok")]))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat(*history, tools=(WEATHER,)))
    assert (info.value.kind, info.value.retryable, info.value.falls_through) == (ErrorKind.BAD_REQUEST, False, True)
    assert "not a JSON object" in info.value.message or "not JSON" in info.value.message
    assert fakes["ollama"].requests == []


async def test_a_model_without_tools_is_a_bad_request_that_falls_through(provider):
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat("use get_weather", model="gemma3", tools=(WEATHER,)))
    err = info.value
    assert err.message == "registry.ollama.ai/library/gemma3:latest does not support tools"
    assert (err.kind, err.status, err.retryable, err.falls_through) == (ErrorKind.BAD_REQUEST, 400, False, True)


async def test_a_result_names_its_tool_itself_or_by_the_call_it_answers(provider, fakes):
    history = (Message("user", "go"),
               Message("assistant", [Text("Checking."), ToolCall("a", "get_weather", '{"city":"Rome"}'),
                                     ToolCall("b", "get_time", "")]),
               Message("user", [ToolResult("a", "Rain"), ToolResult("b", "noon", name="clock"), Text("and?")]))
    await provider.complete(chat(*history, tools=(WEATHER, TIME)))
    assert sent(fakes)["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "a", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
            {"id": "b", "function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "content": "Rain", "tool_name": "get_weather", "tool_call_id": "a"},
        {"role": "tool", "content": "noon", "tool_name": "clock", "tool_call_id": "b"},
        {"role": "user", "content": "and?"},
    ]


# -- images ----------------------------------------------------------------------------------------


@BOTH
async def test_an_inline_image_goes_as_bare_base64_beside_the_text(provider, fakes, stream):
    turn = Message("user", [Text("What is this? "), Image(data=PNG, media_type="image/png"), Text("Be brief.")])
    answer = await run(provider, chat(turn, stream=stream))
    assert sent(fakes)["messages"] == [{"role": "user", "content": "What is this? Be brief.", "images": [PNG]}]
    assert answer.text.endswith("(I saw 1 image.)")


async def test_an_image_counts_in_the_input_tokens(provider):
    plain = await provider.complete(chat("look"))
    with_image = await provider.complete(chat(Message("user", [Text("look"), Image(data=PNG)])))
    assert with_image.usage.input_tokens - plain.usage.input_tokens == 100


async def test_an_image_given_by_url_cannot_be_sent(provider, fakes):
    turn = Message("user", [Text("What is this?"), Image(url="https://example.com/cat.png")])
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat(turn))
    assert (info.value.kind, info.value.falls_through) == (ErrorKind.BAD_REQUEST, True)
    assert "URL" in info.value.message
    assert fakes["ollama"].requests == []


# -- structured output -----------------------------------------------------------------------------


@BOTH
async def test_a_json_schema_is_sent_as_format_and_the_answer_fits_it(provider, fakes, stream):
    answer = await run(provider, chat("Who?", stream=stream, output=OutputFormat("json_schema", SCHEMA, "person")))
    assert sent(fakes)["format"] == SCHEMA
    assert json.loads(answer.text) == {"name": "example", "age": 1}
    assert answer.output_mode == "native"


@BOTH
async def test_json_mode_is_format_json(provider, fakes, stream):
    answer = await run(provider, chat("Say hi in JSON", stream=stream, output=OutputFormat("json_object")))
    assert sent(fakes)["format"] == "json"
    assert json.loads(answer.text) == {"answer": "Say hi in JSON"}
    assert answer.output_mode == "native"


async def test_without_an_output_format_nothing_says_native(provider, fakes):
    answer = await run(provider, chat("hi", stream=True))
    assert "format" not in sent(fakes) and answer.output_mode is None


# -- thinking --------------------------------------------------------------------------------------


@BOTH
async def test_reasoning_effort_turns_thinking_on_and_the_thinking_comes_back(provider, fakes, stream):
    answer = await run(provider, chat("why is the sky blue", stream=stream, model="qwen3",
                                      sampling=Sampling(reasoning_effort="high")))
    assert sent(fakes)["think"] is True
    assert answer.reasoning == ["Thinking: the user said 'why is the sky blue', so I answer that."]
    assert answer.text == "Hello from fake ollama (qwen3). You said: why is the sky blue"
    if stream:  # the thinking lines come first
        first_text = next(i for i, e in enumerate(answer.events) if isinstance(e, TextDelta))
        assert all(isinstance(e, ReasoningDelta) for e in answer.events[:first_text])


@pytest.mark.parametrize(("effort", "think"), [("low", "low"), ("medium", "medium"), ("high", "high"),
                                               ("minimal", "low"), ("none", False)])
async def test_gpt_oss_takes_the_level_itself(provider, fakes, effort, think):
    answer = await run(provider, chat("hi", model="gpt-oss:20b", sampling=Sampling(reasoning_effort=effort)))
    assert sent(fakes)["think"] == think
    assert bool(answer.reasoning) is (think is not False)


async def test_a_thinking_model_thinks_by_default_and_eval_count_includes_it(provider, fakes):
    thinking = await provider.complete(chat("hello world", model="qwen3"))
    quiet = await provider.complete(chat("hello world", model="qwen3", sampling=Sampling(reasoning_effort="none")))
    assert "think" not in fakes["ollama"].requests[0].body and fakes["ollama"].requests[1].body["think"] is False
    assert thinking.reasoning and not quiet.reasoning
    assert thinking.usage.output_tokens == quiet.usage.output_tokens + len(thinking.reasoning[0].text.split())


async def test_thinking_asked_of_a_model_without_it_is_a_bad_request_that_falls_through(provider):
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat("hi", sampling=Sampling(reasoning_effort="low")))
    err = info.value
    assert err.message == '"llama3.2" does not support thinking'
    assert (err.kind, err.falls_through, err.retryable) == (ErrorKind.BAD_REQUEST, True, False)


async def test_only_ollamas_own_thinking_goes_back_to_it(provider, fakes):
    history = (Message("user", "a"),
               Message("assistant", [Reasoning("mine", provider="ollama"),
                                     Reasoning("theirs", signature="sig", provider="anthropic"), Text("b")]),
               Message("user", "c"), Message("assistant", [Reasoning("x", provider="google"), Text("d")]),
               Message("assistant", "e"), Message("user", "f"))
    await provider.complete(chat(*history, model="qwen3"))
    assert sent(fakes)["messages"] == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "thinking": "mine"},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d\n\ne"}, {"role": "user", "content": "f"}]


# -- options and takes -----------------------------------------------------------------------------


async def test_sampling_settings_go_in_options(provider, fakes):
    sampling = Sampling(top_p=0.9, top_k=40, seed=7, presence_penalty=0.5, frequency_penalty=-0.25)
    await provider.complete(chat("hi", max_tokens=50, sampling=sampling))
    assert sent(fakes)["options"] == {"top_p": 0.9, "top_k": 40, "seed": 7, "presence_penalty": 0.5,
                                      "frequency_penalty": -0.25, "num_predict": 50}
    assert "think" not in sent(fakes) and "tools" not in sent(fakes)


def test_takes_what_the_adapter_can_send_and_nothing_more():
    assert OllamaProvider.takes == {
        "tools", "tool_choice=required", "tool_choice=tool", "images", "response_format=json_object",
        "response_format=json_schema",
        "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty", "reasoning_effort", "embeddings"}


@pytest.mark.parametrize(("kw", "need"), [
    (dict(sampling=Sampling(logit_bias={"1": 2.0})), "logit_bias"),
    (dict(messages=(Message("user", [Image(url="https://example.com/a.png")]),)), "image_url"),
])
def test_the_fallback_executor_skips_ollama_for_what_it_cannot_take(provider, kw, need):
    messages = kw.pop("messages", (Message("user", "hi"),))
    needs, images, _ = needs_of(messages, **kw)
    request = ChatRequest(model="llama3.2", messages=messages, needs=needs, images=images, **kw)
    unfit = Fit({"ollama": provider}, lambda p, m: None)(Link("ollama", "llama3.2"), request)
    assert unfit is not None and unfit.need == need
    takes = needs_of((Message("user", [Text("x"), Image(data=PNG)]),), (WEATHER,), ToolChoice("auto"),
                     output=OutputFormat("json_schema", SCHEMA),
                     sampling=Sampling(top_p=1, top_k=1, seed=1, presence_penalty=0, frequency_penalty=0,
                                       reasoning_effort="low"))[0]
    assert takes <= OllamaProvider.takes


# -- replies the fake never sends ------------------------------------------------------------------


@pytest.fixture
async def raw_server():
    servers = []

    async def start(body: bytes):
        async def handler(request):
            await request.read()
            return web.Response(body=body, content_type="application/json")
        app = web.Application()
        app.router.add_post("/api/chat", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return OllamaProvider(str(server.make_url("")).rstrip("/"), timeouts=TIMEOUTS)

    yield start
    for s in servers:
        await s.close()


@pytest.mark.parametrize("calls", [
    b'"get_weather"', b'[{"function": {"arguments": {}}}]', b'[{"name": "x"}]',
    b'[{"function": {"name": "x", "arguments": 5}}]'])
async def test_tool_calls_of_another_shape_are_a_server_error(raw_server, calls):
    provider = await raw_server(b'{"model":"m","message":{"role":"assistant","content":"","tool_calls":%s},'
                                b'"done":true}' % calls)
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(chat("hi"))
    finally:
        await provider.aclose()
    assert info.value.kind is ErrorKind.SERVER_ERROR and "unexpected tool_calls" in info.value.message


async def test_a_newer_servers_call_ids_and_a_proxys_json_text_arguments_are_read(raw_server):
    provider = await raw_server(
        b'{"model":"m","message":{"role":"assistant","content":"","tool_calls":['
        b'{"id":"call_ab12cd34","function":{"index":0,"name":"f","arguments":{"k":"\xc3\xa9"}}},'
        b'{"function":{"index":1,"name":"g","arguments":"{\\"n\\": 1}"}}]},"done":true,"done_reason":"stop"}')
    try:
        resp = await provider.complete(chat("hi"))
    finally:
        await provider.aclose()
    assert resp.tool_calls == (ToolCall("call_ab12cd34", "f", '{"k":"é"}'),
                               ToolCall(stable_call_id("llama3.2", 1, 1, "g", '{"n": 1}'), "g", '{"n": 1}'))
    assert resp.finish_reason == "tool_calls"
