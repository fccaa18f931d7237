"""/v1/messages with the official `anthropic` Python package as the client: what a Claude application
sees when it points `base_url` at llmrelay (the app in-process, over httpx's ASGI transport), whichever of
the five providers serves."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import anthropic
import httpx2
import pytest
from anthropic.types import Message, TextBlock, ThinkingBlock, ToolUseBlock
from sqlalchemy import select

from llmrelay.db.models import AIModelUsage
from llmrelay.testing import faults

HI = [{"role": "user", "content": "Hello Claude SDK"}]
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris? use get_weather"}]
SERVING = {
    "anthropic": "anthropic/claude-3-5-sonnet-20241022",
    "openai": "openai/gpt-4o",
    "google": "google/gemini-2.0-flash",
    "openrouter": "openrouter/openai/gpt-4o",
    "ollama": "ollama/llama3.1",
}
providers = pytest.mark.parametrize("name", list(SERVING))
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


@pytest.fixture
async def sdk(app, keys):
    """alice's Anthropic client (no SDK retries: a test must see the first answer)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    client = anthropic.AsyncAnthropic(base_url="http://llmrelay.test", api_key=keys.alice, http_client=http,
                                      max_retries=0)
    yield client
    await client.close()


async def ledger_rows(app, request_id: str) -> list[AIModelUsage]:
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(AIModelUsage.request_id == request_id).order_by(AIModelUsage.attempt)
        return list((await s.execute(stmt)).scalars().all())


def rid_of(raw) -> str:
    """llmrelay's request id (the ledger's) behind an answer's `request-id`."""
    assert raw.headers["request-id"] == "req_" + raw.headers["x-request-id"]
    return raw.headers["x-request-id"]


# -- plain messages ---------------------------------------------------------------------------------------


async def test_a_plain_message_parses_into_the_sdks_types_with_who_served_and_the_cost(app, sdk):
    raw = await sdk.messages.with_raw_response.create(model="agent:general-agent", max_tokens=100, messages=HI)
    msg = (await raw.parse())
    assert isinstance(msg, Message) and msg.id == "msg_" + rid_of(raw) and msg._request_id == raw.headers["request-id"]
    assert msg.role == "assistant" and msg.model == "claude-3-5-sonnet-20241022"
    [block] = msg.content
    assert isinstance(block, TextBlock) and block.text.startswith("Hello from fake anthropic")
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens == len(block.text.split())
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0
    assert raw.headers["x-llmrelay-provider"] == "anthropic" and raw.headers["x-llmrelay-fallback"] == "false"
    rows = await ledger_rows(app, rid_of(raw))
    assert [(r.provider, r.status, r.kind, r.agent_id) for r in rows] == [
        ("anthropic", "success", "chat", "general-agent")]
    assert rows[0].cost_usd == Decimal(raw.headers["x-llmrelay-cost-usd"]) > 0


@providers
async def test_each_provider_serves_a_message_in_anthropics_shape(app, sdk, name):
    raw = await sdk.messages.with_raw_response.create(model=SERVING[name], max_tokens=100, messages=HI,
                                                      system="Be brief.")
    msg = (await raw.parse())
    assert msg.content[0].text.startswith(f"Hello from fake {name}") and msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert raw.headers["x-llmrelay-provider"] == name
    rows = await ledger_rows(app, rid_of(raw))
    assert [(r.provider, r.status, r.kind, r.agent_id) for r in rows] == [(name, "success", "chat", "direct")]


async def test_cached_input_is_left_out_of_input_tokens_as_anthropic_counts(sdk, fakes):
    fakes["openai"].script(faults.reply("cached answer", usage={"input": 100, "output": 2, "cached_input": 60}))
    msg = await sdk.messages.create(model="openai/gpt-4o", max_tokens=50, messages=HI)
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (40, 60, 2)


async def test_a_long_answer_stops_at_max_tokens(sdk):
    msg = await sdk.messages.create(model="openai/gpt-4o", max_tokens=3, messages=HI)
    assert msg.stop_reason == "max_tokens" and len(msg.content[0].text.split()) == 3


