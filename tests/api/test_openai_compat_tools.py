"""/v1/chat/completions with agent-grade requests, over httpx (the SDK's view is test_openai_sdk.py):
what it passes on, what it refuses and how, and the tool-call and reasoning frames it streams."""

from __future__ import annotations

import json

import orjson
import pytest

from llmrelay.api.openai_format import REFUSED, check_tool_answers
from llmrelay.providers.openai_wire import WireError

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def ask(model: str, text: str = "Hi there", **more) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **more}


def frames(text: str) -> list:
    out = []
    for block in text.strip().split("\n\n"):
        data = block.removeprefix("data: ")
        out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


async def post(client, keys, body: dict):
    return await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=body)


def error(r, status: int = 400) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


# -- refused -----------------------------------------------------------------------------------------------

ASKING = {"audio": {"voice": "alloy", "format": "wav"}, "function_call": "auto",
          "functions": [{"name": "f", "parameters": {}}], "logprobs": True, "top_logprobs": 2, "metadata": {"a": "b"},
          "store": True, "moderation": {"model": "omni-moderation-latest"}, "prediction": {"type": "content",
                                                                                         "content": "x"},
          "prompt_cache_key": "k", "prompt_cache_options": {"mode": "implicit"}, "prompt_cache_retention": "24h",
          "service_tier": "flex", "verbosity": "low", "web_search_options": {}}


def test_every_refused_parameter_has_an_example_here():
    assert set(ASKING) == set(REFUSED)


@pytest.mark.parametrize("param", sorted(ASKING))
async def test_each_parameter_llmrelay_does_not_relay_is_refused_by_name_with_the_reason(client, keys, fakes, param):
    err = error(await post(client, keys, ask("openai/gpt-4o", **{param: ASKING[param]})))
    assert err["param"] == param and err["code"] == "unsupported_parameter" and err["type"] == "invalid_request_error"
    assert err["message"].startswith(f"{param!r} is not supported: ") and REFUSED[param][1] in err["message"]
    assert fakes["openai"].requests == []


async def test_their_off_values_ask_for_nothing_and_pass(client, keys):
    r = await post(client, keys, ask("openai/gpt-4o", store=False, logprobs=False, functions=[], audio=None,
                                     service_tier=None, metadata=None))
    assert r.status_code == 200, r.text
    r = await post(client, keys, ask("openai/gpt-4o", service_tier="auto", verbosity="medium"))  # the defaults
    assert r.status_code == 200, r.text


async def test_a_parameter_openai_does_not_define_is_unrecognized_as_openai_says(client, keys):
    err = error(await post(client, keys, ask("openai/gpt-4o", reasoning={"effort": "high"})))
    assert err == {"message": "Unrecognized request argument supplied: reasoning", "type": "invalid_request_error",
                   "param": None, "code": None}


async def test_what_no_link_can_take_is_a_400_naming_the_parameter(client, keys, fakes):
    r = await post(client, keys, ask("openai/gpt-4o", top_k=5))
    err = error(r)
    assert err["param"] == "top_k" and err["code"] == "unsupported_parameter" and "openai cannot take" in err["message"]
    assert r.json()["attemptedProviders"][0]["status"] == "skipped" and fakes["openai"].requests == []


async def test_a_link_that_cannot_take_it_is_skipped_for_one_that_can(client, keys, fakes):
    r = await post(client, keys, ask("openai/gpt-4o", top_k=5, models=["openrouter/openai/gpt-4o"]))
    assert r.status_code == 200 and r.headers["x-llmrelay-provider"] == "openrouter"
    assert r.headers["x-llmrelay-fallback"] == "true" and fakes["openrouter"].requests[-1].body["top_k"] == 5


async def test_a_named_tool_choice_must_name_a_tool(client, keys):
    err = error(await post(client, keys, ask("openai/gpt-4o", tools=[WEATHER], tool_choice={
        "type": "function", "function": {"name": "get_time"}})))
    assert err["param"] == "tool_choice" and "get_time" in err["message"]


