"""/api/ai/agents: listing, asking (JSON and SSE), conversations, auth and bad input."""

import orjson
import pytest

from llmrelay.testing import faults


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


async def test_every_api_call_needs_a_valid_key(client, keys):
    r = await client.get("/api/ai/agents")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 401 and "API key" in r.json()["detail"]
    r = await client.get("/api/ai/agents", headers={"authorization": "Bearer lr_nope"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    assert (await client.get("/api/ai/agents", headers={"x-api-key": keys.alice})).status_code == 200


async def test_agents_list_shows_chains_with_enabled_links_and_reasons(client, keys, monkeypatch):
    r = await client.get("/api/ai/agents", headers=keys.auth("alice"))
    agents = {a["id"]: a for a in r.json()}
    general = agents["general-agent"]
    assert general["costTier"] == "medium" and general["defaultProvider"] == "anthropic"
    assert [p["provider"] for p in general["supportedProviders"]] == [
        "anthropic", "openai", "google", "openrouter", "ollama"]
    assert all(p["enabled"] for p in general["supportedProviders"])
    assert general["config"] is None


async def test_asking_an_agent_answers_the_seed_plan_shape_and_records_it(app, client, keys, fakes):
    fakes["anthropic"].script(faults.overloaded())
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                          json={"agentId": "general-agent", "message": "Hello API"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["usedProvider"] == d["provider"] == "openai" and d["fallbackUsed"] is True
    assert d["response"].startswith("Hello from fake openai")
    assert [a["status"] for a in d["attemptedProviders"]] == ["failed", "success"]
    assert d["tokensUsed"]["total"] == d["tokensUsed"]["prompt"] + d["tokensUsed"]["completion"]
    assert isinstance(d["costUsd"], str) and float(d["costUsd"]) > 0
    assert d["conversationId"] and d["requestId"] == r.headers["x-request-id"]
    await app.state.relay.ledger.recorder.flush()
    from sqlalchemy import select

    from llmrelay.db.models import AIModelUsage

    async with app.state.relay.ledger.sessions() as s:
        rows = (await s.execute(select(AIModelUsage).where(AIModelUsage.request_id == d["requestId"]))).scalars().all()
    assert sorted((r.status, r.provider) for r in rows) == [("failed", "anthropic"), ("fallback", "openai")]
    alice = await app.state.keys.principal(keys.alice)
    assert {r.user_id for r in rows} == {alice.user_id}


async def test_a_conversation_continues_by_id_and_is_private(client, keys, fakes):
    first = (await client.post("/api/ai/agents", headers=keys.auth("alice"),
                               json={"agentId": "web-dev-agent", "message": "My name is Ada."})).json()
    cid = first["conversationId"]
    second = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                               json={"agentId": "web-dev-agent", "message": "What is my name?", "conversationId": cid})
    assert second.status_code == 200 and second.json()["conversationId"] == cid
    sent = fakes["anthropic"].requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "My name is Ada."
    stolen = await client.post("/api/ai/agents", headers=keys.auth("bob"),
                               json={"agentId": "web-dev-agent", "message": "Hi", "conversationId": cid})
    assert stolen.status_code == 404 and stolen.json()["field"] == "conversationId"


async def test_streaming_answers_attempt_delta_and_done_events(client, keys, fakes):
    fakes["anthropic"].script(faults.http_error(500))
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                          json={"agentId": "general-agent", "message": "Stream please", "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [e for e, _ in events]
    assert names[0] == "attempt" and names[-1] == "done" and "delta" in names
    text = "".join(d["text"] for e, d in events if e == "delta")
    done = events[-1][1]
    assert done["response"] == text and done["usedProvider"] == "openai" and done["fallbackUsed"] is True
    assert events[0][1]["status"] == "failed" and events[0][1]["provider"] == "anthropic"


async def test_accept_event_stream_also_streams(client, keys):
    r = await client.post("/api/ai/agents", headers={**keys.auth("alice"), "accept": "text/event-stream"},
                          json={"agentId": "local-agent", "message": "Hi"})
    assert sse_events(r.text)[-1][0] == "done"


async def test_a_stream_that_breaks_after_text_ends_with_an_error_event(client, keys, fakes):
    fakes["anthropic"].script(faults.stream_error(after_chunks=2, code="overloaded_error"))
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                          json={"agentId": "general-agent", "message": "Hi", "stream": True})
    events = sse_events(r.text)
    assert events[-1][0] == "error"
    err = events[-1][1]
    assert err["errorKind"] == "overloaded" and err["response"] == "Hello from"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"agentId": "nope", "message": "Hi"}, 404, "agentId"),
    ({"agentId": "general-agent"}, 422, "message"),
    ({"agentId": "general-agent", "message": ""}, 422, "message"),
    ({"agentId": "general-agent", "message": "Hi", "conversationHistory": [{"role": "robot", "content": "x"}]},
     422, "conversationHistory.0.role"),
    ({"agentId": "general-agent", "message": "Hi", "preferredProvider": "acme"}, 400, "preferredProvider"),
    ({"agentId": "general-agent", "message": "Hi", "temperature": 3}, 422, "temperature"),
])
async def test_bad_input_is_problem_json_naming_the_field(client, keys, body, status, field):
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json=body)
    assert r.status_code == status, r.text
    p = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert p["status"] == status and p["field"] == field and p["title"] and p["type"].startswith("https://")


async def test_invalid_json_is_400(client, keys):
    r = await client.post("/api/ai/agents", headers={**keys.auth("alice"), "content-type": "application/json"},
                          content=b"{not json")
    assert r.status_code == 400 and r.json()["type"].endswith("invalid-json")


async def test_a_body_over_the_limit_is_413(client, keys, app):
    big = b'{"agentId": "general-agent", "message": "' + b"x" * (app.state.settings.max_body_bytes + 10) + b'"}'
    r = await client.post("/api/ai/agents", headers={**keys.auth("alice"), "content-type": "application/json"},
                          content=big)
    assert r.status_code == 413 and r.json()["status"] == 413


async def test_all_links_failing_is_502_with_every_attempt(client, keys, fakes):
    for name in ("anthropic", "google", "ollama"):
        fakes[name].script(faults.http_error(503))
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                          json={"agentId": "web-dev-agent", "message": "Hi"})
    assert r.status_code == 502
    assert [a["provider"] for a in r.json()["attemptedProviders"]] == ["anthropic", "google", "ollama"]