async def test_an_image_reaches_every_provider_that_reads_images(sdk):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    for model in ("anthropic/claude-3-5-sonnet-20241022", "openai/gpt-4o", "google/gemini-2.0-flash"):
        msg = await sdk.messages.create(model=model, max_tokens=100, messages=[
            {"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}])
        assert "(I saw 1 image.)" in msg.content[0].text, model


async def test_structured_output_comes_back_as_json_text_with_how_it_was_made(sdk):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    for model, mode in (("anthropic/claude-sonnet-4-5", "native"), ("anthropic/claude-3-5-sonnet-20241022", "tool"),
                        ("google/gemini-2.0-flash", "native")):
        raw = await sdk.messages.with_raw_response.create(
            model=model, max_tokens=100, messages=HI,
            output_config={"format": {"type": "json_schema", "schema": schema}})
        msg = (await raw.parse())
        assert json.loads(msg.content[0].text) == {"city": "example"} and msg.stop_reason == "end_turn", model
        assert raw.headers["x-llmrelay-structured-output"] == mode, model


# -- tools ----------------------------------------------------------------------------------------------


@providers
async def test_a_full_tool_loop_with_each_provider_serving(app, sdk, name):
    first = await sdk.messages.create(model=SERVING[name], max_tokens=200, messages=ASK_WEATHER, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if isinstance(b, ToolUseBlock)]
    assert call.name == "get_weather" and call.input == {"city": "example"}
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}
    answer = [b.model_dump(exclude_none=True) for b in first.content]  # as a client would store it: plain JSON
    messages = [*ASK_WEATHER, {"role": "assistant", "content": answer}, {"role": "user", "content": [result]}]
    raw = await sdk.messages.with_raw_response.create(model=SERVING[name], max_tokens=200, messages=messages,
                                                      tools=[WEATHER])
    final = (await raw.parse())
    assert final.stop_reason == "end_turn" and "18 C, sunny" in final.content[0].text
    assert raw.headers["x-llmrelay-provider"] == name
    [row] = await ledger_rows(app, rid_of(raw))
    assert (row.provider, row.kind, row.tool_calls) == (name, "chat", 0)


async def test_tool_choice_and_parallel_calls_reach_the_provider(sdk, fakes):
    other = {**WEATHER, "name": "get_time"}
    msg = await sdk.messages.create(model="openai/gpt-4o", max_tokens=100, tools=[WEATHER, other],
                                    tool_choice={"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
                                    messages=HI)
    assert [b.name for b in msg.content if b.type == "tool_use"] == ["get_time"]
    sent = fakes["openai"].requests[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False
    msg = await sdk.messages.create(model="anthropic/claude-3-5-sonnet-20241022", max_tokens=100, tools=[WEATHER],
                                    tool_choice={"type": "any"}, messages=HI)
    assert msg.stop_reason == "tool_use" and fakes["anthropic"].requests[-1].body["tool_choice"] == {"type": "any"}


async def test_a_tool_result_marked_as_an_error_reaches_the_provider(sdk, fakes):
    first = await sdk.messages.create(model="anthropic/claude-3-5-sonnet-20241022", max_tokens=100,
                                      messages=ASK_WEATHER, tools=[WEATHER])
    call = first.content[-1]
    await sdk.messages.create(model="anthropic/claude-3-5-sonnet-20241022", max_tokens=100, tools=[WEATHER], messages=[
        *ASK_WEATHER, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "no such city",
                                      "is_error": True}]}])
    result = fakes["anthropic"].requests[-1].body["messages"][-1]["content"][0]
    assert result == {"type": "tool_result", "tool_use_id": call.id, "content": "no such city", "is_error": True}


async def test_the_chain_falls_back_from_anthropic_to_openai_in_the_middle_of_a_tool_loop(app, sdk, fakes):
    first = await sdk.messages.create(model="agent:general-agent", max_tokens=200, messages=ASK_WEATHER,
                                      tools=[WEATHER])
    call = first.content[-1]
    assert isinstance(call, ToolUseBlock) and call.id.startswith("toolu_01Fake")
    fakes["anthropic"].script(faults.overloaded())  # the second request: Anthropic answers 529
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}
    messages = [*ASK_WEATHER, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    raw = await sdk.messages.with_raw_response.create(model="agent:general-agent", max_tokens=200, messages=messages,
                                                      tools=[WEATHER])
    final = (await raw.parse())
    assert "18 C, sunny" in final.content[0].text and final.stop_reason == "end_turn"
    assert raw.headers["x-llmrelay-provider"] == "openai" and raw.headers["x-llmrelay-fallback"] == "true"
    sent = fakes["openai"].requests[-1].body["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.id and sent[-1] == {
        "role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}
    rows = await ledger_rows(app, rid_of(raw))
    assert [(r.provider, r.status, r.kind) for r in rows] == [
        ("anthropic", "failed", "chat"), ("openai", "fallback", "chat")]


async def test_thinking_comes_back_signed_and_goes_back_to_claude_in_a_tool_loop(sdk, fakes):
    thinking = {"type": "enabled", "budget_tokens": 3000}
    first = await sdk.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=5000, thinking=thinking,
                                      messages=ASK_WEATHER, tools=[WEATHER])
    sent = fakes["anthropic"].requests[-1].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}  # 3,000 asks for `medium`
    assert sent["max_tokens"] == 5000 - 3000 + 4096
    thought, call = first.content[0], first.content[-1]
    assert isinstance(thought, ThinkingBlock) and thought.signature and isinstance(call, ToolUseBlock)
    assert first.usage.output_tokens > 0
    final = await sdk.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=5000, thinking=thinking,
                                      tools=[WEATHER], messages=[
        *ASK_WEATHER, {"role": "assistant", "content": first.content},  # the fake checks the signature
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}]}])
    assert "18 C" in final.content[-1].text
    assert fakes["anthropic"].requests[-1].body["messages"][1]["content"][0] == thought.model_dump()