@pytest.mark.parametrize(("messages", "param"), [
    ([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "c1", "content": "1"}],
     "messages[1].tool_call_id"),
    ([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "1"}, {"role": "tool", "tool_call_id": "c1", "content": "2"}],
     "messages[2].tool_call_id"),
    ([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}], "messages[0].tool_calls"),
])
def test_tool_messages_must_answer_the_calls_right_before_them(messages, param):
    with pytest.raises(WireError) as info:
        check_tool_answers(messages)
    assert info.value.param == param


# -- passed on ---------------------------------------------------------------------------------------------


async def test_sampling_tools_format_and_end_user_reach_the_provider(client, keys, fakes):
    r = await post(client, keys, ask("openai/gpt-4o", "reply in json", top_p=0.5, seed=9, presence_penalty=1,
                                     frequency_penalty=-1, logit_bias={"50256": -100}, user="u-1",
                                     safety_identifier="sid-1", tools=[WEATHER], tool_choice="none",
                                     parallel_tool_calls=False, response_format={"type": "json_object"}))
    assert r.status_code == 200, r.text
    sent = fakes["openai"].requests[-1].body
    assert (sent["top_p"], sent["seed"], sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 9, 1, -1)
    assert sent["logit_bias"] == {"50256": -100} and sent["user"] == "sid-1"
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "none" and sent["parallel_tool_calls"] is False
    assert sent["response_format"] == {"type": "json_object"}
    assert r.headers["x-llmrelay-structured-output"] == "native"
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"answer": "reply in json"}


async def test_a_plain_answer_has_no_structured_output_header(client, keys):
    r = await post(client, keys, ask("openai/gpt-4o"))
    assert "x-llmrelay-structured-output" not in r.headers


async def test_a_tool_call_answer_and_the_loop_back(client, keys, fakes):
    r = await post(client, keys, ask("openai/gpt-4o", "use get_weather", tools=[WEATHER]))
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and json.loads(call["function"]["arguments"]) == {"city": "example"}
    history = [{"role": "user", "content": "use get_weather"}, choice["message"],
               {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    r = await post(client, keys, {"model": "openai/gpt-4o", "messages": history, "tools": [WEATHER]})
    assert r.json()["choices"][0]["message"]["content"].endswith("The tools said: sunny")
    assert fakes["openai"].requests[-1].body["messages"][2] == {"role": "tool", "tool_call_id": call["id"],
                                                                "content": "sunny"}


async def test_a_streamed_tool_call_is_openais_fragment_sequence(client, keys):
    r = await post(client, keys, ask("openai/gpt-4o", "use get_weather", tools=[WEATHER], stream=True,
                                     stream_options={"include_usage": True}))
    assert r.status_code == 200 and r.headers["x-llmrelay-provider"] == "openai"
    got = frames(r.text)
    deltas = [c["choices"][0]["delta"] for c in got[:-2] if c["choices"]]
    first, rest = deltas[0], deltas[1:-1]
    assert first["role"] == "assistant" and "content" not in first
    assert first["tool_calls"] == [{"index": 0, "id": first["tool_calls"][0]["id"], "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]
    assert all(set(d) == {"tool_calls"} and set(d["tool_calls"][0]) == {"index", "function"} for d in rest)
    assert json.loads("".join(d["tool_calls"][0]["function"]["arguments"] for d in rest)) == {"city": "example"}
    assert got[-3]["choices"][0]["finish_reason"] == "tool_calls" and got[-1] == "[DONE]"


async def test_reasoning_comes_as_reasoning_content_plain_and_streamed(client, keys):
    body = ask("openrouter/openai/gpt-4o", "why is the sky blue", reasoning_effort="high")
    message = (await post(client, keys, body)).json()["choices"][0]["message"]
    assert message["reasoning_content"] == "Thinking it over: why is the sky blue"
    got = frames((await post(client, keys, {**body, "stream": True})).text)
    deltas = [c["choices"][0]["delta"] for c in got[:-1] if c["choices"]]
    thought = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    assert "".join(thought) == message["reasoning_content"] and deltas[0]["role"] == "assistant"
    first_text = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all("reasoning_content" in d for d in deltas[:2]) and first_text >= 2

