"""The fake OpenAI refuses what the real API refuses, with its 400 (message, `param`, `code`), and the
fake OpenRouter what OpenRouter refuses, in its own error body; both answer tool calls and reasoning
in their wire shapes.  Raw HTTP: no adapter in between to hide a mistake."""

from __future__ import annotations

import json

import aiohttp
import pytest

from llmrelay.testing import FakeServers

KEYS = {"openai": "sk-fake-openai-key", "openrouter": "sk-or-v1-fake-openrouter-key"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(list(KEYS)) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


async def post(fakes, name: str, body: dict, raw: bool = False) -> tuple[int, dict | str]:
    async with aiohttp.ClientSession() as s, s.post(fakes.url(name) + "/chat/completions", json=body, headers={
            "authorization": f"Bearer {KEYS[name]}"}) as resp:
        return resp.status, (await resp.text() if raw else await resp.json())


def user(text: str = "hi") -> dict:
    return {"role": "user", "content": text}


REJECTED = [
    ({"model": "gpt-4o", "messages": [user()], "top_k": 3},
     ("Unrecognized request argument supplied: top_k", None, None)),
    ({"model": "gpt-4o", "messages": [user()], "reasoning_effort": "low"},
     ("Unrecognized request argument supplied: reasoning_effort", None, None)),
    ({"model": "o3-mini", "messages": [user()], "temperature": 0.2},
     ("Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is "
      "supported.", "temperature", "unsupported_value")),
    ({"model": "o3-mini", "messages": [user()], "stop": ["x"]},
     ("Unsupported parameter: 'stop' is not supported with this model.", "stop", "unsupported_parameter")),
    ({"model": "o3-mini", "messages": [user()], "max_tokens": 5},
     ("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      "max_tokens", "unsupported_parameter")),
    ({"model": "gpt-4o", "messages": [user()], "tools": [{"type": "function", "function": {"name": "a.b"}}]},
     ("Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern "
      "'^[a-zA-Z0-9_-]+$'.", "tools[0].function.name", "invalid_value")),
    ({"model": "gpt-4o", "messages": [user()], "tools": [{"type": "function", "function": {"name": "x" * 65}}]},
     ("Invalid 'tools[0].function.name': string too long. Expected a string with maximum length 64, but got a string "
      "with length 65 instead.", "tools[0].function.name", "string_above_max_length")),
    ({"model": "gpt-4o", "messages": [user()], "tool_choice": "required"},
     ("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice",
      None)),
    ({"model": "gpt-4o", "messages": [user()], "response_format": {"type": "json_schema",
                                                                    "json_schema": {"schema": {}}}},
     ("Missing required parameter: 'response_format.json_schema.name'.", "response_format.json_schema.name",
      "missing_required_parameter")),
    ({"model": "gpt-4o", "messages": [user()], "response_format": {"type": "json_object"}},
     ("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
      "messages", None)),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     ("Missing required parameter: 'messages[0].content[0].image_url.url'.", "messages[0].content[0].image_url.url",
      "missing_required_parameter")),
    ({"model": "gpt-4o", "messages": [user(), {"role": "tool", "tool_call_id": "call_1", "content": "1"}]},
     ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
      "messages.[1].role", None)),
    ({"model": "gpt-4o", "messages": [user(), {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                      {"role": "tool", "tool_call_id": "call_2", "content": "1"}]},
     ("Invalid parameter: 'tool_call_id' of 'call_2' not found in 'tool_calls' of previous message.",
      "messages.[2].tool_call_id", None)),
    ({"model": "gpt-4o", "messages": [user(), {"role": "assistant", "content": None, "tool_calls": [
        CALL, {**CALL, "id": "call_2"}]}, {"role": "tool", "tool_call_id": "call_1", "content": "1"}, user("and?")]},
     ("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
      "The following tool_call_ids did not have response messages: call_2", "messages.[1].role", None)),
    ({"model": "gpt-4o", "messages": [user(), {"role": "assistant", "tool_calls": [{**CALL, "id": "c" * 41}]},
                                      {"role": "tool", "tool_call_id": "c" * 41, "content": "1"}]},
     ("Invalid 'messages[1].tool_calls[0].id': string too long. Expected a string with maximum length 40, but got a "
      "string with length 41 instead.", "messages[1].tool_calls[0].id", "string_above_max_length")),
]


@pytest.mark.parametrize(("body", "expected"), REJECTED)
async def test_the_fake_openai_refuses_what_openai_refuses(fakes, body, expected):
    status, answer = await post(fakes, "openai", body)
    assert status == 400
    assert answer == {"error": {"message": expected[0], "type": "invalid_request_error", "param": expected[1],
                                "code": expected[2]}}


async def test_the_fake_openrouter_takes_its_extensions_and_refuses_a_broken_tool_loop_in_its_own_body(fakes):
    status, _ = await post(fakes, "openrouter", {"model": "openai/gpt-4o", "messages": [user()], "top_k": 3,
                                                  "provider": {"sort": "price"}})
    assert status == 200
    status, answer = await post(fakes, "openrouter", {"model": "meta-llama/llama-3.1-70b-instruct", "messages": [
        user(), {"role": "tool", "tool_call_id": "call_1", "content": "1"}]})
    assert status == 400 and answer["error"]["code"] == 400
    assert answer["error"]["metadata"]["error_type"] == "invalid_request"
    assert "must be a response to a preceeding message" in answer["error"]["message"]


@pytest.mark.parametrize("name", list(KEYS))
async def test_a_tool_only_answer_has_null_content_and_calls_with_string_arguments(fakes, name):
    model = "gpt-4o" if name == "openai" else "openai/gpt-4o"
    status, answer = await post(fakes, name, {"model": model, "messages": [user("call f now")], "tools": [TOOL]})
    assert status == 200
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"] == {"name": "f", "arguments": "{}"}
    assert call["id"].startswith("call_") and len(call["id"]) <= 40


async def test_a_streamed_call_is_a_named_first_fragment_then_argument_pieces(fakes):
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    status, raw = await post(fakes, "openai", {"model": "gpt-4o", "messages": [user("call f now")], "tools": [tool],
                                               "stream": True}, raw=True)
    assert status == 200
    chunks = [json.loads(f[6:]) for f in raw.split("\n\n") if f.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": None}
    fragments = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    first, rest = fragments[0], fragments[1:]
    assert set(first) == {"index", "id", "type", "function"} and first["function"] == {"name": "f", "arguments": ""}
    assert 2 <= len(rest) <= 3 and all(set(f) == {"index", "function"} and f["index"] == 0 for f in rest)
    assert json.loads("".join(f["function"]["arguments"] for f in rest)) == {"city": "example"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_the_fake_openrouter_thinks_when_asked_and_counts_it(fakes):
    body = {"model": "openai/gpt-4o", "messages": [user("why is the sky blue")], "reasoning": {"effort": "high"}}
    _, answer = await post(fakes, "openrouter", body)
    message, usage = answer["choices"][0]["message"], answer["usage"]
    assert message["reasoning"] == "Thinking it over: why is the sky blue"
    assert message["reasoning_details"][0]["text"] == message["reasoning"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 8
    assert usage["completion_tokens"] == 8 + len(message["content"].split())
    _, raw = await post(fakes, "openrouter", {**body, "stream": True}, raw=True)
    deltas = [json.loads(f[6:])["choices"] for f in raw.split("\n\n") if f.startswith("data: {")]
    thought = [c[0]["delta"]["reasoning"] for c in deltas if c and c[0]["delta"].get("reasoning")]
    assert "".join(thought) == message["reasoning"] and len(thought) == 2
    _, answer = await post(fakes, "openrouter", {**body, "reasoning": {"effort": "high", "exclude": True}})
    assert answer["choices"][0]["message"]["reasoning"] is None