async def test_another_providers_reasoning_is_a_thinking_block_without_a_signature(sdk):
    msg = await sdk.messages.create(model="google/gemini-2.5-flash", max_tokens=2000, messages=HI,
                                    thinking={"type": "enabled", "budget_tokens": 1024})
    thought = msg.content[0]
    assert isinstance(thought, ThinkingBlock) and thought.thinking and thought.signature == ""


# -- streams --------------------------------------------------------------------------------------------


@providers
async def test_a_streamed_message_reassembles_with_the_sdks_stream_helper(sdk, name):
    async with sdk.messages.stream(model=SERVING[name], max_tokens=100, messages=HI) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text.startswith(f"Hello from fake {name}") and text.endswith("You said: Hello Claude SDK")
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens == len(text.split())


@providers
async def test_a_streamed_tool_call_reassembles_and_the_loop_goes_on(sdk, name):
    async with sdk.messages.stream(model=SERVING[name], max_tokens=200, messages=ASK_WEATHER,
                                   tools=[WEATHER]) as stream:
        kinds = [e.type async for e in stream]
        first = await stream.get_final_message()
    assert "input_json" in kinds or name in ("google", "ollama")  # those send a call whole
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.input == {"city": "example"}
    async with sdk.messages.stream(model=SERVING[name], max_tokens=200, tools=[WEATHER], messages=[
            *ASK_WEATHER, {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}]}]) as s:
        final = await s.get_final_message()
    assert "18 C" in final.content[0].text


