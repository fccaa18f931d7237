"""Prompt caching through /v1/messages with the official `anthropic` SDK as the client (in-process, over
httpx's ASGI transport): `cache_control` on a system block, a tool and the last user message reaches
Anthropic on exactly those blocks, the same request again reads the cache, and the ledger row counts and
prices the reads and writes; any other provider answers without being sent the hint; a request Anthropic
would refuse for its breakpoints falls through to the next link with the reason.  And Gemini's own token
count behind /v1/messages/count_tokens."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx2
import pytest
from sqlalchemy import select

from llmrelay.db.models import AIModelUsage

FIVE, HOUR = {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}
SYSTEM = "You are the weather desk of a small newspaper. Answer in one sentence, in plain words."
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CLAUDE = "anthropic/claude-3-5-sonnet-20241022"


def marked_request(model: str = CLAUDE) -> dict:
    """A Claude client's prompt-caching request: an hour on the tools, five minutes on the system prompt and
    on the last user message (longer lifetimes first, as Anthropic wants)."""
    return {"model": model, "max_tokens": 100,
            "system": [{"type": "text", "text": SYSTEM, "cache_control": FIVE}],
            "tools": [{**WEATHER, "cache_control": HOUR}],
            "messages": [{"role": "user", "content": "Is it going to rain in Paris tomorrow?"},
                         {"role": "assistant", "content": "Let me think about Paris."},
                         {"role": "user", "content": [
                             {"type": "text", "text": "And in Lyon?", "cache_control": FIVE}]}]}


@pytest.fixture
async def sdk(app, keys):
    """alice's Anthropic client (no SDK retries: a test must see the first answer)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    client = anthropic.AsyncAnthropic(base_url="http://llmrelay.test", api_key=keys.alice, http_client=http,
                                      max_retries=0)
    yield client
    await client.close()


async def ledger_row(app, raw) -> AIModelUsage:
    """The one ledger row of an answer."""
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(AIModelUsage.request_id == raw.headers["x-request-id"])
        rows = list((await s.execute(stmt)).scalars().all())
    assert len(rows) == 1, rows
    return rows[0]


def priced(row: AIModelUsage) -> Decimal:
    """The row's cost by its own unit prices (USD per thousand tokens): uncached input at the input price,
    cache reads at the cached price, cache writes at the cache-write price (the 1-hour ones at theirs), output
    at the output price."""
    uncached = row.prompt_tokens - row.cached_prompt_tokens - row.cache_write_tokens
    hour = row.cache_write_1h_price if row.cache_write_1h_price is not None else row.cache_write_price
    return (uncached * row.input_price + row.cached_prompt_tokens * row.cached_input_price
            + (row.cache_write_tokens - row.cache_write_1h_tokens) * row.cache_write_price
            + row.cache_write_1h_tokens * hour + row.completion_tokens * row.output_price) / 1000


async def test_breakpoints_reach_claude_on_their_blocks_and_the_same_request_then_reads_the_cache(app, sdk, fakes):
    raw = await sdk.messages.with_raw_response.create(**marked_request())
    first = await raw.parse()
    sent = fakes["anthropic"].requests[-1].body
    assert sent["tools"][0]["cache_control"] == HOUR
    assert sent["system"] == [{"type": "text", "text": SYSTEM, "cache_control": FIVE}]
    assert [m["content"] for m in sent["messages"]] == [
        "Is it going to rain in Paris tomorrow?", "Let me think about Paris.",
        [{"type": "text", "text": "And in Lyon?", "cache_control": FIVE}]]
    written = first.usage.cache_creation_input_tokens
    assert written > 0 and first.usage.cache_read_input_tokens == 0 and first.usage.input_tokens == 0
    row = await ledger_row(app, raw)
    assert (row.prompt_tokens, row.cache_write_tokens, row.cached_prompt_tokens) == (written, written, 0)
    hour = first.usage.cache_creation.ephemeral_1h_input_tokens  # the tools' 1-hour breakpoint
    assert 0 < hour < written and row.cache_write_1h_tokens == hour
    assert row.cost_usd == priced(row) == Decimal(raw.headers["x-llmrelay-cost-usd"])

    raw = await sdk.messages.with_raw_response.create(**marked_request())
    again = await raw.parse()
    assert (again.usage.cache_read_input_tokens, again.usage.cache_creation_input_tokens) == (written, 0)
    row = await ledger_row(app, raw)
    assert (row.prompt_tokens, row.cached_prompt_tokens, row.cache_write_tokens) == (written, written, 0)
    assert row.cached_input_price < row.input_price < row.cache_write_price  # so the prices below tell apart
    assert row.cost_usd == priced(row) == Decimal(raw.headers["x-llmrelay-cost-usd"])
    assert row.cost_usd == (written * row.cached_input_price + row.completion_tokens * row.output_price) / 1000


async def test_a_streamed_answer_reports_the_cache_read_too(sdk):
    await sdk.messages.create(**marked_request())
    async with sdk.messages.stream(**marked_request()) as stream:
        final = await stream.get_final_message()
    assert final.usage.cache_read_input_tokens > 0 and final.usage.cache_creation_input_tokens == 0


