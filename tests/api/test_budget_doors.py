"""A budget holds at every door: past its hard limit the agents API and `llmrelay chat` are served by the
chain's free local model (and say the answer was downgraded), and /v1's doors, whose chains here have no free
link, refuse with 402 in their own error shape, before any provider is called."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, insert, select

from llmrelay.db.budgets import BudgetSpec
from llmrelay.db.models import AIModelUsage

HELLO = [{"role": "user", "content": "Hello"}]


async def _over_budget(app, name: str) -> str:
    relay = app.state.relay
    who = await relay.principal(name)
    spec = await relay.budgets.store.put(BudgetSpec("", who.user_id, None, Decimal("0.05")))
    relay.budgets.changed(spec, spec.scope)
    async with relay.ledger.engine.begin() as conn:
        await conn.execute(insert(AIModelUsage).values(
            id=uuid.uuid4(), request_id=uuid.uuid4().hex, attempt=1, user_id=who.user_id, agent_id="general-agent",
            provider="openai", model="gpt-4o", status="success", prompt_tokens=1, completion_tokens=1,
            total_tokens=2, cost_usd=Decimal("0.05"), unpriced=False, cost_mismatch=False, latency_ms=1,
            created_at=datetime.now(UTC)))
    return who.user_id


async def _rows(app, user_id: str) -> int:
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.engine.connect() as conn:
        return (await conn.execute(select(func.count()).where(AIModelUsage.user_id == user_id))).scalar()


async def test_past_the_limit_every_door_is_held_to_the_budget(app, client, keys, fakes, settings):
    user_id = await _over_budget(app, "alice")
    auth = keys.auth("alice")

    r = await client.post("/api/ai/agents", headers=auth, json={"agentId": "general-agent", "message": "Hello"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["usedProvider"] == "ollama" and answer["budgetDowngraded"] is True and answer["costUsd"] == "0"
    skipped = [a for a in answer["attemptedProviders"] if a["status"] == "skipped"]
    assert len(skipped) == 4 and all(a["error"].startswith(f"budget user:{user_id}:") for a in skipped)
    before = await _rows(app, user_id)

    refusals = {
        "/v1/chat/completions": {"model": "openai/gpt-4o", "messages": HELLO},
        "/v1/responses": {"model": "openai/gpt-4o", "input": "Hello"},
        "/v1/embeddings": {"model": "openai/text-embedding-3-small", "input": "Hello"},
        "/v1/messages": {"model": "anthropic/claude-3-5-sonnet-20241022", "max_tokens": 64, "messages": HELLO},
    }
    for path, body in refusals.items():
        r = await client.post(path, headers=auth, json=body)
        assert r.status_code == 402, (path, r.text)
        error = r.json()["error"]
        if path == "/v1/messages":
            assert r.json()["type"] == "error" and error["type"] == "billing_error"
        else:
            assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
        assert f"budget user:{user_id}" in error["message"] and "resets at" in error["message"]
        assert r.json()["resetsAt"].endswith("+00:00") and r.json()["limitUsd"] == "0.05"
    assert await _rows(app, user_id) == before  # refused before any provider was called

    bob = await client.post("/v1/chat/completions", headers=keys.auth("bob"),
                            json={"model": "openai/gpt-4o", "messages": HELLO})
    assert bob.status_code == 200 and "x-llmrelay-budget-downgraded" not in bob.headers  # alice's budget only

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMRELAY_") and not k.endswith(
        ("_API_KEY", "_BASE_URL"))}
    env.update(fakes.env(), LLMRELAY_HOME=str(settings.home), LLMRELAY_MAX_RETRIES="0")
    await app.state.relay.budgets.aclose()  # this process's lease back, as at shutdown
    cli = subprocess.run([sys.executable, "-m", "llmrelay", "chat", "--agent", "general-agent", "--user", "alice",
                          "--json", "Hello"], env=env, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert '"usedProvider": "ollama"' in cli.stdout and '"budgetDowngraded": true' in cli.stdout
