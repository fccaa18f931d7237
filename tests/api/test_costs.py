"""One place prices a request: the cost an answer reports (`x-llmrelay-cost-usd` on /v1, `costUsd` on the
agents API, plain and streamed) is exactly (Decimal) the sum of its ledger rows' `cost_usd`, for every
provider, with fallbacks, cache reads and writes, and failed attempts that used tokens."""

from decimal import Decimal

import orjson
import pytest
from sqlalchemy import select

from llmrelay.db.models import AIModelUsage
from llmrelay.testing import faults

# a priced model of each provider (the seeded price table); usage with every part a price applies to
MODELS = {
    "anthropic": "claude-3-5-haiku-20241022", "openai": "gpt-4o-mini", "google": "gemini-2.5-flash",
    "openrouter": "meta-llama/llama-3.1-70b-instruct", "ollama": "llama3.2",
}
USAGE = {"input": 12_345, "output": 678, "cached_input": 1_000, "cache_write": 321}


async def rows(app, request_id: str) -> list[AIModelUsage]:
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(AIModelUsage.request_id == request_id).order_by(AIModelUsage.attempt)
        return list((await s.execute(stmt)).scalars().all())


def total(found: list[AIModelUsage]) -> Decimal:
    assert found and all(r.cost_usd is not None for r in found)
    return sum((r.cost_usd for r in found), Decimal(0))


@pytest.mark.parametrize("provider", list(MODELS))
async def test_a_v1_answers_cost_header_is_its_ledger_rows_sum_exactly(app, client, keys, fakes, provider):
    fakes[provider].script(faults.reply(text="priced answer", usage=USAGE))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json={
        "model": f"{provider}/{MODELS[provider]}", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200, r.text
    found = await rows(app, r.headers["x-request-id"])
    assert [x.provider for x in found] == [provider]
    assert Decimal(r.headers["x-llmrelay-cost-usd"]) == total(found)
    if provider != "ollama":
        assert total(found) > 0
    else:
        assert total(found) == 0  # every Ollama model is free, and priced as such (not unpriced)


@pytest.mark.parametrize("provider", ["anthropic", "openai", "google", "openrouter"])
async def test_a_fallback_answer_costs_every_attempt_and_says_so_exactly(app, client, keys, fakes, provider):
    """The first link's refusal used tokens (it falls through), the second answered: both are paid for."""
    first, second = provider, "ollama" if provider != "ollama" else "openai"
    fakes[first].script(faults.reply(text="no", finish={"anthropic": "refusal", "google": "SAFETY"}.get(
        first, "content_filter"), usage=USAGE))
    fakes[second].script(faults.reply(text="fine", usage={"input": 10, "output": 2}))
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json={
        "model": f"{first}/{MODELS[first]}", "models": [f"{second}/{MODELS[second]}"],
        "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200, r.text
    found = await rows(app, r.headers["x-request-id"])
    assert [(x.provider, x.status) for x in found] == [(first, "failed"), (second, "fallback")]
    assert found[0].cost_usd > 0
    assert Decimal(r.headers["x-llmrelay-cost-usd"]) == total(found)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_agents_api_cost_is_its_ledger_rows_sum_exactly(app, client, keys, fakes, stream):
    fakes["anthropic"].script(faults.overloaded())
    fakes["openai"].script(faults.reply(text="an answer", usage=USAGE))
    r = await client.post("/api/ai/agents", headers=keys.auth("bob"),
                          json={"agentId": "general-agent", "message": "Hi", "stream": stream})
    assert r.status_code == 200
    if stream:
        done = next(block for block in r.text.split("\n\n") if block.startswith("event: done"))
        answer = orjson.loads(done.split("data: ", 1)[1])
    else:
        answer = r.json()
    found = await rows(app, answer["requestId"])
    assert [x.status for x in found] == ["failed", "fallback"]
    assert Decimal(answer["costUsd"]) == total(found) > 0


async def test_a_stream_that_breaks_after_text_reports_what_its_rows_cost(app, client, keys, fakes):
    fakes["anthropic"].script(faults.stream_error(after_chunks=2, code="overloaded_error"))
    r = await client.post("/api/ai/agents", headers=keys.auth("bob"),
                          json={"agentId": "general-agent", "message": "Hi", "stream": True})
    error = next(block for block in r.text.split("\n\n") if block.startswith("event: error"))
    answer = orjson.loads(error.split("data: ", 1)[1])
    found = await rows(app, answer["requestId"])
    assert [x.status for x in found] == ["failed"] and found[0].prompt_tokens > 0
    assert Decimal(answer["costUsd"]) == total(found) > 0
