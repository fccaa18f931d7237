"""The official `anthropic` SDK against the fake Anthropic server doing agent-grade requests (tool calls,
thinking, images, structured output), plain and streaming: if the SDK accepts what the fake sends and
what it accumulates is accepted back, the fake speaks the real format.  Then the requests the real API
refuses, refused the same way."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import anthropic
import pytest
from pydantic import BaseModel

from llmrelay.testing import FakeServers
from llmrelay.testing.anthropic_checks import sign

MODEL = "claude-haiku-4-5"
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = [{"role": "user", "content": "Please call get_weather for Oslo"}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 24).decode()


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["anthropic"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
def client(fakes):
    with anthropic.Anthropic(api_key="sk-ant-api03-sdk-test", base_url=fakes.url("anthropic"), max_retries=0) as c:
        yield c


def result_turn(message, content: str = "sunny, 21 C") -> dict:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id, "content": content}
                                        for b in message.content if b.type == "tool_use"]}


# -- answers ---------------------------------------------------------------------------------------------


def test_tool_call_round_trip(client, fakes):
    msg = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER], messages=ASK)
    assert msg.stop_reason == "tool_use"
    (use,) = msg.content
    assert isinstance(use, anthropic.types.ToolUseBlock)
    assert use.id.startswith("toolu_") and use.name == "get_weather" and use.input == {"city": "example"}
    final = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER],
                                   messages=[*ASK, {"role": "assistant", "content": msg.content}, result_turn(msg)])
    assert final.stop_reason == "end_turn"
    assert final.content[0].text.endswith("The tools said: sunny, 21 C")
    assert fakes["anthropic"].requests[-1].body["messages"][1]["content"][0]["type"] == "tool_use"


def test_streamed_tool_call_accumulates_to_the_same_message(client):
    with client.messages.stream(model=MODEL, max_tokens=200, tools=[WEATHER], messages=ASK) as stream:
        events = list(stream)
        final = stream.get_final_message()
    pieces = [e.partial_json for e in events if e.type == "input_json"]
    assert len(pieces) in (2, 3) and json.loads("".join(pieces)) == {"city": "example"}
    assert not [e for e in events if e.type == "text"]  # no empty text block before the call
    (use,) = final.content
    assert use.type == "tool_use" and use.input == {"city": "example"} and final.stop_reason == "tool_use"
    follow = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER],
                                    messages=[*ASK, {"role": "assistant", "content": final.content},
                                              result_turn(final)])
    assert follow.stop_reason == "end_turn"


def test_parallel_calls_and_the_choices_that_shape_them(client):
    both = [{"role": "user", "content": "use get_weather and get_time"}]
    time = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    msg = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER, time], messages=both)
    assert [b.name for b in msg.content] == ["get_weather", "get_time"]
    one = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER, time], messages=both,
                                 tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [b.name for b in one.content] == ["get_weather"]
    forced = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER, time], messages=both,
                                    tool_choice={"type": "tool", "name": "get_time"})
    assert [b.name for b in forced.content] == ["get_time"]
    none = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER, time], messages=both,
                                  tool_choice={"type": "none"})
    assert [b.type for b in none.content] == ["text"] and none.stop_reason == "end_turn"


def test_streamed_thinking_is_signed_and_accepted_back(client):
    with client.messages.stream(model=MODEL, max_tokens=2048, tools=[WEATHER], messages=ASK,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    thinking, use = final.content
    assert thinking.type == "thinking" and thinking.signature == sign(thinking.thinking)
    assert use.type == "tool_use"
    assert final.usage.output_tokens_details is not None and final.usage.output_tokens_details.thinking_tokens > 0
    follow = client.messages.create(model=MODEL, max_tokens=2048, tools=[WEATHER],
                                    thinking={"type": "enabled", "budget_tokens": 1024},
                                    messages=[*ASK, {"role": "assistant", "content": final.content},
                                              result_turn(final)])
    assert follow.content[0].type == "thinking" and follow.content[1].text.endswith("sunny, 21 C")


def test_images_inline_and_by_url(client):
    msg = client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {"type": "text", "text": "What are these?"}]}])
    assert "(I saw 2 images.)" in msg.content[0].text


class City(BaseModel):
    name: str
    population: int


def test_native_structured_output_parses_into_the_model(client, fakes):
    msg = client.messages.parse(model=MODEL, max_tokens=200, output_format=City,
                                messages=[{"role": "user", "content": "A city, please"}])
    assert msg.parsed_output == City(name="example", population=1)
    schema = fakes["anthropic"].requests[-1].body["output_config"]["format"]["schema"]
    assert schema["additionalProperties"] is False  # the SDK closes the object, as the API demands


# -- requests the real API refuses -------------------------------------------------------------------------


def post(fakes, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(fakes.url("anthropic") + "/v1/messages", method="POST",
                                 data=json.dumps({"model": MODEL, "max_tokens": 2048, **body}).encode(),
                                 headers={"content-type": "application/json", "x-api-key": "k",
                                          "anthropic-version": "2023-06-01"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
CALLED = [*ASK, {"role": "assistant", "content": [USE]}]
THINK = {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize(("body", "message"), [
    ({"tools": [{**WEATHER, "name": "get.weather"}], "messages": ASK},
     "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ({"tools": [{**WEATHER, "input_schema": {"type": "array"}}], "messages": ASK},
     "tools.0.custom.input_schema.type: Input should be 'object'"),
    ({"tools": [WEATHER], "messages": [*CALLED, {"role": "user", "content": "and?"}]},
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1."),
    ({"tools": [WEATHER], "messages": CALLED},
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1."),
    ({"tools": [WEATHER], "messages": [*ASK, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": [
        RESULT]}]}, "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1."),
    ({"tools": [WEATHER], "messages": [*CALLED, {"role": "user", "content": [{"type": "text", "text": "x"},
                                                                            RESULT]}]},
     "`tool_result` blocks must come first"),
    ({"messages": [*CALLED, {"role": "user", "content": [RESULT]}]},
     "Requests which include `tool_use` or `tool_result` blocks must define tools."),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/bmp", "data": PNG}}]}]}, "base64.media_type: Input should be"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "not*base64"}}]}]}, "invalid base64 data"),
    ({"messages": [*ASK, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"},
                                                           {"type": "text", "text": "Hi"}]}, *ASK]},
     "messages.1.content.0.thinking.signature: Field required"),
    ({"messages": [*ASK, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "x"},
                                                           {"type": "text", "text": "Hi"}]}, *ASK]},
     "messages.1.content.0: Invalid `signature` in `thinking` block"),
    ({"messages": ASK, "thinking": THINK, "tools": [WEATHER], "tool_choice": {"type": "any"}},
     "Thinking may not be enabled when tool_choice forces tool use."),
    ({"messages": ASK, "thinking": THINK, "temperature": 0.5},
     "`temperature` may only be set to 1 when thinking is enabled."),
    ({"messages": ASK, "thinking": {"type": "enabled", "budget_tokens": 4096}},
     "`max_tokens` must be greater than `thinking.budget_tokens`."),
    ({"messages": [*CALLED, {"role": "user", "content": [RESULT]}], "tools": [WEATHER], "thinking": THINK},
     "When `thinking` is enabled, a final `assistant` message must start with a thinking block"),
    ({"messages": ASK, "temperature": 0.5, "top_p": 0.9},
     "`temperature` and `top_p` cannot both be specified for this model. Please use only one."),
    ({"messages": ASK, "output_config": {"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}}}}},
     "output_config.format.schema: For 'object' type, 'additionalProperties' must be explicitly set to false"),
    ({"messages": [*ASK, {"role": "assistant", "content": [{**USE, "id": "call.1"}]}]},
     "messages.1.content.0.tool_use.id: String should match pattern"),
])
def test_what_the_real_api_refuses_is_refused(fakes, body, message):
    status, payload = post(fakes, body)
    assert status == 400 and payload["error"]["type"] == "invalid_request_error"
    assert message in payload["error"]["message"]


def test_the_same_conversations_done_right_are_accepted(fakes):
    thought = "hm"
    good = [*ASK, {"role": "assistant", "content": [{"type": "thinking", "thinking": thought,
                                                    "signature": sign(thought)}, USE]},
            {"role": "user", "content": [RESULT, {"type": "text", "text": "go on"}]}]
    status, payload = post(fakes, {"messages": good, "tools": [WEATHER], "thinking": THINK, "top_p": 0.97})
    assert status == 200 and [b["type"] for b in payload["content"]] == ["thinking", "text"]
    assert payload["usage"]["output_tokens_details"]["thinking_tokens"] > 0
