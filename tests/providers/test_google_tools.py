"""The Gemini adapter's agent-grade requests against the fake Gemini (real HTTP on 127.0.0.1): tool
round trips plain and streamed, stable call ids, Gemini 3 thought signatures, images, structured
output, thinking, sampling on the wire, and requests refused before sending."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from llmrelay.content import Image, Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from llmrelay.providers.base import Timeouts
from llmrelay.providers.google import GoogleProvider
from llmrelay.providers.google_wire import DUMMY_SIGNATURE
from llmrelay.testing import FakeServers, faults
from llmrelay.testing.tools import IMAGE_TOKENS
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
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

MODEL = "gemini-2.5-flash"
GEMINI_3 = "gemini-3-pro-preview"
WEATHER = Tool("get_weather", "The weather in a city",
               {"type": "object", "properties": {"city": {"type": "string", "description": "a city"}},
                "required": ["city"], "additionalProperties": False})
CLOCK = Tool("get_time", "The time in a zone", {"type": "object", "properties": {
    "zone": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["zone"]})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(32)).decode()


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["google"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def provider(fakes):
    p = GoogleProvider(fakes.url("google"), SecretStr("AIzaSyTEST"), timeouts=Timeouts(connect=2, idle=5))
    yield p
    await p.aclose()


def req(*messages: Message | str, model: str = MODEL, **kw) -> ChatRequest:
    turns = tuple(Message("user", m) if isinstance(m, str) else m for m in messages)
    return ChatRequest(model=model, messages=turns, **kw)


def sent(fakes) -> dict:
    return fakes["google"].requests[-1].body


async def answer(provider, request: ChatRequest, streaming: bool):
    """(text, tool calls, reasoning, finish, output mode) read plain or rebuilt from the stream's events."""
    if not streaming:
        r = await provider.complete(request)
        return r.text, list(r.tool_calls), list(r.reasoning), r.finish_reason, r.output_mode
    events = [e async for e in provider.stream(request)]
    calls: dict[int, list] = {}
    for e in events:
        if isinstance(e, ToolCallStart):
            calls[e.index] = [e.id, e.name, "", e.signature]
        elif isinstance(e, ToolCallDelta):
            calls[e.index][2] += e.arguments
    for e in events:  # every call is opened, filled and closed, in that order
        if isinstance(e, ToolCallEnd):
            assert e.index in calls
    thoughts = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    end = events[-1]
    assert isinstance(end, Finished)
    return ("".join(e.text for e in events if isinstance(e, TextDelta)),
            [ToolCall(i, n, a, s) for i, n, a, s in calls.values()],
            [Reasoning(thoughts, provider="google")] if thoughts else [], end.finish_reason, end.output_mode)


def test_takes_what_the_adapter_sends_and_not_what_gemini_lacks():
    assert GoogleProvider.takes == {
        "tools", "tool_choice=required", "tool_choice=tool", "images", "image_url", "response_format=json_object",
        "response_format=json_schema", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty",
        "reasoning_effort", "embeddings"}
    assert "parallel_tool_calls=false" not in GoogleProvider.takes  # Gemini cannot turn parallel calls off
    needs, _, _ = needs_of((), (WEATHER,), ToolChoice("required"), sampling=Sampling(logit_bias={"1": 1.0}, seed=1))
    assert needs - GoogleProvider.takes == {"logit_bias"}


# -- tool round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_full_tool_round_trip(provider, fakes, streaming):
    question = Message("user", "What does get_weather say for Paris?")
    text, calls, _, finish, _ = await answer(provider, req(question, tools=(WEATHER, CLOCK)), streaming)
    assert (text, finish) == ("", "tool_calls")
    [call] = calls
    assert (call.name, json.loads(call.arguments), call.signature) == ("get_weather", {"city": "example"}, None)
    assert call.id.startswith("call_") and len(call.id) == 29
    wire = sent(fakes)
    assert wire["tools"][0]["functionDeclarations"][0] == {
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "description": "a city"}},
                       "required": ["city"]}}

    history = (question, Message("assistant", [call]), Message("user", [ToolResult(call.id, "sunny, 21 C")]))
    text, calls, _, finish, _ = await answer(provider, req(*history, tools=(WEATHER, CLOCK)), streaming)
    assert (calls, finish) == ([], "stop")
    assert text.endswith("The tools said: sunny, 21 C")
    contents = sent(fakes)["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"id": call.id, "name": "get_weather", "args": {"city": "example"}}}]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"id": call.id, "name": "get_weather", "response": {"result": "sunny, 21 C"}}}]}


@pytest.mark.parametrize("streaming", [False, True])
async def test_parallel_calls_each_get_a_distinct_stable_id_and_their_results_map_back_by_id(
        provider, fakes, streaming):
    question = Message("user", "use get_weather and get_time")
    _, calls, _, _, _ = await answer(provider, req(question, tools=(WEATHER, CLOCK)), streaming)
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].arguments) == {"zone": "UTC"}
    assert len({c.id for c in calls}) == 2
    results = Message("user", [ToolResult(calls[1].id, "noon"), ToolResult(calls[0].id, "rain", is_error=True)])
    text, _, _, _, _ = await answer(provider, req(question, Message("assistant", calls), results,
                                                  tools=(WEATHER, CLOCK)), streaming)
    assert text.endswith("The tools said: noon; rain")
    responses = [p["functionResponse"] for p in sent(fakes)["contents"][2]["parts"]]
    assert [(r["name"], r["response"]) for r in responses] == [("get_time", {"result": "noon"}),
                                                               ("get_weather", {"error": "rain"})]


