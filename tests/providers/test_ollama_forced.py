"""A tool choice Ollama does not have (`required`, one named tool), served by constrained decoding: the
format is the schema of a call, the answer becomes the call (providers/ollama_forced.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llmrelay.content import Message, Tool, ToolChoice, ToolResult
from llmrelay.providers.ollama import OllamaProvider
from llmrelay.testing import FakeServers
from llmrelay.types import ChatRequest, ToolCallDelta, ToolCallStart

WEATHER = Tool("get_weather", "The weather in a city.",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
FINAL = Tool("final_result", "The answer.", {"type": "object", "properties": {"city": {"type": "string"},
             "temperature": {"type": "number"}}, "required": ["city", "temperature"]})


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["ollama"]) as f:
        yield f


@pytest.fixture
async def ollama(fakes):
    fakes["ollama"].reset()
    provider = OllamaProvider(fakes.env()["OLLAMA_BASE_URL"])
    yield provider
    await provider.aclose()


def ask(text: str, choice: ToolChoice) -> ChatRequest:
    return ChatRequest("llama3.1", (Message("user", text),), system="Be brief.", tools=(WEATHER, FINAL),
                       tool_choice=choice)


async def test_a_required_call_is_asked_for_by_format_and_read_back_as_a_call(ollama, fakes):
    first = await ollama.complete(ask("the weather in Paris? use get_weather", ToolChoice("required")))
    assert first.finish_reason == "tool_calls" and first.text == ""
    (call,) = first.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "example"})
    body = fakes["ollama"].requests[-1].body
    assert "tools" not in body
    assert [b["properties"]["name"]["enum"] for b in body["format"]["anyOf"]] == [["get_weather"], ["final_result"]]
    assert body["format"]["anyOf"][0]["properties"]["arguments"] == dict(WEATHER.parameters)
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.")
    assert "get_weather: The weather in a city." in system["content"]
    # the loop goes on: the call and its result travel as Ollama's own tool call and tool message
    history = (Message("user", "the weather in Paris? use get_weather"), first.message,
               Message("user", [ToolResult(call.id, "sunny")]))
    second = await ollama.complete(dataclasses.replace(ask("", ToolChoice("required")), messages=history))
    assert [c.name for c in second.tool_calls] == ["final_result"]
    sent = fakes["ollama"].requests[-1].body["messages"]
    assert sent[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "example"}}
    assert sent[3] == {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": call.id}


async def test_a_named_tool_is_the_only_branch_and_a_stream_yields_the_call_whole(ollama, fakes):
    events = [e async for e in ollama.stream(ask("anything", ToolChoice("tool", "final_result")))]
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["final_result"]
    args = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert json.loads(args) == {"city": "example", "temperature": 1.5}
    assert [b["properties"]["name"]["enum"] for b in fakes["ollama"].requests[-1].body["format"]["anyOf"]] == [
        ["final_result"]]


async def test_an_answer_that_is_not_a_call_is_a_server_error(ollama, fakes):
    from llmrelay.testing import faults
    from llmrelay.types import ProviderError

    fakes["ollama"].script(faults.reply(text='{"nonsense": true}'))
    with pytest.raises(ProviderError) as err:
        await ollama.complete(ask("x", ToolChoice("required")))
    assert err.value.kind == "server_error" and "not a call" in err.value.message
