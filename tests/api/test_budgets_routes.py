"""/api/ai/budgets: setting, reading and removing budgets (admins write; a user reads only the budgets on
them), exact decimal money, validation naming the field, and a budget set here stopping a request at /v1,
on SQLite and on PostgreSQL."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import insert

from llmrelay.api.routes.budgets import BudgetList, BudgetOut
from llmrelay.db.models import AIModelUsage
from llmrelay.db.types import utcnow

URL = "/api/ai/budgets"


@pytest.fixture
def settings_overrides(db_url):
    return {"database_url": db_url}


@pytest.fixture
async def ids(app, keys):
    return {name: (await app.state.keys.principal(getattr(keys, name))).user_id for name in ("admin", "alice", "bob")}


async def put(client, keys, body, who="admin"):
    return await client.put(URL, headers=keys.auth(who), json=body)


async def scopes(client, keys, who, query=""):
    r = await client.get(URL + query, headers=keys.auth(who))
    assert r.status_code == 200, r.text
    return sorted(b["scope"] for b in r.json()["budgets"])


async def spend(app, user_id, agent_id, cost):
    """A ledger row of `cost` USD, now (what an earlier request cost)."""
    async with app.state.relay.ledger.engine.begin() as conn:
        await conn.execute(insert(AIModelUsage).values(
            id=uuid.uuid4(), request_id=uuid.uuid4().hex, attempt=1, user_id=user_id, agent_id=agent_id,
            provider="openai", model="gpt-4o", status="success", prompt_tokens=1, completion_tokens=1,
            total_tokens=2, cost_usd=Decimal(cost), unpriced=False, cost_mismatch=False, latency_ms=1,
            created_at=utcnow()))


async def test_an_admin_sets_reads_and_removes_a_budget_with_exact_money(client, keys, ids):
    # 18 significant digits: no float carries them, so the number must be read from the body's text
    raw = (b'{"userId": "%s", "agentId": "general-agent", "limitUsd": 123456.123456789012, '
           b'"period": "month", "resetDay": 15, "softPercent": 50, "unpriced": "allow", '
           b'"webhookUrl": "https://hooks.example.com/budget"}') % ids["alice"].encode()
    r = await client.put(URL, headers={**keys.auth("admin"), "content-type": "application/json"}, content=raw)
    assert r.status_code == 200, r.text
    saved = r.json()
    BudgetOut.model_validate(saved)  # the documented shape
    assert saved["scope"] == f"user:{ids['alice']}/agent:general-agent"
    assert saved["limitUsd"] == "123456.123456789012"
    assert saved["softUsd"] == "61728.061728394506"  # half of it, exact to the pico-dollar
    assert (saved["period"], saved["resetDay"], saved["softPercent"], saved["unpriced"], saved["webhookUrl"]) == (
        "month", 15, 50, "allow", "https://hooks.example.com/budget")
    assert (saved["spentUsd"], saved["reservedUsd"], saved["level"]) == ("0", "0", "ok")
    assert saved["periodStart"][8:10] == saved["resetsAt"][8:10] == "15"

    listed = (await client.get(URL, headers=keys.auth("admin"))).json()
    BudgetList.model_validate(listed)
    assert listed == {"budgets": [saved]}

    again = await put(client, keys, {"userId": ids["alice"], "agentId": "general-agent", "limitUsd": "0.000000000001"})
    assert again.status_code == 200, again.text
    changed = again.json()
    assert (changed["id"], changed["createdAt"]) == (saved["id"], saved["createdAt"])  # the same budget, replaced
    assert (changed["limitUsd"], changed["period"], changed["resetDay"], changed["softPercent"], changed["unpriced"],
            changed["webhookUrl"]) == ("0.000000000001", "month", 1, 80, "refuse", None)

    r = await client.delete(f"{URL}?userId={ids['alice']}&agentId=general-agent", headers=keys.auth("admin"))
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(URL, headers=keys.auth("admin"))).json() == {"budgets": []}
    r = await client.delete(f"{URL}?userId={ids['alice']}&agentId=general-agent", headers=keys.auth("admin"))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_only_an_admin_may_set_or_remove_a_budget(client, keys, ids):
    r = await put(client, keys, {"userId": ids["alice"], "limitUsd": "100"}, who="alice")
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    assert await scopes(client, keys, "admin") == []
    assert (await put(client, keys, {"userId": ids["alice"], "limitUsd": "1"})).status_code == 200
    r = await client.delete(f"{URL}?userId={ids['alice']}", headers=keys.auth("alice"))
    assert r.status_code == 403
    assert await scopes(client, keys, "admin") == [f"user:{ids['alice']}"]


async def test_a_user_reads_only_the_budgets_on_them(client, keys, ids):
    alice, bob = ids["alice"], ids["bob"]
    for body in ({"userId": alice, "limitUsd": 10}, {"userId": alice, "agentId": "general-agent", "limitUsd": 5},
                 {"agentId": "general-agent", "limitUsd": 50}, {"userId": bob, "limitUsd": 7}):
        assert (await put(client, keys, body)).status_code == 200
    mine = [f"user:{alice}", f"user:{alice}/agent:general-agent"]
    assert await scopes(client, keys, "alice") == mine  # not the agent-wide budget: it counts others' spend
    assert await scopes(client, keys, "alice", f"?userId={alice}") == mine
    assert await scopes(client, keys, "alice", "?agentId=general-agent") == [f"user:{alice}/agent:general-agent"]
    assert await scopes(client, keys, "bob") == [f"user:{bob}"]
    r = await client.get(f"{URL}?userId={bob}", headers=keys.auth("alice"))
    assert r.status_code == 403 and r.json()["field"] == "userId"

    assert len(await scopes(client, keys, "admin")) == 4
    assert await scopes(client, keys, "admin", f"?userId={bob}") == [f"user:{bob}"]
    assert await scopes(client, keys, "admin", "?agentId=general-agent") == [
        "agent:general-agent", f"user:{alice}/agent:general-agent"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"limitUsd": "1"}, 422, "userId"),
    ({"limitUsd": "0"}, 422, "limitUsd"),
    ({"limitUsd": -1}, 422, "limitUsd"),
    ({"limitUsd": "1e3"}, 422, "limitUsd"),
    ({"limitUsd": "0.0000000000001"}, 422, "limitUsd"),  # finer than the ledger's pico-dollar
    ({"limitUsd": "1000000.000000000001"}, 422, "limitUsd"),
    ({"limitUsd": True}, 422, "limitUsd"),
    ({}, 422, "limitUsd"),
    ({"limitUsd": "1", "period": "year"}, 422, "period"),
    ({"limitUsd": "1", "period": "week", "resetDay": 3}, 422, "resetDay"),
    ({"limitUsd": "1", "resetDay": 32}, 422, "resetDay"),
    ({"limitUsd": "1", "softPercent": 0}, 422, "softPercent"),
    ({"limitUsd": "1", "softPercent": 101}, 422, "softPercent"),
    ({"limitUsd": "1", "unpriced": "sometimes"}, 422, "unpriced"),
    ({"limitUsd": "1", "webhookUrl": "ftp://example.com/x"}, 422, "webhookUrl"),
    ({"limitUsd": "1", "webhookUrl": "not a url"}, 422, "webhookUrl"),
    ({"limitUsd": "1", "limit": "2"}, 422, "limit"),
    ({"limitUsd": "1", "agentId": "no-such-agent"}, 404, "agentId"),
    ({"limitUsd": "1", "userId": "no-such-user"}, 404, "userId"),
])
async def test_a_bad_budget_is_refused_naming_the_field(client, keys, ids, body, status, field):
    if "userId" not in body and field not in ("userId",):
        body = {"userId": ids["alice"], **body}
    r = await put(client, keys, body)
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["field"] == field
    if status == 422:
        assert problem["detail"].startswith(f"{field}: ") and problem["type"].endswith("/invalid-field")
    else:
        assert problem["type"].endswith("/unknown-agent" if field == "agentId" else "/unknown-user")
    assert await scopes(client, keys, "admin") == []


async def test_a_body_that_is_not_json_is_a_400(client, keys):
    r = await client.put(URL, headers={**keys.auth("admin"), "content-type": "application/json"}, content=b"{")
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-json")
    r = await client.put(URL, headers={**keys.auth("admin"), "content-type": "application/json"},
                         content=b'{"userId": "x", "limitUsd": NaN}')  # no JSON number, though Python reads it
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-json")


async def test_removing_needs_a_scope(client, keys):
    r = await client.delete(URL, headers=keys.auth("admin"))
    assert r.status_code == 422 and r.json()["field"] == "userId"


async def test_a_hard_budget_already_spent_stops_the_users_requests_with_402(app, client, keys, ids):
    await spend(app, ids["alice"], "general-agent", "0.01")
    r = await put(client, keys, {"userId": ids["alice"], "limitUsd": "0.000001"})
    assert r.status_code == 200, r.text
    status = r.json()
    assert (status["spentUsd"], status["level"]) == ("0.01", "hard")

    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["type"] == "insufficient_quota" and "budget" in error["message"]
    assert ids["alice"] in error["message"]

    r = await client.post("/v1/chat/completions", headers=keys.auth("bob"),  # bob has no budget
                          json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200, r.text

    assert (await client.delete(f"{URL}?userId={ids['alice']}", headers=keys.auth("admin"))).status_code == 204
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),  # removed: serves at once
                          json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200, r.text


async def test_the_agents_api_answers_402_as_a_problem_naming_the_budget(app, client, keys, ids):
    await spend(app, ids["alice"], "code-review-agent", "0.02")
    r = await put(client, keys, {"userId": ids["alice"], "limitUsd": "0.01"})
    assert r.status_code == 200, r.text
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),  # no free link in its chain
                          json={"agentId": "code-review-agent", "message": "Hi"})
    assert r.status_code == 402, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/budget-exceeded") and "budget" in problem["detail"]
    assert (problem["budget"], problem["spentUsd"], problem["limitUsd"]) == (f"user:{ids['alice']}", "0.02", "0.01")

    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),  # a free local model is never stopped
                          json={"agentId": "general-agent", "message": "Hi"})
    assert r.status_code == 200, r.text
    assert (r.json()["usedProvider"], r.json()["budgetDowngraded"]) == ("ollama", True)
