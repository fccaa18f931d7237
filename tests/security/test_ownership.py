"""User A on user B's resources, and a non-admin on admin data.

Alice owns a conversation, a saved config, ledger rows, a stored /v1/responses object and a budget
(set by the admin, with a webhook whose URL carries a token).  Bob, with his own live key, reaches for
each of them by every door that names one; alice reaches for what only an admin may read or change.
Each cell asserts the exact refusal in the route's shape, that nothing changed, and (the control) that
the owner or an admin still gets it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEBHOOK = "https://hooks.example.test/services/T0/B0/SECRET-webhook-token-77e1"


@dataclass
class Owned:
    conversation: str
    response: str
    request_ids: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def owned(matrix) -> Owned:
    c, alice = matrix.client, matrix.users.auth("alice")
    r = await c.post("/api/ai/agents", headers=alice, json={"agentId": "general-agent", "message": "Hello"})
    assert r.status_code == 200, r.text
    conversation, request_ids = r.json()["conversationId"], [r.json()["requestId"]]
    r = await c.post("/api/ai/config", headers=alice,
                     json={"agentId": "local-agent", "primaryProvider": "ollama", "primaryModel": "llama3.2"})
    assert r.status_code == 200, r.text
    r = await c.post("/v1/responses", headers=alice, json={"model": "agent:general-agent", "input": "Hi"})
    assert r.status_code == 200, r.text
    response = r.json()["id"]
    request_ids.append(r.headers["x-request-id"])
    r = await c.put("/api/ai/budgets", headers=matrix.users.auth("admin"),
                    json={"userId": matrix.users.ids["alice"], "limitUsd": "5", "webhookUrl": WEBHOOK})
    assert r.status_code == 200, r.text
    await matrix.app.state.relay.ledger.recorder.flush()
    return Owned(conversation, response, request_ids)


def problem(r, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["type"].endswith("/" + code) and body.get("field") == field


def openai_error(r, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"error"} and r.json()["error"]["code"] == code


# -- conversations --------------------------------------------------------------------------------------


async def test_another_users_conversation_is_not_found(matrix, owned):
    c, u = matrix.client, matrix.users
    problem(await c.get(f"/api/ai/conversations/{owned.conversation}", headers=u.auth("bob")), 404,
            "unknown-conversation", "conversationId")
    problem(await c.get(f"/api/ai/conversations/{owned.conversation}", headers=u.auth("admin")), 404,
            "unknown-conversation", "conversationId")  # a conversation is its owner's only, admins included
    r = await c.get(f"/api/ai/conversations/{owned.conversation}", headers=u.auth("alice"))
    assert r.status_code == 200 and len(r.json()["messages"]) == 2


async def test_another_users_conversation_cannot_be_continued(matrix, owned):
    c, u = matrix.client, matrix.users
    r = await c.post("/api/ai/agents", headers=u.auth("bob"), json={
        "agentId": "general-agent", "message": "What did alice ask?", "conversationId": owned.conversation})
    problem(r, 404, "unknown-conversation", "conversationId")
    r = await c.get(f"/api/ai/conversations/{owned.conversation}", headers=u.auth("alice"))
    assert len(r.json()["messages"]) == 2


# -- saved configs ----------------------------------------------------------------------------------------


async def test_another_users_configs_are_neither_listed_nor_reachable(matrix, owned):
    c, u = matrix.client, matrix.users
    alice_id = u.ids["alice"]
    r = await c.get("/api/ai/config", headers=u.auth("bob"))
    assert r.status_code == 200 and r.json() == []
    problem(await c.get(f"/api/ai/config?userId={alice_id}", headers=u.auth("bob")), 403, "forbidden", "userId")
    body = {"agentId": "local-agent", "primaryProvider": "ollama", "primaryModel": "mistral"}
    problem(await c.post(f"/api/ai/config?userId={alice_id}", headers=u.auth("bob"), json=body), 403, "forbidden",
            "userId")
    problem(await c.delete(f"/api/ai/config/local-agent?userId={alice_id}", headers=u.auth("bob")), 403, "forbidden",
            "userId")
    r = await c.get("/api/ai/config", headers=u.auth("alice"))
    assert [x["primaryModel"] for x in r.json()] == ["llama3.2"]
    r = await c.get(f"/api/ai/config?userId={alice_id}", headers=u.auth("admin"))  # the admin may
    assert r.status_code == 200 and [x["primaryModel"] for x in r.json()] == ["llama3.2"]


# -- usage rows -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/ai/usage", "/api/ai/usage/records", "/api/ai/usage/export?format=csv"])
async def test_another_users_usage_is_forbidden(matrix, owned, path):
    c, u = matrix.client, matrix.users
    sep = "&" if "?" in path else "?"
    problem(await c.get(f"{path}{sep}userId={u.ids['alice']}", headers=u.auth("bob")), 403, "forbidden", "userId")
    r = await c.get(f"{path}{sep}userId={u.ids['alice']}", headers=u.auth("admin"))
    assert r.status_code == 200


async def test_a_user_sees_only_their_own_rows(matrix, owned):
    c, u = matrix.client, matrix.users
    for who, sees in (("bob", False), ("alice", True), ("admin", True)):
        records = (await c.get("/api/ai/usage/records?limit=200", headers=u.auth(who))).json()["records"]
        export = (await c.get("/api/ai/usage/export?format=csv", headers=u.auth(who))).text
        for rid in owned.request_ids:
            assert any(rid in str(rec) for rec in records) is sees, (who, rid)
            assert (rid in export) is sees, (who, rid)
    groups = (await c.get("/api/ai/usage?groupBy=user", headers=u.auth("bob"))).json()["groups"]
    assert {g["userId"] for g in groups} <= {u.ids["bob"]}
    groups = (await c.get("/api/ai/usage?groupBy=user", headers=u.auth("alice"))).json()["groups"]
    assert {g["userId"] for g in groups} == {u.ids["alice"]}


async def test_the_usage_page_ignores_a_non_admins_user_filter(matrix, owned, new_session):
    bob = await new_session("bob")
    r = await bob.get(f"/usage?user={matrix.users.ids['alice']}")
    assert r.status_code == 200
    assert matrix.users.ids["alice"] not in r.text and "userId" not in r.text.split("apiQuery", 1)[1][:300]


# -- stored responses -------------------------------------------------------------------------------------


async def test_another_users_stored_response_is_not_found(matrix, owned):
    c, u = matrix.client, matrix.users
    openai_error(await c.get(f"/v1/responses/{owned.response}", headers=u.auth("bob")), 404, "not_found")
    openai_error(await c.delete(f"/v1/responses/{owned.response}", headers=u.auth("bob")), 404, "not_found")
    r = await c.post("/v1/responses", headers=u.auth("bob"), json={
        "model": "agent:general-agent", "input": "go on", "previous_response_id": owned.response})
    assert r.status_code == 404 and r.json()["error"]["param"] == "previous_response_id"
    r = await c.get(f"/v1/responses/{owned.response}", headers=u.auth("alice"))
    assert r.status_code == 200 and r.json()["id"] == owned.response


# -- budgets (admin data) ---------------------------------------------------------------------------------


async def test_another_users_budget_is_neither_listed_nor_readable(matrix, owned):
    c, u = matrix.client, matrix.users
    r = await c.get("/api/ai/budgets", headers=u.auth("bob"))
    assert r.status_code == 200 and r.json()["budgets"] == []
    problem(await c.get(f"/api/ai/budgets?userId={u.ids['alice']}", headers=u.auth("bob")), 403, "forbidden",
            "userId")


async def test_a_non_admin_cannot_set_or_remove_budgets(matrix, owned):
    c, u = matrix.client, matrix.users
    for who in ("alice", "bob"):  # not even on themselves
        problem(await c.put("/api/ai/budgets", headers=u.auth(who), json={"userId": u.ids[who], "limitUsd": "999"}),
                403, "forbidden")
        problem(await c.delete(f"/api/ai/budgets?userId={u.ids['alice']}", headers=u.auth(who)), 403, "forbidden")
    r = await c.get("/api/ai/budgets", headers=u.auth("admin"))
    assert [(b["userId"], b["limitUsd"]) for b in r.json()["budgets"]] == [(u.ids["alice"], "5")]


async def test_a_budgets_webhook_url_is_shown_to_admins_only(matrix, owned):
    """The webhook URL is admin data (it often carries a token); its user sees the budget without it."""
    c, u = matrix.client, matrix.users
    r = await c.get("/api/ai/budgets", headers=u.auth("alice"))
    assert r.status_code == 200 and [b["limitUsd"] for b in r.json()["budgets"]] == ["5"]
    assert WEBHOOK not in r.text and r.json()["budgets"][0]["webhookUrl"] is None
    r = await c.get("/api/ai/budgets", headers=u.auth("admin"))
    assert r.json()["budgets"][0]["webhookUrl"] == WEBHOOK


async def test_the_usage_page_shows_a_budgets_webhook_to_admins_only(matrix, owned, new_session):
    alice = await new_session("alice")
    r = await alice.get("/usage")
    assert r.status_code == 200 and "5" in r.text and WEBHOOK not in r.text
    admin = await new_session("admin")
    assert WEBHOOK in (await admin.get("/usage")).text
