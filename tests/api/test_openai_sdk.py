"""/v1 with the official `openai` Python package as the client: what an application sees when it
points `base_url` at llmrelay (the app in-process, over httpx's ASGI transport)."""

from decimal import Decimal

import httpx
import openai
import pytest

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
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert err.value.param == "messages[0].content[0]" and "image_url" in err.value.message


async def test_no_provider_answering_raises_an_internal_server_error(sdk, fakes):
    fakes["openai"].script(faults.http_error(503))
    with pytest.raises(openai.InternalServerError) as err:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert err.value.status_code == 502 and "openai/gpt-4o" in err.value.message


async def test_a_stream_that_breaks_after_text_raises_api_error(sdk, fakes):
    fakes["openai"].script(faults.stream_error(after_chunks=3, code="server_error"))
    stream = await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, stream=True)
    got = []
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content)
    assert "".join(got) == "Hello from fake"
    assert "broke after text" in err.value.message


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
