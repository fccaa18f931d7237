"""Every attempt of every request becomes one row, with the right status, tokens and cost."""

from decimal import Decimal

from sqlalchemy import select

from llmrelay.db.models import AIModelUsage
from llmrelay.testing import faults
from llmrelay.types import Outcome, TextDelta


async def rows(ledger, request_id=None):
    await ledger.recorder.flush()
    async with ledger.sessions() as s:
        q = select(AIModelUsage).order_by(AIModelUsage.request_id, AIModelUsage.attempt)
        if request_id:
            q = q.where(AIModelUsage.request_id == request_id)
        return (await s.execute(q)).scalars().all()


async def test_every_attempt_of_a_fallback_request_is_recorded_with_its_status(relay, ledger, fakes, monkeypatch):
    fakes["anthropic"].script(faults.overloaded())
    fakes["openai"].script(faults.http_error(500))
    result = await relay.chat("general-agent", "Hello ledger", user="alice")
    got = await rows(ledger, result.request_id)
    assert [(r.attempt, r.provider, r.status, r.error_kind) for r in got] == [
        (1, "anthropic", "failed", "overloaded"), (2, "openai", "failed", "server_error"),
        (3, "google", "fallback", None)]
    served = got[-1]
    assert served.user_id == "alice" and served.agent_id == "general-agent"
    assert served.prompt_tokens == result.usage.input_tokens > 0
    assert served.completion_tokens == result.usage.output_tokens > 0
    assert served.total_tokens == served.prompt_tokens + served.completion_tokens
    # gemini-2.0-flash: $0.10 / $0.40 per 1M tokens (migration 0013, genai-prices' figures; 0002 said $0.075 / $0.30)
    expected = (Decimal(served.prompt_tokens) * Decimal("0.10") + Decimal(served.completion_tokens)
                * Decimal("0.40")) / Decimal(1_000_000)
    assert served.cost_usd == expected and served.unpriced is False
    assert served.input_price == Decimal("0.0001") and served.output_price == Decimal("0.0004")
    assert result.cost_usd == expected
    assert all(r.cost_usd == 0 for r in got[:2])
    assert served.created_at.tzinfo is not None


async def test_skipped_links_are_recorded_with_the_reason(settings, ledger, fakes, monkeypatch):
    from llmrelay.config import load_settings
    from llmrelay.relay import Relay

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    relay = Relay(load_settings(env_file=None, max_retries=0), ledger=ledger)
    result = await relay.chat("general-agent", "Hi")
    got = await rows(ledger, result.request_id)
    assert [(r.provider, r.status, r.error_message) for r in got] == [
        ("anthropic", "skipped", "ANTHROPIC_API_KEY is not set"), ("openai", "fallback", None)]
    assert got[0].user_id == "local" and got[0].cost_usd == 0


async def test_an_unpriced_model_costs_null_never_zero(relay, ledger):
    result = await relay.chat("general-agent", "Hi", preferred_provider="openai", preferred_model="gpt-9-unknown")
    (row,) = await rows(ledger, result.request_id)
    assert row.status == "success" and row.completion_tokens > 0
    assert row.cost_usd is None and row.unpriced is True
    assert result.cost_usd is None


async def test_a_streamed_answer_is_recorded_once_with_its_usage(relay, ledger):
    events = [e async for e in relay.stream("general-agent", "Hi there", user="bob")]
    done = events[-1]
    assert isinstance(done, Outcome) and done.error is None
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    (row,) = await rows(ledger, done.request_id)
    assert row.status == "success" and row.prompt_tokens > 0 and row.completion_tokens == len(text.split())


async def test_a_stream_the_caller_abandons_still_records_its_partial_usage(relay, ledger, fakes):
    fakes["anthropic"].script(faults.reply(text="one two three four five six", seconds=0.2))
    stream = relay.stream("general-agent", "Hi", user="carol")
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    got = await rows(ledger)
    assert len(got) == 1
    row = got[0]
    assert row.status == "failed" and row.error_message.startswith("cancelled by the caller")
    assert row.prompt_tokens > 0  # Anthropic reports input tokens in message_start
    assert row.cost_usd > 0


async def test_openrouter_reported_cost_is_kept_beside_ours_and_a_mismatch_is_flagged(relay, ledger, fakes):
    # a model whose price the fake and our table agree on (0013 moved llama-3.1-70b's to genai-prices' $0.72)
    result = await relay.chat("general-agent", "Hi", preferred_provider="openrouter",
                              preferred_model="openai/gpt-4o-mini")
    (row,) = await rows(ledger, result.request_id)
    assert row.provider_cost_usd == row.cost_usd and row.cost_mismatch is False
    fakes["openrouter"].prices["openai/gpt-4o-mini"]["prompt"] = "0.0000015"  # 10x what we know
    result = await relay.chat("general-agent", "Hi", preferred_provider="openrouter",
                              preferred_model="openai/gpt-4o-mini")
    (row,) = await rows(ledger, result.request_id)
    assert row.provider_cost_usd > row.cost_usd and row.cost_mismatch is True


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def test_a_row_counts_the_tool_calls_of_its_answer_and_the_images_sent(relay, ledger, fakes):
    from llmrelay.content import Image, Message, Text, Tool
    from llmrelay.types import RequestOptions

    turns = [Message("user", [Text("What is in this picture?"), Image(data=PNG, media_type="image/png")])]
    plain = await relay.run(None, "openai/gpt-4o", [Message("user", "What is in this picture?")])
    fakes["openai"].script(faults.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}},
                                                    {"name": "get_time", "arguments": {}}]))
    outcome = await relay.run(None, "openai/gpt-4o", turns, RequestOptions(
        tools=(Tool("get_weather"), Tool("get_time"))))
    assert [c.name for c in outcome.response.tool_calls] == ["get_weather", "get_time"]
    (row,) = await rows(ledger, outcome.request_id)
    (plain_row,) = await rows(ledger, plain.request_id)
    assert (row.tool_calls, row.images) == (2, 1) and (plain_row.tool_calls, plain_row.images) == (0, 0)
    # the image's input tokens, as the provider reports them, are priced with the rest
    assert row.prompt_tokens > plain_row.prompt_tokens and row.cost_usd > 0
    assert outcome.cost_usd == row.cost_usd


async def test_a_link_skipped_because_it_cannot_take_an_image_sent_none(relay, ledger):
    from llmrelay.content import Image, Message, Text
    from llmrelay.types import RequestOptions

    turns = [Message("user", [Text("What is this?"), Image(url="https://example.com/cat.png")])]
    outcome = await relay.run(None, "ollama/llava", turns, RequestOptions(fallbacks=("openai/gpt-4o",)))
    got = await rows(ledger, outcome.request_id)
    assert [(r.provider, r.status, r.images) for r in got] == [("ollama", "skipped", 0), ("openai", "fallback", 1)]
    assert "image_url" in got[0].error_message
