"""GET /api/ai/conversations/{id}: a conversation's messages, for its owner only."""

from __future__ import annotations


async def test_owner_reads_the_messages_in_order(client, keys, fakes):
    first = (await client.post("/api/ai/agents", headers=keys.auth("alice"),
                               json={"agentId": "local-agent", "message": "My name is Alice."})).json()
    cid = first["conversationId"]
    second = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                               json={"agentId": "local-agent", "message": "And yours?", "conversationId": cid})
    assert second.status_code == 200
    r = await client.get(f"/api/ai/conversations/{cid}", headers=keys.auth("alice"))
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == cid and body["agentId"] == "local-agent" and body["title"] == "My name is Alice."
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[0]["content"] == "My name is Alice." and msgs[2]["content"] == "And yours?"
    assert msgs[1]["content"] == first["response"] and msgs[1]["provider"] == first["usedProvider"]
    assert msgs[1]["model"] == first["model"] and msgs[1]["requestId"] == first["requestId"]
    assert msgs[0]["provider"] is None and msgs[0]["createdAt"].endswith("Z")


async def test_another_user_and_an_unknown_id_get_the_same_404(client, keys, fakes):
    cid = (await client.post("/api/ai/agents", headers=keys.auth("alice"),
                             json={"agentId": "local-agent", "message": "Secret"})).json()["conversationId"]
    for who, path in (("bob", cid), ("admin", cid), ("alice", "no-such-conversation")):
        r = await client.get(f"/api/ai/conversations/{path}", headers=keys.auth(who))
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["field"] == "conversationId"
    assert (await client.get(f"/api/ai/conversations/{cid}")).status_code == 401


async def test_an_answer_comes_back_with_its_badge_from_the_ledger(app, client, keys, fakes):
    """After a reload the page shows each answer's badge again: tokens, cost, time, and the
    fallback with the failed attempt, as the ledger recorded them for that request."""
    from llmrelay.testing import faults

    fakes["anthropic"].script(faults.http_error(529))
    sent = (await client.post("/api/ai/agents", headers=keys.auth("alice"),
                              json={"agentId": "general-agent", "message": "Hello?"})).json()
    assert sent["fallbackUsed"] is True
    await app.state.relay.ledger.recorder.flush()
    msgs = (await client.get(f"/api/ai/conversations/{sent['conversationId']}", headers=keys.auth("alice"))).json()[
        "messages"]
    assert msgs[0]["usage"] is None  # the question
    usage = msgs[1]["usage"]
    assert usage["tokensUsed"] == sent["tokensUsed"] and usage["costUsd"] == sent["costUsd"]
    assert usage["fallbackUsed"] is True and 0 <= usage["generationTime"] <= sent["generationTime"]
    fields = ("provider", "model", "status", "errorKind")
    assert [{k: a[k] for k in fields} for a in usage["attemptedProviders"]] == [
        {k: a[k] for k in fields} for a in sent["attemptedProviders"]]
    assert usage["attemptedProviders"][0]["status"] == "failed" and usage["attemptedProviders"][0]["error"]


async def test_a_message_with_more_than_text_comes_back_with_its_parts(client, keys, fakes):
    """An image question, an answer that only calls a tool, its result, and the final answer: each
    message keeps its parts beside its text, in the shape the agents API takes them back."""

    from llmrelay.api.routes.conversations import ConversationOut
    from llmrelay.testing import faults

    png = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
    image = {"type": "image", "data": png, "mediaType": "image/png"}
    fakes["anthropic"].script(faults.reply(tool_calls=[{"name": "zoom", "arguments": {"factor": 2}}]))
    first = (await client.post("/api/ai/agents", headers=keys.auth("alice"), json={
        "agentId": "general-agent", "message": [{"type": "text", "text": "Zoom in"}, image],
        "tools": [{"name": "zoom",
                   "parameters": {"type": "object", "properties": {"factor": {"type": "integer"}}}}]})).json()
    cid, [call] = first["conversationId"], first["toolCalls"]
    result = {"type": "toolResult", "callId": call["id"], "content": "zoomed", "isError": True, "name": "zoom"}
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                          json={"agentId": "general-agent", "conversationId": cid, "message": [result]})
    assert r.status_code == 200, r.text
    body = (await client.get(f"/api/ai/conversations/{cid}", headers=keys.auth("alice"))).json()
    ConversationOut.model_validate(body)  # the documented shape
    assert body["title"] == "Zoom in"
    msgs = body["messages"]
    assert [(m["role"], m["content"]) for m in msgs[:3]] == [("user", "Zoom in"), ("assistant", ""), ("user", "")]
    assert msgs[0]["parts"] == [{"type": "text", "text": "Zoom in"}, image]
    assert msgs[1]["parts"] == [call] and msgs[1]["provider"] == "anthropic"
    assert msgs[2]["parts"] == [result]
    assert "parts" not in msgs[3] and msgs[3]["content"] == r.json()["response"]