@pytest.mark.parametrize(("choice", "names"), [
    (ToolChoice("required"), ["get_weather"]),
    (ToolChoice("tool", "get_time"), ["get_time"]),
    (ToolChoice("none"), []),
    (ToolChoice("auto"), []),
])
async def test_tool_choice_reaches_the_model(provider, fakes, choice, names):
    resp = await provider.complete(req("hello", tools=(WEATHER, CLOCK), tool_choice=choice))
    assert [c.name for c in resp.tool_calls] == names
    assert resp.finish_reason == ("tool_calls" if names else "stop")


async def test_a_result_naming_the_wrong_function_is_the_real_400_and_fatal(provider, fakes):
    history = (Message("user", "get_weather?"), Message("assistant", [ToolCall("c1", "get_weather", "{}")]),
               Message("user", [ToolResult("c1", "sunny", name="get_time")]))
    with pytest.raises(ProviderError) as info:
        await provider.complete(req(*history, tools=(WEATHER, CLOCK)))
    assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.status == 400
    assert "function response" in info.value.message and not info.value.falls_through


# -- Gemini 3 thought signatures -----------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_gemini_3_signs_the_first_call_and_gets_it_back(provider, fakes, streaming):
    question = Message("user", "use get_weather and get_time")
    _, calls, _, _, _ = await answer(provider, req(question, model=GEMINI_3, tools=(WEATHER, CLOCK)), streaming)
    assert calls[0].signature and calls[1].signature is None  # parallel calls: the first carries it
    results = Message("user", [ToolResult(c.id, "ok") for c in calls])
    await answer(provider, req(question, Message("assistant", calls), results, model=GEMINI_3,
                               tools=(WEATHER, CLOCK)), streaming)
    parts = sent(fakes)["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == calls[0].signature and "thoughtSignature" not in parts[1]


async def test_gemini_3_refuses_an_unsigned_call_and_the_adapter_signs_foreign_calls(provider, fakes):
    question = Message("user", "get_weather?")
    foreign = ToolCall("toolu_01", "get_weather", '{"city": "Oslo"}')  # made by another provider
    history = (question, Message("assistant", [foreign]), Message("user", [ToolResult("toolu_01", "snow")]))
    resp = await provider.complete(req(*history, model=GEMINI_3, tools=(WEATHER,)))
    assert resp.text.endswith("The tools said: snow")
    assert sent(fakes)["contents"][1]["parts"][0]["thoughtSignature"] == DUMMY_SIGNATURE

    unsigned = dict(sent(fakes))
    unsigned["contents"][1]["parts"][0].pop("thoughtSignature")
    async with provider.session.post(f"{provider.base_url}/v1beta/models/{GEMINI_3}:generateContent",
                                     json=unsigned, headers=provider.headers()) as raw:
        err = provider.error_from_response(raw.status, raw.headers, await raw.read(), GEMINI_3)
    assert err.kind is ErrorKind.BAD_REQUEST and err.status == 400
    assert err.message.startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "`default_api:get_weather` , position 2" in err.message


# -- images, structured output, thinking, sampling ----------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_images_inline_and_by_url(provider, fakes, streaming):
    turn = Message("user", [Text("What is in these?"), Image(data=PNG, media_type="image/png"),
                            Image(url="https://img.example/cat.jpg")])
    request = req(turn)
    assert request.needs == frozenset() and needs_of(request.messages)[0] == {"images", "image_url"}
    text, _, _, _, _ = await answer(provider, request, streaming)
    assert text.endswith("(I saw 2 images.)")
    assert sent(fakes)["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"fileUri": "https://img.example/cat.jpg", "mimeType": "image/jpeg"}}]
    usage = (await provider.complete(request)).usage
    assert usage.input_tokens == 4 + 2 * IMAGE_TOKENS


@pytest.mark.parametrize("streaming", [False, True])
async def test_structured_output_is_native_json_of_the_schema(provider, fakes, streaming):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": ["integer", "null"]},
                                               "unit": {"const": "C"}},
              "required": ["city", "temp", "unit"], "additionalProperties": False}
    text, _, _, finish, mode = await answer(provider, req("weather in Rome", output=OutputFormat(
        "json_schema", schema, "weather")), streaming)
    assert (json.loads(text), finish, mode) == ({"city": "example", "temp": 1, "unit": "C"}, "stop", "native")
    config = sent(fakes)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["properties"]["temp"] == {"type": "INTEGER", "nullable": True}

    text, _, _, _, mode = await answer(provider, req("weather in Rome", output=OutputFormat("json_object")),
                                       streaming)
    assert (json.loads(text), mode) == ({"answer": "weather in Rome"}, "native")
    assert "responseSchema" not in sent(fakes)["generationConfig"]


