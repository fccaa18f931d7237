"""The official `ollama` SDK against the fake Ollama for agent-grade requests: tool calls (plain and
streamed, then the result sent back), images, structured output and thinking.  If the SDK rejects what
the fake sends, the fake is wrong.  Raw HTTP pins down what the fake rejects, as the real server does."""

from __future__ import annotations

import base64
import json
import re

import httpx
import ollama
import openai
import pytest
from pydantic import BaseModel

from llmrelay.testing import FakeServers, faults

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["ollama"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
def client(fakes):
    c = ollama.Client(host=fakes.url("ollama"))
    yield c
    c.close()


def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
      city: The city's name
    """
    return f"Sunny in {city}"


def sent(fakes) -> dict:
    return fakes["ollama"].requests[-1].body


# -- tools -----------------------------------------------------------------------------------------


def test_a_tool_call_and_its_result_through_the_sdk(client, fakes):
    question = {"role": "user", "content": "What is it like outside? Use get_weather."}
    resp = client.chat(model="llama3.2", messages=[question], tools=[get_weather])
    tool = sent(fakes)["tools"][0]
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["city"]
    assert tool["function"]["parameters"]["properties"]["city"]["description"] == "The city's name"
    assert (resp.done_reason, resp.message.content) == ("stop", "")
    [call] = resp.message.tool_calls
    assert (call.function.name, dict(call.function.arguments)) == ("get_weather", {"city": "example"})
    assert "id" not in json.dumps(resp.model_dump(exclude_none=True)["message"]["tool_calls"])

    result = get_weather(**call.function.arguments)
    history = [question, resp.message, {"role": "tool", "content": result, "tool_name": call.function.name}]
    final = client.chat(model="llama3.2", messages=history, tools=[get_weather])
    assert sent(fakes)["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "example"}
    assert final.message.tool_calls is None
    assert final.message.content.endswith("The tools said: Sunny in example")


def test_a_streamed_tool_call_comes_whole_in_one_line_before_the_done_line(client):
    parts = list(client.chat(model="llama3.2", messages=[{"role": "user", "content": "get_weather now"}],
                             tools=[get_weather], stream=True))
    with_calls = [p for p in parts if p.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done and parts[-1].done
    assert [(c.function.name, c.function.arguments) for c in with_calls[0].message.tool_calls] == [
        ("get_weather", {"city": "example"})]
    assert (parts[-1].done_reason, parts[-1].eval_count) == ("stop", 2)


def test_a_scripted_call_with_an_id_carries_it_as_newer_servers_do(client, fakes):
    fakes["ollama"].script(faults.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lima"},
                                                     "id": "call_k3j4h5g6"}]))
    raw = httpx.post(fakes.url("ollama") + "/api/chat", timeout=10, json={
        "model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}).json()
    assert raw["message"]["tool_calls"] == [
        {"id": "call_k3j4h5g6", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Lima"}}}]


# -- images, format, thinking ----------------------------------------------------------------------


def test_an_image_from_the_sdk_arrives_as_base64(client, fakes):
    resp = client.chat(model="llava", messages=[{"role": "user", "content": "What is this?", "images": [PNG]}])
    assert sent(fakes)["messages"][0]["images"] == [base64.b64encode(PNG).decode()]
    assert resp.message.content.endswith("(I saw 1 image.)")
    assert resp.prompt_eval_count == 3 + 100


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


def test_a_pydantic_schema_as_format_gets_an_answer_that_validates(client, fakes):
    resp = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Who?"}],
                       format=Person.model_json_schema())
    assert sent(fakes)["format"] == Person.model_json_schema()
    assert Person.model_validate_json(resp.message.content) == Person(name="example", age=1, tags=["example"])
    resp = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Who?"}], format="json")
    assert json.loads(resp.message.content) == {"answer": "Who?"}


def test_thinking_plain_and_streamed(client):
    resp = client.chat(model="qwen3", messages=[{"role": "user", "content": "why"}], think=True)
    assert resp.message.thinking == "Thinking: the user said 'why', so I answer that."
    assert resp.message.content == "Hello from fake ollama (qwen3). You said: why"
    parts = list(client.chat(model="gpt-oss:20b", messages=[{"role": "user", "content": "why"}], think="low",
                             stream=True))
    thinking = [p.message.thinking for p in parts if p.message.thinking]
    assert "".join(thinking) == "Thinking (low effort): the user said 'why', so I answer that."
    first_text = next(i for i, p in enumerate(parts) if p.message.content)
    assert all(p.message.thinking for p in parts[:first_text])
    assert client.chat(model="qwen3", messages=[{"role": "user", "content": "why"}], think=False).message.thinking \
        is None


@pytest.mark.parametrize(("model", "think", "message"), [
    ("llama3.2", True, '"llama3.2" does not support thinking'),
    ("qwen3", "high", 'think value "high" is not supported for this model'),
])
def test_thinking_a_model_cannot_do_is_a_400(client, model, think, message):
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model=model, messages=[{"role": "user", "content": "why"}], think=think)
    assert (info.value.status_code, info.value.error) == (400, message)


def test_tools_for_a_model_without_them_are_a_400(client):
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="gemma3:4b", messages=[{"role": "user", "content": "hi"}], tools=[get_weather])
    assert (info.value.status_code, info.value.error) == (
        400, "registry.ollama.ai/library/gemma3:4b does not support tools")


# -- what the fake rejects (raw HTTP) --------------------------------------------------------------


def post(fakes, **body) -> httpx.Response:
    return httpx.post(fakes.url("ollama") + "/api/chat", timeout=10,
                      json={"model": "llama3.2", "stream": False, **body})


@pytest.mark.parametrize(("messages", "error"), [
    ([{"role": "user", "content": "x", "images": ["data:image/png;base64,iVBORw0KGgo="]}],
     "illegal base64 data at input byte 4"),
    ([{"role": "user", "content": "x", "images": ["iVBORw0KGgo"]}], "illegal base64 data at input byte 8"),
    ([{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]}],
     "json: cannot unmarshal into Go struct field ToolCallFunction.messages.tool_calls.function.arguments "
     "of type api.ToolCallFunctionArguments"),
    ([{"role": "function", "content": "x"}],
     "invalid role \"function\": a message's role is system, user, assistant or tool"),
])
def test_bodies_the_real_server_rejects_are_400(fakes, messages, error):
    resp = post(fakes, messages=messages)
    assert (resp.status_code, resp.json()) == (400, {"error": error})


def test_tool_messages_and_uppercase_roles_are_accepted(fakes):
    messages = [{"role": "USER", "content": "use f"},
                {"role": "Assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
                {"role": "tool", "content": "42", "tool_name": "f"}]
    resp = post(fakes, messages=messages, tools=[{"type": "function", "function": {"name": "f"}}])
    assert resp.status_code == 200
    assert resp.json()["message"]["content"].endswith("The tools said: 42")


@pytest.mark.parametrize("think", ["max", 1])
def test_a_think_that_is_neither_a_boolean_nor_a_level_is_400(fakes, think):
    resp = post(fakes, model="gpt-oss", think=think, messages=[{"role": "user", "content": "x"}])
    assert resp.status_code == 400 and "think" in resp.json()["error"]


def test_an_invalid_format_fails_when_generation_starts(fakes):
    error = 'invalid format: "yaml"; expected "json" or a valid JSON Schema object'
    resp = post(fakes, format="yaml", messages=[{"role": "user", "content": "x"}])
    assert (resp.status_code, resp.json()) == (500, {"error": error})
    resp = post(fakes, format="yaml", stream=True, messages=[{"role": "user", "content": "x"}])
    assert resp.status_code == 200 and resp.text.splitlines() == [json.dumps({"error": error}, separators=(",", ":"))]


# -- the OpenAI-compatible /v1 with the openai SDK -------------------------------------------------

WEATHER_V1 = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def oai(fakes):
    c = openai.OpenAI(base_url=fakes.url("ollama") + "/v1", api_key="ollama", max_retries=0)
    yield c
    c.close()


def test_v1_tool_calls_have_ollamas_ids_and_json_text_arguments(oai):
    resp = oai.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "get_weather?"}],
                                       tools=[WEATHER_V1])
    [call] = resp.choices[0].message.tool_calls
    assert resp.choices[0].finish_reason == "tool_calls"
    assert re.fullmatch(r"call_[a-z0-9]{8}", call.id)
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "example"})
    chunks = list(oai.chat.completions.create(model="llama3.2", stream=True, tools=[WEATHER_V1],
                                              messages=[{"role": "user", "content": "get_weather?"}]))
    [streamed] = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert streamed.choices[0].delta.tool_calls[0].function.arguments == '{"city": "example"}'


def test_v1_reads_no_tool_choice_nor_openais_limits(oai):
    resp = oai.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hello"}],
                                       tools=[WEATHER_V1], tool_choice="required", extra_body={"top_k": 5})
    assert resp.choices[0].message.tool_calls is None and resp.choices[0].finish_reason == "stop"
