"""The agents API and /v1/responses while the database is away: an answer is never lost for its storage.
A new exchange is answered with `conversationSaved: false` (whole and streamed; a response says
`store: false`, in a stream's last event too); continuing a stored conversation, whose history cannot be
read, is a 503 that says so; once the database is back both work again."""

from __future__ import annotations

import httpx
import pytest

from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db.users import create_key, create_user
from tests.outages.load import AGENT, AGENTS_TOML


@pytest.fixture
def fake_env(fakes, monkeypatch):
    for var, value in fakes.env().items():
        monkeypatch.setenv(var, value)


async def _client_and_key(app):
    async with app.state.relay.ledger.sessions() as s, s.begin():
        user = await create_user(s, "outage-user")
        key, _ = await create_key(s, user)
    return key


def _sse_done(text: str) -> dict:
    import json

    frames = [f for f in text.split("\n\n") if f.startswith("event: done")]
    assert frames, text
    return json.loads(frames[0].split("data: ", 1)[1])


def _sse_last(text: str) -> dict:
    import json

    frames = [f for f in text.split("\n\n") if f.strip()]
    return json.loads(frames[-1].split("data: ", 1)[1])


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_answers_go_out_while_the_conversation_store_is_away(database, fake_env, tmp_path):
    (tmp_path / "agents.toml").write_text(AGENTS_TOML)
    settings = load_settings(env_file=None, home=tmp_path / "home", database_url=database.url, max_retries=0,
                             agents_file=tmp_path / "agents.toml")
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://llmrelay.test", timeout=30) as client:
        auth = {"authorization": f"Bearer {await _client_and_key(app)}"}
        first = await client.post("/api/ai/agents", headers=auth, json={"agentId": AGENT, "message": "Hello"})
        assert first.status_code == 200 and first.json()["conversationSaved"] is True
        cid = first.json()["conversationId"]

        database.down()
        whole = await client.post("/api/ai/agents", headers=auth, json={"agentId": AGENT, "message": "Still there?"})
        assert whole.status_code == 200, whole.text
        assert (whole.json()["conversationSaved"], whole.json()["conversationId"]) == (False, None)
        assert whole.json()["response"]
        streamed = await client.post("/api/ai/agents", headers=auth,
                                     json={"agentId": AGENT, "message": "And streamed?", "stream": True})
        assert streamed.status_code == 200
        done = _sse_done(streamed.text)
        assert (done["conversationSaved"], done["conversationId"]) == (False, None) and done["response"]
        going_on = await client.post("/api/ai/agents", headers=auth,
                                     json={"agentId": AGENT, "message": "Go on", "conversationId": cid})
        assert going_on.status_code == 503 and going_on.headers["retry-after"] == "5"
        problem = going_on.json()
        assert problem["field"] == "conversationId" and "conversationHistory" in problem["detail"]

        database.up()
        again = await client.post("/api/ai/agents", headers=auth,
                                  json={"agentId": AGENT, "message": "Go on", "conversationId": cid})
        assert again.status_code == 200 and again.json()["conversationSaved"] is True
        assert again.json()["conversationId"] == cid


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_responses_go_out_unstored_while_the_database_is_away(database, fake_env, tmp_path):
    settings = load_settings(env_file=None, home=tmp_path / "home", database_url=database.url, max_retries=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://llmrelay.test", timeout=30) as client:
        auth = {"authorization": f"Bearer {await _client_and_key(app)}"}
        body = {"model": "openai/gpt-4o-mini", "input": "Hello"}
        first = await client.post("/v1/responses", headers=auth, json=body)
        assert first.status_code == 200 and first.json()["store"] is True

        database.down()
        away = await client.post("/v1/responses", headers=auth, json=body)
        assert away.status_code == 200, away.text
        assert away.json()["store"] is False and away.json()["output"]
        streamed = await client.post("/v1/responses", headers=auth, json={**body, "stream": True})
        assert streamed.status_code == 200
        last = _sse_last(streamed.text)
        assert last["type"] == "response.completed", last
        assert last["response"]["store"] is False and last["response"]["output"]
        going_on = await client.post("/v1/responses", headers=auth,
                                     json={**body, "previous_response_id": first.json()["id"]})
        assert going_on.status_code == 503 and going_on.json()["error"]["param"] == "previous_response_id"

        database.up()
        again = await client.post("/v1/responses", headers=auth,
                                  json={**body, "previous_response_id": first.json()["id"]})
        assert again.status_code == 200 and again.json()["store"] is True