async def test_the_callers_system_breakpoint_marks_the_end_of_the_agents_and_callers_prompt(sdk, fakes):
    await sdk.messages.create(**{**marked_request("agent:general-agent")})
    [system] = fakes["anthropic"].requests[-1].body["system"]
    assert system["text"].startswith("You are a helpful, precise assistant.") and system["text"].endswith(SYSTEM)
    assert system["cache_control"] == FIVE


async def test_automatic_caching_marks_the_last_block_sent_to_claude(sdk, fakes):
    msg = await sdk.messages.create(model=CLAUDE, max_tokens=100, cache_control=HOUR, system=SYSTEM,
                                    messages=[{"role": "user", "content": "Is it going to rain in Paris?"}])
    sent = fakes["anthropic"].requests[-1].body
    assert "cache_control" not in sent and sent["system"] == SYSTEM
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Is it going to rain in Paris?", "cache_control": HOUR}]}]
    assert msg.usage.cache_creation_input_tokens > 0


@pytest.mark.parametrize("model", ["openai/gpt-4o", "google/gemini-2.0-flash", "openrouter/openai/gpt-4o",
                                   "ollama/llama3.1"])
async def test_other_providers_answer_and_are_not_sent_the_hint(app, sdk, fakes, model):
    raw = await sdk.messages.with_raw_response.create(**marked_request(model))
    msg = await raw.parse()
    provider = model.split("/")[0]
    assert raw.headers["x-llmrelay-provider"] == provider and msg.content[0].text.startswith("Hello from fake")
    sent = fakes[provider].requests[-1].body
    assert "cache_control" not in json.dumps(sent) and "And in Lyon?" in json.dumps(sent)
    assert (await ledger_row(app, raw)).status == "success"


async def test_more_breakpoints_than_claude_takes_fall_through_with_the_reason(app, sdk, fakes):
    five = [{"type": "text", "text": f"Part {i} of the question.", "cache_control": FIVE} for i in range(5)]
    raw = await sdk.messages.with_raw_response.create(model="agent:general-agent", max_tokens=100,
                                                      messages=[{"role": "user", "content": five}])
    msg = await raw.parse()
    assert raw.headers["x-llmrelay-provider"] == "openai" and raw.headers["x-llmrelay-fallback"] == "true"
    assert msg.content[0].text.startswith("Hello from fake openai")
    assert fakes["anthropic"].requests == []  # refused before sending, not by Anthropic
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        rows = (await s.execute(select(AIModelUsage).where(AIModelUsage.request_id == raw.headers["x-request-id"])
                                .order_by(AIModelUsage.attempt))).scalars().all()
    assert [(r.provider, r.status, r.error_kind) for r in rows] == [
        ("anthropic", "failed", "bad_request"), ("openai", "fallback", None)]
    assert "at most 4 prompt-cache breakpoints (cache_control); the request has 5" in rows[0].error_message


async def test_a_breakpoint_of_an_hour_after_one_of_five_minutes_falls_through_too(sdk, fakes):
    request = marked_request("agent:general-agent")
    request["tools"][0]["cache_control"] = FIVE
    request["system"][0]["cache_control"] = HOUR
    raw = await sdk.messages.with_raw_response.create(**request)
    assert raw.headers["x-llmrelay-provider"] == "openai" and fakes["anthropic"].requests == []


async def test_count_tokens_takes_breakpoints_and_claude_counts_the_marked_prompt(sdk, fakes):
    request = marked_request()
    del request["max_tokens"]
    raw = await sdk.messages.with_raw_response.count_tokens(**request, cache_control=FIVE)
    counted = await raw.parse()
    assert raw.headers["x-llmrelay-token-count"] == "provider"
    sent = fakes["anthropic"].requests[-1]
    assert sent.path == "/v1/messages/count_tokens" and sent.body["tools"][0]["cache_control"] == HOUR
    msg = await sdk.messages.create(**marked_request())
    assert counted.input_tokens == msg.usage.cache_creation_input_tokens > 0


async def test_gemini_counts_the_tokens_itself(sdk, fakes):
    ask = {"model": "google/gemini-2.0-flash", "system": SYSTEM, "tools": [WEATHER],
           "messages": [{"role": "user", "content": "Is it going to rain in Paris tomorrow?"}]}
    raw = await sdk.messages.with_raw_response.count_tokens(**ask)
    counted = await raw.parse()
    assert raw.headers["x-llmrelay-token-count"] == "provider" and raw.headers["x-llmrelay-provider"] == "google"
    sent = fakes["google"].requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.0-flash:countTokens"
    assert sent.body["generateContentRequest"]["model"] == "models/gemini-2.0-flash"
    assert set(sent.body["generateContentRequest"]) == {"model", "contents", "systemInstruction", "tools"}
    msg = await sdk.messages.create(max_tokens=100, **ask)
    assert counted.input_tokens == msg.usage.input_tokens > 0