@pytest.mark.parametrize("streaming", [False, True])
async def test_reasoning_effort_asks_for_thoughts_and_they_come_back_as_reasoning(provider, fakes, streaming):
    text, _, reasoning, _, _ = await answer(provider, req("why?", sampling=Sampling(reasoning_effort="high")),
                                            streaming)
    assert text.startswith("Hello from fake google")
    assert reasoning == [Reasoning("**Weighing the question**\n\nThe user wants a short answer.", provider="google")]
    assert sent(fakes)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576, "includeThoughts": True}
    resp = await provider.complete(req("why?", sampling=Sampling(reasoning_effort="high")))
    thought = len(reasoning[0].text.split())  # the fake counts a word a token
    assert resp.usage.reasoning_tokens == thought and resp.usage.output_tokens == thought + len(resp.text.split())


async def test_thoughts_stream_before_the_text(provider):
    events = [e async for e in provider.stream(req("why?", sampling=Sampling(reasoning_effort="low")))]
    kinds = [type(e).__name__ for e in events if not isinstance(e, UsageReport)]
    assert kinds[0] == "ReasoningDelta" and kinds[1] == "TextDelta" and kinds[-1] == "Finished"


async def test_sampling_settings_are_on_the_wire_and_the_fake_takes_them(provider, fakes):
    resp = await provider.complete(req("hi", sampling=Sampling(top_p=0.5, top_k=3, seed=42, presence_penalty=0.1,
                                                               frequency_penalty=0.2), end_user="user-7"))
    assert resp.finish_reason == "stop"
    wire = sent(fakes)
    assert wire["generationConfig"] == {"topP": 0.5, "topK": 3, "seed": 42, "presencePenalty": 0.1,
                                        "frequencyPenalty": 0.2}
    assert "user-7" not in json.dumps(wire)  # Gemini has no end-user field


# -- refused before sending -----------------------------------------------------------------------------


@pytest.mark.parametrize(("request_", "text"), [
    (req("hi", tools=(Tool("lookup", "", {"type": "object", "properties": {"q": {"not": {}}}}),)),
     "tools[0] 'lookup': parameters.properties.q: Gemini cannot take the JSON Schema keyword 'not'"),
    (req("hi", output=OutputFormat("json_schema", {"$defs": {"N": {"type": "object", "properties": {
        "next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}, "tree")), "recursive"),
    (req("hi", tools=(WEATHER,), output=OutputFormat("json_object")), "cannot take tools and a JSON response"),
    (req(Message("user", [ToolResult("unknown", "x")])), "names no function"),
], ids=["not", "recursive-ref", "tools-with-json", "orphan-result"])
async def test_what_gemini_cannot_take_falls_through_without_a_call(provider, fakes, request_, text):
    for call in (provider.complete(request_), anext(provider.stream(request_))):
        with pytest.raises(ProviderError) as info:
            await call
        err = info.value
        assert err.kind is ErrorKind.BAD_REQUEST and text in err.message
        assert err.falls_through and not err.retryable and err.status is None
    assert fakes["google"].requests == []


async def test_scripted_calls_come_back_with_their_arguments(provider, fakes):
    fakes["google"].script(faults.reply(tool_calls=[{"name": "get_time", "arguments": {"zone": "CET"}}]))
    resp = await provider.complete(req("hi", tools=(WEATHER, CLOCK)))
    assert [(c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [("get_time", {"zone": "CET"})]
