"""/v1 with the official `openai` Python package as the client: what an application sees when it
points `base_url` at llmrelay (the app in-process, over httpx's ASGI transport)."""

import base64
import json
from decimal import Decimal

import httpx
import openai
import pytest
from pydantic import BaseModel

from llmrelay.testing import faults

HI = [{"role": "user", "content": "Hello SDK"}]


@pytest.fixture
async def sdk(app, keys):
    """alice's OpenAI client (no SDK retries: a test must see the first answer)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(base_url="http://llmrelay.test/v1", api_key=keys.alice, http_client=http,
                                max_retries=0)
    yield client
    await client.close()


async def test_a_plain_completion_parses_into_the_sdks_types(sdk):
    done = await sdk.chat.completions.create(model="agent:general-agent", messages=HI)
    assert isinstance(done, openai.types.chat.ChatCompletion)
    assert done.id.startswith("chatcmpl-") and done.model == "claude-3-5-sonnet-20241022"
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content.startswith("Hello from fake anthropic")
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens > 0
    assert done.usage.prompt_tokens_details.cached_tokens == 0
    assert done.usage.completion_tokens_details.reasoning_tokens == 0


async def test_the_raw_response_carries_who_served_and_what_it_cost(sdk, fakes):
    fakes["openai"].script(faults.http_error(500))
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HI, extra_body={"models": ["openrouter/openai/gpt-4o-mini"]})
    assert raw.headers["x-llmrelay-provider"] == "openrouter" and raw.headers["x-llmrelay-fallback"] == "true"
    assert Decimal(raw.headers["x-llmrelay-cost-usd"]) > 0 and raw.headers["x-request-id"]
    done = raw.parse()
    assert done.model == "openai/gpt-4o-mini" and done.id == "chatcmpl-" + raw.headers["x-request-id"]


async def test_a_stream_reassembles_into_the_answer_with_a_usage_chunk(sdk):
    stream = await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, stream=True,
                                               stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake openai (gpt-4o). You said: Hello SDK"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())


async def test_a_streams_headers_are_readable_through_the_raw_response(sdk, fakes):
    fakes["anthropic"].script(faults.overloaded())
    raw = await sdk.chat.completions.with_raw_response.create(model="agent:general-agent", messages=HI, stream=True)
    assert raw.headers["x-llmrelay-provider"] == "openai" and raw.headers["x-llmrelay-fallback"] == "true"
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text.startswith("Hello from fake openai")


async def test_models_are_listed_and_retrieved(sdk):
    ids = [m.id async for m in sdk.models.list()]
    assert "agent:general-agent" in ids and "openai/gpt-4o-mini" in ids
    model = await sdk.models.retrieve("openrouter/meta-llama/llama-3.1-70b-instruct")
    assert model.owned_by == "openrouter"


async def test_a_bad_key_raises_authentication_error(app, sdk):
    sdk = sdk.with_options(api_key="lr_not-a-key")
    with pytest.raises(openai.AuthenticationError) as err:
        await sdk.chat.completions.create(model="gpt-4o", messages=HI)
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"


async def test_an_unknown_model_raises_not_found_error(sdk):
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.chat.completions.create(model="agent:no-such-agent", messages=HI)
    assert err.value.code == "model_not_found" and err.value.param == "model"


async def test_bad_input_raises_bad_request_error_naming_the_param(sdk):
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="gpt-4o", messages=HI, temperature=2.5)
    assert err.value.param == "temperature" and err.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}])
    assert err.value.param == "messages[0].content[0].image_url.url" and "http(s)" in err.value.message


async def test_no_provider_answering_raises_an_internal_server_error(sdk, fakes):
    fakes["openai"].script(faults.http_error(503))
    with pytest.raises(openai.InternalServerError) as err:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert err.value.status_code == 502 and "openai/gpt-4o" in err.value.message


async def test_a_conversation_too_long_for_every_link_raises_the_sdks_context_length_error(sdk, fakes):
    """What an application catches to shorten its conversation and ask again: a 400 whose code is
    `context_length_exceeded`, as the provider itself would answer, not a 502; plain and streamed."""
    for stream in (False, True):
        for name in ("openai", "google"):
            fakes[name].script(faults.http_error(400, code="context_length_exceeded"))
        with pytest.raises(openai.BadRequestError) as err:
            await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, stream=stream,
                                              extra_body={"models": ["google/gemini-2.0-flash"]})
        assert err.value.code == "context_length_exceeded" and err.value.status_code == 400
        assert "openai/gpt-4o" in err.value.message and "google/gemini-2.0-flash" in err.value.message
        assert err.value.response.headers["x-should-retry"] == "false"


async def test_a_stream_that_breaks_after_text_raises_api_error(sdk, fakes):
    fakes["openai"].script(faults.stream_error(after_chunks=3, code="server_error"))
    stream = await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, stream=True)
    got = []
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content)
    assert "".join(got) == "Hello from fake"
    assert "broke after output" in err.value.message


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 1, "rate_tpm": 0}

    async def test_the_request_over_the_limit_raises_rate_limit_error(self, sdk):
        await sdk.chat.completions.create(model="gpt-4o", messages=HI)
        with pytest.raises(openai.RateLimitError) as err:
            await sdk.chat.completions.create(model="gpt-4o", messages=HI)
        assert err.value.code == "rate_limit_exceeded"
        assert int(err.value.response.headers["retry-after"]) >= 1


# -- agent-grade requests ---------------------------------------------------------------------------------

SERVING = ["openai/gpt-4o", "openrouter/openai/gpt-4o"]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


@pytest.mark.parametrize("model", SERVING)
async def test_a_full_tool_loop(sdk, fakes, model):
    messages = [{"role": "user", "content": "what does get_weather say about Paris?"}]
    first = await sdk.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "example"}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]
    second = await sdk.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content.endswith("The tools said: 18 C and sunny")
    provider = model.split("/")[0]
    assert fakes[provider].requests[-1].body["messages"][-1] == {"role": "tool", "tool_call_id": call.id,
                                                                 "content": "18 C and sunny"}


@pytest.mark.parametrize("model", SERVING)
async def test_a_full_tool_loop_streaming_with_the_sdks_stream_helper(sdk, model):
    messages = [{"role": "user", "content": "call get_weather for Oslo"}]
    async with sdk.chat.completions.stream(model=model, messages=messages, tools=[WEATHER]) as stream:
        done = [e async for e in stream if e.type == "tool_calls.function.arguments.done"]
        first = await stream.get_final_completion()
    assert [(e.name, json.loads(e.arguments)) for e in done] == [("get_weather", {"city": "example"})]
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.tool_calls[0].id
    messages += [{"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in message.tool_calls]},
                 {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "cold"}]
    async with sdk.chat.completions.stream(model=model, messages=messages, tools=[WEATHER]) as stream:
        second = await stream.get_final_completion()
    assert second.choices[0].message.content.endswith("The tools said: cold")


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("model", SERVING)
async def test_parse_returns_the_parsed_object(sdk, model):
    done = await sdk.chat.completions.parse(model=model, messages=[{"role": "user", "content": "who?"}],
                                            response_format=Person)
    assert done.choices[0].message.parsed == Person(name="example", age=1)
    raw = await sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "who?"}], response_format={
            "type": "json_schema", "json_schema": {"name": "Person", "schema": Person.model_json_schema()}})
    assert raw.headers["x-llmrelay-structured-output"] == "native"


async def test_images_by_data_url_and_by_http_url(sdk, fakes):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n0000").decode()
    done = await sdk.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "compare these"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://img.example/cat.jpg"}}]}])
    assert done.choices[0].message.content.endswith("(I saw 2 images.)")
    assert fakes["openai"].requests[-1].body["messages"][0]["content"][1:] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://img.example/cat.jpg"}}]


async def test_reasoning_reaches_the_sdk_as_an_extra_field(sdk):
    done = await sdk.chat.completions.create(model="openrouter/openai/gpt-4o", reasoning_effort="low",
                                             messages=[{"role": "user", "content": "think"}])
    assert done.choices[0].message.model_extra["reasoning_content"] == "Thinking it over: think"
    assert done.usage.completion_tokens_details.reasoning_tokens == 4


REFUSED_BY_SDK = [("logprobs", {"logprobs": True}), ("top_logprobs", {"logprobs": False, "top_logprobs": 3}),
                  ("store", {"store": True}), ("metadata", {"metadata": {"k": "v"}}),
                  ("service_tier", {"service_tier": "flex"}), ("audio", {"audio": {"voice": "alloy", "format": "mp3"}}),
                  ("prediction", {"prediction": {"type": "content", "content": "x"}}),
                  ("verbosity", {"verbosity": "high"}), ("web_search_options", {"web_search_options": {}}),
                  ("prompt_cache_key", {"prompt_cache_key": "k"}),
                  ("functions", {"functions": [{"name": "f", "parameters": {}}]}),
                  ("n", {"n": 2}), ("modalities", {"modalities": ["text", "audio"]})]


@pytest.mark.parametrize(("param", "kw"), REFUSED_BY_SDK)
async def test_each_unsupported_parameter_is_refused_by_name(sdk, fakes, param, kw):
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, **kw)
    assert err.value.param == param and err.value.code == "unsupported_parameter"
    assert fakes["openai"].requests == []


async def test_who_spoke_reaches_the_providers_that_take_it_and_skips_those_that_cannot(app, sdk, fakes):
    """OpenAI's `name` on user and assistant messages (a multi-agent framework names each speaker): sent on
    to OpenAI and OpenRouter; a link of a provider without the field is skipped with the reason, and a
    chain of such links only is a 400 naming it, never a silent drop."""
    named = [{"role": "user", "content": "Plan it", "name": "lead"},
             {"role": "assistant", "content": "Step one", "name": "planner"},
             {"role": "user", "content": "Go on", "name": "lead"}]
    for model, provider in (("openai/gpt-4o", "openai"), ("openrouter/openai/gpt-4o", "openrouter")):
        await sdk.chat.completions.create(model=model, messages=named)
        sent = [m for m in fakes[provider].requests[-1].body["messages"] if m["role"] != "system"]
        assert [(m["role"], m["content"], m.get("name")) for m in sent] == [
            ("user", "Plan it", "lead"), ("assistant", "Step one", "planner"), ("user", "Go on", "lead")]
    claude_asked = len(fakes["anthropic"].requests)
    raw = await sdk.chat.completions.with_raw_response.create(model="agent:general-agent", messages=named)
    assert raw.headers["x-llmrelay-provider"] == "openai" and raw.headers["x-llmrelay-fallback"] == "true"
    assert len(fakes["anthropic"].requests) == claude_asked  # the agent's Claude link was skipped, not called
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=named)
    assert err.value.param == "name" and "anthropic cannot take 'name'" in err.value.message


async def test_a_parameter_no_link_can_take_is_refused_by_name(sdk):
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, extra_body={"top_k": 4})
    assert err.value.param == "top_k" and err.value.code == "unsupported_parameter"


@pytest.mark.parametrize(("kw", "param"), [
    ({"tools": [{"type": "function", "function": {"name": "no spaces allowed"}}]}, "tools[0].function.name"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {}}}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
     "response_format.json_schema.name"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
])
async def test_a_bad_tool_choice_or_format_names_its_param(sdk, kw, param):
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, **kw)
    assert err.value.param == param


async def test_an_sdk_with_retries_does_not_walk_a_failed_chain_again(app, keys, fakes):
    """openai's default max_retries=2 retries a 502; llmrelay's says `x-should-retry: false` (its chain was walked,
    with retries, already), so the SDK asks once."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(base_url="http://llmrelay.test/v1", api_key=keys.alice, http_client=http)
    assert client.max_retries == 2
    fakes["openai"].script(*[faults.http_error(500)] * 9)
    with pytest.raises(openai.InternalServerError) as failed:
        await client.chat.completions.create(model="openai/gpt-4o", messages=HI)
    await client.close()
    assert failed.value.status_code == 502 and failed.value.response.headers["x-should-retry"] == "false"
    assert len(fakes["openai"].requests) == 1  # one call of the one link (retries are off in these tests)
