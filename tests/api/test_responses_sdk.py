"""/v1/responses with the official `openai` package as the client (the app in-process, over httpx's ASGI
transport): `responses.create` plain and streamed, the `responses.stream()` helper, `responses.parse`,
`previous_response_id`, a function tool loop, retrieve and delete, and the SDK's typed errors."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseFailedEvent,
    ResponseFunctionToolCall,
    ResponseTextDeltaEvent,
)
from pydantic import BaseModel

from llmrelay.testing import faults

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


class Weather(BaseModel):
    city: str
    temperature: float


@pytest.fixture
async def sdk(app, keys):
    """alice's OpenAI client (no SDK retries: a test must see the first answer)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(base_url="http://llmrelay.test/v1", api_key=keys.alice, http_client=http,
                                max_retries=0)
    yield client
    await client.close()


async def test_create_parses_into_the_sdks_response(sdk):
    done = await sdk.responses.create(model="agent:general-agent", input="Hello SDK", instructions="Be kind.")
    assert isinstance(done, openai.types.responses.Response)
    assert done.output_text == "Hello from fake anthropic (claude-3-5-sonnet-20241022). You said: Hello SDK"
    assert done.status == "completed" and done.instructions == "Be kind."
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0


async def test_the_raw_response_carries_who_served_and_the_request_id(sdk, fakes):
    fakes["openai"].script(faults.http_error(500))
    raw = await sdk.responses.with_raw_response.create(
        model="openai/gpt-4o", input="Hi", extra_body={"models": ["openrouter/openai/gpt-4o-mini"]})
    assert raw.headers["x-llmrelay-provider"] == "openrouter" and raw.headers["x-llmrelay-fallback"] == "true"
    assert raw.parse().id == "resp_" + raw.headers["x-request-id"]


async def test_a_stream_yields_the_sdks_typed_events(sdk):
    stream = await sdk.responses.create(model="google/gemini-2.0-flash", input="Hello stream", stream=True)
    events = [e async for e in stream]
    deltas = [e.delta for e in events if isinstance(e, ResponseTextDeltaEvent)]
    assert "".join(deltas) == "Hello from fake google (gemini-2.0-flash). You said: Hello stream"
    assert isinstance(events[-1], ResponseCompletedEvent)
    assert events[-1].response.output_text == "".join(deltas)


async def test_the_stream_helper_gives_the_final_response(sdk):
    async with sdk.responses.stream(model="openai/gpt-4o", input="Hello helper") as stream:
        texts = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert final.output_text == "".join(texts) == "Hello from fake openai (gpt-4o). You said: Hello helper"


async def test_previous_response_id_continues_the_conversation(sdk, fakes):
    first = await sdk.responses.create(model="openai/gpt-4o", input="My name is Ada.")
    second = await sdk.responses.create(model="anthropic/claude-3-5-sonnet-20241022", input="Who am I?",
                                        previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = fakes["anthropic"].requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"] and "My name is Ada." in json.dumps(sent[0])


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash"])
async def test_a_function_tool_loop(sdk, model):
    items: list = [{"role": "user", "content": "what is the weather in Paris? use get_weather"}]
    first = await sdk.responses.create(model=model, input=items, tools=[WEATHER])
    call = first.output[-1]
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "get_weather"
    items += [o.model_dump(exclude_none=True) for o in first.output]
    items.append({"type": "function_call_output", "call_id": call.call_id,
                  "output": f"sunny, 21 C in {json.loads(call.arguments)['city']}"})
    async with sdk.responses.stream(model=model, input=items, tools=[WEATHER]) as stream:
        final = await stream.get_final_response()
    assert "The tools said: sunny, 21 C in example" in final.output_text


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash"])
async def test_parse_gives_the_pydantic_model(sdk, model):
    done = await sdk.responses.parse(model=model, input="the weather in Paris", text_format=Weather)
    assert isinstance(done.output_parsed, Weather)


async def test_a_stored_response_is_retrieved_and_deleted(sdk):
    made = await sdk.responses.create(model="openai/gpt-4o", input="Keep me", metadata={"ticket": "7"})
    got = await sdk.responses.retrieve(made.id)
    assert got.model_dump() == made.model_dump() and got.metadata == {"ticket": "7"}
    await sdk.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(made.id)


async def test_errors_are_the_sdks_typed_errors(sdk, fakes):
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.responses.create(model="openai/gpt-4o", input="Hi", tools=[{"type": "web_search"}])
    assert err.value.param == "tools[0]" and "'web_search'" in err.value.message
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.responses.create(model="openai/gpt-4o", input="Hi", previous_response_id="resp_nope")
    assert err.value.code == "previous_response_not_found"
    fakes["openai"].script(faults.stream_error(after_chunks=2, code="server_error"))
    stream = await sdk.responses.create(model="openai/gpt-4o", input="Hi", stream=True)
    events = [e async for e in stream]
    assert isinstance(events[-1], ResponseFailedEvent) and events[-1].response.error.code == "server_error"
