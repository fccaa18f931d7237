"""GET /api/ai/usage counts success per request and failure per attempt, and documents both in OpenAPI;
`successRate` keeps its attempt-level meaning for the clients that read it."""

from __future__ import annotations

from llmrelay.testing import faults

ASK = {"agentId": "local-agent", "message": "Hi there"}  # ollama/mistral, then ollama/llama3.2


async def test_a_request_answered_after_failed_attempts_counts_as_answered(app, client, keys, fakes):
    fakes["ollama"].script(faults.overloaded())  # the first link fails once; the second answers
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
    assert r.status_code == 200 and r.json()["fallbackUsed"], r.text
    fakes["ollama"].script(faults.overloaded(times=2))  # both links fail: no answer
    assert (await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)).status_code == 502
    await app.state.relay.ledger.recorder.flush()
    t = (await client.get("/api/ai/usage", headers=keys.auth("alice"))).json()["totals"]
    assert (t["requests"], t["calls"], t["successes"], t["failures"]) == (2, 4, 1, 3)
    assert t["requestSuccessRate"] == 0.5  # 1 of 2 requests answered
    assert t["attemptFailureRate"] == 0.75  # 3 of 4 attempts failed
    assert t["successRate"] == 0.25  # attempt-level, as before


async def test_the_openapi_document_says_which_rate_is_per_request_and_which_per_attempt(client):
    spec = (await client.get("/openapi.json")).json()
    props = spec["components"]["schemas"]["StatsOut"]["properties"]
    assert "per request" in props["requestSuccessRate"]["description"]
    assert "Failed attempts / attempts" in props["attemptFailureRate"]["description"]
    assert "Attempt-level" in props["successRate"]["description"]