async def test_streamed_thinking_carries_its_signature(sdk):
    async with sdk.messages.stream(model="anthropic/claude-sonnet-4-5", max_tokens=2000, messages=HI,
                                   thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    thought, text = final.content
    assert thought.type == "thinking" and thought.signature and text.text.startswith("Hello from fake anthropic")


async def test_a_fallback_before_the_first_output_is_invisible_in_the_stream(sdk, fakes):
    fakes["anthropic"].script(faults.overloaded())
    async with sdk.messages.stream(model="agent:general-agent", max_tokens=100, messages=HI) as stream:
        final = await stream.get_final_message()
        headers = stream.response.headers
    assert final.content[0].text.startswith("Hello from fake openai")
    assert headers["x-llmrelay-provider"] == "openai" and headers["x-llmrelay-fallback"] == "true"


async def test_a_stream_that_breaks_after_output_raises_the_sdks_error(sdk, fakes):
    fakes["anthropic"].script(faults.stream_error(after_chunks=3))  # Anthropic's own "overloaded_error"
    got = []
    with pytest.raises(anthropic.APIStatusError) as err:
        async with sdk.messages.stream(model="anthropic/claude-3-5-sonnet-20241022", max_tokens=100,
                                       messages=HI) as stream:
            async for text in stream.text_stream:
                got.append(text)
    assert "".join(got) == "Hello from fake"
    assert err.value.body["error"]["type"] == "overloaded_error" and "broke after output" in err.value.message


# -- errors ---------------------------------------------------------------------------------------------


def anthropic_error(err: anthropic.APIStatusError, etype: str) -> str:
    body = err.body
    assert body["type"] == "error" and body["error"]["type"] == etype, body
    assert body["request_id"] == err.response.headers["request-id"] == err.request_id
    return body["error"]["message"]


async def test_a_bad_key_raises_authentication_error(sdk):
    with pytest.raises(anthropic.AuthenticationError) as err:
        await sdk.with_options(api_key="lr_not-a-key").messages.create(model="gpt-4o", max_tokens=10, messages=HI)
    assert "invalid or revoked API key" in anthropic_error(err.value, "authentication_error")


async def test_an_unknown_model_raises_not_found_error(sdk):
    with pytest.raises(anthropic.NotFoundError) as err:
        await sdk.messages.create(model="agent:no-such-agent", max_tokens=10, messages=HI)
    assert "no-such-agent" in anthropic_error(err.value, "not_found_error")


async def test_no_provider_answering_raises_an_api_error_naming_each_attempt(sdk, fakes):
    fakes["openai"].script(faults.http_error(503))
    with pytest.raises(anthropic.InternalServerError) as err:
        await sdk.messages.create(model="openai/gpt-4o", max_tokens=10, messages=HI)
    assert err.value.status_code == 502 and "openai/gpt-4o" in anthropic_error(err.value, "api_error")


async def test_a_conversation_too_long_for_every_link_is_anthropics_prompt_is_too_long(sdk, fakes):
    """Whoever refused it (here OpenAI), the refusal reads as Anthropic words it: a 400 invalid_request_error
    whose message starts "prompt is too long", which Claude clients look for to compact a conversation."""
    fakes["openai"].script(faults.http_error(400, code="context_length_exceeded"))
    with pytest.raises(anthropic.BadRequestError) as err:
        await sdk.messages.create(model="openai/gpt-4o", max_tokens=10, messages=HI)
    message = anthropic_error(err.value, "invalid_request_error")
    assert message.startswith("prompt is too long: no link of the chain took this request: openai/gpt-4o")


async def test_what_no_link_can_take_is_a_bad_request_naming_it(sdk):
    with pytest.raises(anthropic.BadRequestError) as err:
        await sdk.messages.create(model="openai/gpt-4o", max_tokens=10, messages=HI, extra_body={"top_k": 5})
    assert "top_k" in anthropic_error(err.value, "invalid_request_error")


async def test_unknown_fields_are_refused_as_anthropic_refuses_them(sdk):
    with pytest.raises(anthropic.BadRequestError) as err:
        await sdk.messages.create(model="gpt-4o", max_tokens=10, messages=HI, extra_body={"frobnicate": 1})
    assert anthropic_error(err.value, "invalid_request_error") == "frobnicate: Extra inputs are not permitted"


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 1, "rate_tpm": 0}

    async def test_the_request_over_the_limit_raises_rate_limit_error(self, sdk):
        await sdk.messages.create(model="gpt-4o", max_tokens=10, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as err:
            await sdk.messages.create(model="gpt-4o", max_tokens=10, messages=HI)
        assert "requests per minute" in anthropic_error(err.value, "rate_limit_error")
        assert int(err.value.response.headers["retry-after"]) >= 1


# -- count_tokens ---------------------------------------------------------------------------------------


async def test_count_tokens_asks_anthropic_and_matches_what_a_message_uses(sdk, fakes):
    ask = {"model": "anthropic/claude-3-5-sonnet-20241022", "system": "Be brief.", "messages": ASK_WEATHER,
           "tools": [WEATHER]}
    raw = await sdk.messages.with_raw_response.count_tokens(**ask)
    counted = (await raw.parse())
    assert raw.headers["x-llmrelay-token-count"] == "provider" and raw.headers["x-llmrelay-provider"] == "anthropic"
    sent = fakes["anthropic"].requests[-1]
    assert sent.path == "/v1/messages/count_tokens" and "max_tokens" not in sent.body
    msg = await sdk.messages.create(max_tokens=100, **ask)
    assert counted.input_tokens == msg.usage.input_tokens > 0


async def test_count_tokens_estimates_where_the_provider_cannot_count(sdk, fakes):
    for model in ("openai/gpt-4o", "anthropic/claude-no-such-model"):
        fakes["anthropic"].models = {"claude-3-5-sonnet-20241022"}  # the second model's count is a 404
        raw = await sdk.messages.with_raw_response.count_tokens(model=model, messages=[
            {"role": "user", "content": "x" * 400}])
        assert raw.headers["x-llmrelay-token-count"] == "estimate", model
        assert (await raw.parse()).input_tokens == 3 + 4 + 100  # per request, per message, 400 characters / 4


async def test_the_model_list_is_anthropics_paged_and_the_same_models_as_openais(sdk, client, keys):
    """The anthropic SDK's models.list() and retrieve() read Anthropic's shape from the path the openai SDK
    reads OpenAI's from: the same models, paged by limit / after_id / before_id."""
    openai_ids = [m["id"] for m in (await client.get("/v1/models", headers=keys.auth("alice"))).json()["data"]]
    first = await sdk.models.list()
    assert len(first.data) == 20 and first.has_more and first.first_id == openai_ids[0]
    every = [m async for m in await sdk.models.list(limit=7)]  # the SDK follows the pages
    assert [m.id for m in every] == openai_ids
    assert every[0].display_name == "General Assistant" and every[0].type == "model"
    before = await sdk.models.list(before_id=openai_ids[10], limit=3)
    assert [m.id for m in before.data] == openai_ids[7:10] and before.has_more
    claude = await sdk.models.retrieve("anthropic/claude-sonnet-4-5")
    assert (claude.max_input_tokens, claude.max_tokens) == (200_000, 64_000)
    assert claude.created_at.tzinfo is not None
    with pytest.raises(anthropic.BadRequestError):
        await sdk.models.list(limit=1001)
    with pytest.raises(anthropic.BadRequestError):
        await sdk.models.list(after_id="nobody/none")
    with pytest.raises(anthropic.NotFoundError):
        await sdk.models.retrieve("agent:no-such-agent")
