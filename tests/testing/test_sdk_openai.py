"""The official `openai` SDK against the fake OpenAI and the fake OpenRouter (OpenRouter is
OpenAI-SDK-compatible): if the SDK cannot read what a fake sends, the fake is wrong."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from llmrelay.testing import FakeServers, faults

MODELS = {"openai": "gpt-4o", "openrouter": "openai/gpt-4o"}
PROVIDERS = list(MODELS)


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(PROVIDERS) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


def client(fakes, name: str, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=fakes.url(name), api_key=key or fakes[name].default_key, max_retries=0,
                         timeout=10)


def ask(c: openai.OpenAI, name: str, **kw):
    return c.chat.completions.create(model=MODELS[name], messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}], **kw)


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_plain_call(fakes, name):
    with client(fakes, name) as c:
        resp = ask(c, name, max_completion_tokens=100)
    assert resp.choices[0].message.content == f"Hello from fake {name} ({MODELS[name]}). You said: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == MODELS[name]
    assert resp.usage.prompt_tokens == 4 and resp.usage.completion_tokens == 9
    assert resp.usage.prompt_tokens_details.cached_tokens == 0
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0
    assert fakes[name].requests[-1].body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_sdk_reads_openrouter_cost_and_provider_extras(fakes):
    fakes["openrouter"].script(faults.reply(usage={"input": 1000, "output": 100, "cached_input": 200}))
    with client(fakes, "openrouter") as c:
        resp = ask(c, "openrouter")
    expected = fakes["openrouter"].cost(MODELS["openrouter"], 1000, 100, 200)
    assert resp.usage.model_extra["cost"] == pytest.approx(float(expected))
    assert resp.usage.model_extra["is_byok"] is False
    assert resp.usage.prompt_tokens_details.cached_tokens == 200
    assert resp.model_extra["provider"] == "OpenAI"
    assert resp.choices[0].model_extra["native_finish_reason"] == "stop"


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_streaming_call_reassembles_text_and_usage(fakes, name):
    with client(fakes, name) as c:
        stream = ask(c, name, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == f"Hello from fake {name} ({MODELS[name]}). You said: hello there"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 13
    assert all(ch.usage is None for ch in chunks[:-1])


def test_sdk_openrouter_stream_has_usage_even_without_stream_options(fakes):
    with client(fakes, "openrouter") as c:
        chunks = list(ask(c, "openrouter", stream=True))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 9
    assert chunks[-1].usage.model_extra["cost"] > 0


def test_sdk_openai_stream_without_include_usage_has_no_usage(fakes):
    with client(fakes, "openai") as c:
        chunks = list(ask(c, "openai", stream=True))
    assert all(ch.usage is None for ch in chunks) and chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_rate_limit_error_with_retry_after(fakes, name):
    fakes[name].script(faults.http_error(429, retry_after="3"))
    with client(fakes, name) as c, pytest.raises(openai.RateLimitError) as info:
        ask(c, name)
    assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "3"
    assert len(fakes[name].requests) == 1  # max_retries=0: no retry


def test_sdk_openai_insufficient_quota_body(fakes):
    fakes["openai"].script(faults.http_error(429, "insufficient_quota"))
    with client(fakes, "openai") as c, pytest.raises(openai.RateLimitError) as info:
        ask(c, "openai")
    assert info.value.code == "insufficient_quota" and info.value.type == "insufficient_quota"


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_not_found_error(fakes, name):
    fakes[name].script(faults.http_error(404))
    with client(fakes, name) as c, pytest.raises(openai.NotFoundError) as info:
        ask(c, name)
    assert info.value.status_code == 404 and info.value.message


def test_sdk_openrouter_error_body_keeps_metadata(fakes):
    fakes["openrouter"].script(faults.http_error(403, "moderation"))
    with client(fakes, "openrouter") as c, pytest.raises(openai.PermissionDeniedError) as info:
        ask(c, "openrouter")
    assert info.value.body["metadata"]["reasons"] == ["harassment"]
    assert info.value.body["code"] == 403


def test_sdk_openrouter_402_is_a_status_error(fakes):
    fakes["openrouter"].script(faults.http_error(402))
    with client(fakes, "openrouter") as c, pytest.raises(openai.APIStatusError) as info:
        ask(c, "openrouter")
    assert info.value.status_code == 402 and info.value.body["metadata"]["error_type"] == "payment_required"


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_authentication_error_on_wrong_key(name):
    with FakeServers([name], api_key="sk-the-right-key-123") as servers:
        with client(servers, name, key="sk-the-wrong-key-123") as c, \
                pytest.raises(openai.AuthenticationError) as info:
            ask(c, name)
        assert info.value.status_code == 401
        with client(servers, name, key="sk-the-right-key-123") as c:
            assert ask(c, name).choices[0].message.content


@pytest.mark.parametrize("name,code", [("openai", None), ("openrouter", None),
                                       ("openrouter", "rate_limit_exceeded")])
def test_sdk_mid_stream_error_raises_api_error_after_text(fakes, name, code):
    fakes[name].script(faults.stream_error(after_chunks=2, code=code))
    received: list[str] = []
    with client(fakes, name) as c, pytest.raises(openai.APIError) as info:
        for ch in ask(c, name, stream=True):
            if ch.choices and ch.choices[0].delta.content:
                received.append(ch.choices[0].delta.content)
    assert received == ["Hello", " from"]
    assert info.value.message


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_lists_models(fakes, name):
    with client(fakes, name) as c:
        ids = [m.id for m in c.models.list()]
    assert MODELS[name] in ids


# -- tools, structured output, images, rejections ---------------------------------------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_runs_a_tool_loop(fakes, name):
    messages = [{"role": "user", "content": "what does get_weather say for Paris?"}]
    with client(fakes, name) as c:
        first = c.chat.completions.create(model=MODELS[name], messages=messages, tools=[WEATHER])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        [call] = choice.message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "example"}
        messages += [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "18 C"}]
        second = c.chat.completions.create(model=MODELS[name], messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content.endswith("The tools said: 18 C")


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_stream_helper_reassembles_streamed_tool_calls(fakes, name):
    tools = [WEATHER, {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    with client(fakes, name) as c, c.chat.completions.stream(
            model=MODELS[name], messages=[{"role": "user", "content": "get_weather and get_time please"}],
            tools=tools) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.name, e.index) for e in done] == [("get_weather", 0), ("get_time", 1)]
    calls = final.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "example"}, {}]
    assert final.choices[0].finish_reason == "tool_calls"


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("name", PROVIDERS)
def test_sdk_parse_gets_an_object_of_the_schema(fakes, name):
    with client(fakes, name) as c:
        done = c.chat.completions.parse(model=MODELS[name], messages=[{"role": "user", "content": "who?"}],
                                        response_format=Person)
    assert done.choices[0].message.parsed == Person(name="example", age=1)
    sent = fakes[name].requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Person"


def test_sdk_sends_images_the_fake_counts(fakes):
    with client(fakes, "openai") as c:
        done = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}])
    assert done.choices[0].message.content.endswith("(I saw 1 image.)")


def test_sdk_raises_the_fakes_rejection_with_its_param_and_code(fakes):
    with client(fakes, "openai") as c, pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                  tools=[{"type": "function", "function": {"name": "bad name"}}])
    assert info.value.param == "tools[0].function.name" and info.value.code == "invalid_value"
