"""The Python API (`Relay.chat` / `Relay.stream`) for agent-grade requests, against the fakes over
real HTTP: a message of parts (an image), history of Messages or dicts with parts, a tool loop
through `outcome.history`, tools and tool choice as keywords, and bad parts refused by name."""

from __future__ import annotations

import json

import pytest

from llmrelay.config import load_settings
from llmrelay.content import Image, Message, OutputFormat, Text, Tool, ToolCall, ToolResult
from llmrelay.relay import Relay
from llmrelay.testing import FakeServers, faults
from llmrelay.types import InvalidRequest, Outcome, Sampling, TextDelta, ToolCallDelta, ToolCallStart

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
WEATHER = Tool("get_weather", "The weather in a city", {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]})


@pytest.fixture(scope="module")
def all_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture
async def relay(all_fakes, monkeypatch):
    all_fakes.reset()
    for var, value in all_fakes.env().items():
        monkeypatch.setenv(var, value)
    r = Relay(load_settings(env_file=None, max_retries=0), ledger=None)
    yield r
    await r.aclose()
    all_fakes.reset()


async def test_a_message_of_parts_carries_an_image(relay, all_fakes):
    outcome = await relay.chat("general-agent", [Text("What is this?"), Image(data=PNG, media_type="image/png")])
    assert "I saw 1 image" in outcome.text
    again = await relay.chat("general-agent", [{"type": "text", "text": "And this?"},
                                               {"type": "image", "url": "data:image/png;base64," + PNG}])
    assert "I saw 1 image" in again.text
    assert all_fakes["anthropic"].requests[-1].body["messages"][0]["content"][1]["source"]["data"] == PNG


async def test_a_tool_loop_through_outcome_history(relay, all_fakes):
    first = await relay.chat("general-agent", "Use get_weather for Oslo", tools=[WEATHER])
    [call] = first.response.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "example"}
    second = await relay.chat("general-agent", [ToolResult(call.id, "-3 and snowing")], first.history,
                              tools=[WEATHER])
    assert "The tools said: -3 and snowing" in second.text
    assert [m.role for m in second.turns] == ["user", "assistant", "user"]


async def test_history_dicts_may_hold_parts_and_json_parts(relay, all_fakes):
    call = ToolCall("call_7", "get_weather", '{"city": "Rome"}')
    history = [{"role": "system", "content": "Answer in one line."},
               {"role": "user", "content": [{"type": "text", "text": "Rome?"}]},
               {"role": "assistant", "content": [call]}]
    outcome = await relay.chat("general-agent", [{"type": "toolResult", "callId": "call_7", "content": "21"}],
                               history, tools=[WEATHER])
    assert "The tools said: 21" in outcome.text
    sent = all_fakes["anthropic"].requests[-1].body
    assert "Answer in one line." in json.dumps(sent["system"])
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][1]["content"][0]["id"] == "call_7"


async def test_stream_yields_tool_call_events_then_the_outcome(relay, all_fakes):
    all_fakes["openai"].script(faults.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lima"}}]))
    events = [e async for e in relay.stream("code-review-agent", "Lima?", tools=[WEATHER], tool_choice="get_weather")]
    assert isinstance(events[-1], Outcome) and events[-1].error is None
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    pieces = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert [s.name for s in starts] == ["get_weather"] and json.loads(pieces) == {"city": "Lima"}
    assert not any(isinstance(e, TextDelta) for e in events)
    assert all_fakes["openai"].requests[-1].body["tool_choice"] == {"type": "function",
                                                                    "function": {"name": "get_weather"}}


async def test_output_and_sampling_keywords(relay, all_fakes):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    outcome = await relay.chat("code-review-agent", "Status?", output=OutputFormat("json_schema", schema, "status"),
                               sampling=Sampling(top_p=0.5, seed=3))
    assert json.loads(outcome.text) == {"ok": True}
    sent = all_fakes["openai"].requests[-1].body
    assert (sent["top_p"], sent["seed"], sent["response_format"]["type"]) == (0.5, 3, "json_schema")


@pytest.mark.parametrize(("message", "history", "field", "says"), [
    ([], (), "message", "at least one part"),
    ([Text("  ")], (), "message", "some text"),
    ([ToolCall("c", "f")], (), "message", "not ToolCall"),
    ([{"type": "image", "url": "ftp://x/y.png"}], (), "message", "http(s)"),
    ("Hi", [{"role": "assistant", "content": [Image(url="https://x/y.png")]}], "conversationHistory", "not Image"),
    ("Hi", [{"role": "robot", "content": "x"}], "conversationHistory", "role"),
    ("Hi", [{"role": "user", "content": 7}], "conversationHistory", "a string or a list of parts"),
])
async def test_bad_parts_are_refused_naming_the_field(relay, message, history, field, says):
    with pytest.raises(InvalidRequest) as err:
        await relay.chat("general-agent", message, history)
    assert err.value.field == field and says in str(err.value)


async def test_messages_with_any_parts_are_history(relay, all_fakes):
    history = [Message("user", [Text("Look:"), Image(data=PNG, media_type="image/png")]),
               Message("assistant", "A dot.")]
    outcome = await relay.chat("general-agent", "Bigger?", history)
    assert "I saw 1 image" in outcome.text
