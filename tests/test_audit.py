"""The audit log: every admin action of the CLI (users, keys, prices, budgets) and of the budget routes
leaves exactly one row saying who, what, on what, with which new values and from where; never a key nor a
webhook's token; `llmrelay audit` and `GET /api/ai/audit` (admins only) read it.  On SQLite and PostgreSQL."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db import audit
from llmrelay.db.audit import Action, cli_actor, recent, safe_url
from llmrelay.db.budgets import BudgetSpec, BudgetStore
from llmrelay.db.engine import make_engine
from llmrelay.db.models import AuditEntry, Budget
from llmrelay.db.users import create_key, create_user
from llmrelay.testing import FakeServers

HOOK = "https://hook-user:hook-pass@hooks.example.com/budget/in?token=HOOKSECRET123#frag"
SAFE_HOOK = "https://hooks.example.com/…"
HOOK_SECRETS = ("HOOKSECRET123", "hook-pass", "hook-user", "frag")


@pytest.fixture(scope="module")
def audit_fakes():
    with FakeServers() as fakes:
        yield fakes


@pytest.fixture
def env(db_url, tmp_path, audit_fakes):
    audit_fakes.reset()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    base.update(audit_fakes.env(), LLMRELAY_HOME=str(tmp_path / "home"), LLMRELAY_DATABASE_URL=db_url,
                COLUMNS="200", LOGNAME="auditor", USER="auditor")
    return base


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def ok(env, *args) -> str:
    p = run(env, *args)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def entries(env, *args) -> list[dict]:
    return json.loads(ok(env, "audit", "--json", "--limit", "1000", *args))


def one_new(env, before: int) -> dict:
    """The one row the last command added (newest first), checked to be the only one."""
    rows = entries(env)
    assert len(rows) == before + 1, rows[: len(rows) - before]
    row = rows[0]
    assert (row["actor"], row["source"]) == ("cli:auditor", "cli") and row["at"].endswith("+00:00")
    return row


def test_every_cli_admin_action_leaves_one_row_and_never_a_secret(env, audit_fakes):
    assert entries(env) == []
    ok(env, "users", "add", "alice", "--rpm", "60")
    row = one_new(env, 0)
    assert (row["action"], row["target"]) == ("user.add", "alice")
    assert row["details"]["admin"] is False and row["details"]["rpmLimit"] == 60 and row["details"]["id"]
    alice_id = row["details"]["id"]

    key = ok(env, "keys", "create", "--user", "alice", "--name", "laptop").strip().splitlines()[-1]
    assert key.startswith("lr_")
    row = one_new(env, 1)
    assert (row["action"], row["target"], row["details"]) == (
        "key.create", key[:11], {"user": "alice", "label": "laptop"})

    ok(env, "keys", "revoke", key[:11])
    row = one_new(env, 2)
    assert (row["action"], row["target"], row["details"]) == (
        "key.revoke", key[:11], {"user": "alice", "label": "laptop"})

    ok(env, "budgets", "set", "--user", "alice", "--limit", "25.50", "--soft", "50", "--webhook", HOOK)
    row = one_new(env, 3)
    assert (row["action"], row["target"]) == ("budget.set", f"user:{alice_id}")
    assert row["details"] == {"limitUsd": "25.5", "period": "month", "resetDay": 1, "softPercent": 50,
                              "unpriced": "refuse", "webhookUrl": SAFE_HOOK}

    ok(env, "budgets", "clear", "--user", "alice")
    row = one_new(env, 4)
    assert (row["action"], row["target"], row["details"]) == ("budget.clear", f"user:{alice_id}", {})

    ok(env, "pricing", "set", "openai", "gpt-4o", "--input", "2.50", "--output", "10", "--cached-input", "1.25")
    row = one_new(env, 5)
    assert (row["action"], row["target"], row["details"]) == (
        "price.set", "openai/gpt-4o", {"input": "2.5", "output": "10", "cachedInput": "1.25", "cacheWrite": None,
                                       "cacheWrite1h": None})

    audit_fakes["openrouter"].prices["openai/gpt-4o"]["prompt"] = "0.000002"
    ok(env, "pricing", "sync")
    row = one_new(env, 6)
    assert (row["action"], row["target"]) == ("price.sync", "openrouter")
    assert row["details"]["added"] >= 1 and row["details"]["unknown"] == 1
    assert row["details"]["models"]["openrouter/openai/gpt-4o"]["input"] == "2"

    # what failed changed nothing and recorded nothing
    assert run(env, "budgets", "clear", "--user", "alice").returncode == 1
    assert run(env, "keys", "create", "--user", "nobody").returncode == 2
    assert run(env, "users", "add", "alice").returncode != 0
    assert len(entries(env)) == 7

    everything = ok(env, "audit", "--json", "--limit", "1000") + ok(env, "audit", "--limit", "1000")
    assert key not in everything and key[11:] not in everything
    for secret in HOOK_SECRETS:
        assert secret not in everything

    assert [r["action"] for r in entries(env, "--action", "key.create")] == ["key.create"]
    assert [r["action"] for r in json.loads(ok(env, "audit", "--json", "--limit", "2"))] == ["price.sync",
                                                                                           "price.set"]
    table = ok(env, "audit")
    assert "budget.set" in table and "cli:auditor" in table and f"user:{alice_id}" in table
    p = run(env, "audit", "--action", "user.delete")
    assert p.returncode == 2 and "--action: unknown action 'user.delete'" in p.stderr


# -- the store ------------------------------------------------------------------------------------


def test_cli_actor_is_the_os_user_or_unknown(monkeypatch):
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "ops")
    assert cli_actor() == "cli:ops"

    def nobody():
        raise OSError("No username set in the environment")

    monkeypatch.setattr(audit.getpass, "getuser", nobody)
    assert cli_actor() == "cli:unknown"


def test_a_url_is_kept_without_credentials_path_query_or_fragment():
    assert safe_url(HOOK) == SAFE_HOOK
    assert safe_url("http://[::1]:8080/h?x=1") == "http://[::1]:8080/…"
    assert safe_url("https://hooks.slack.com/services/T0/B0/SECRETTOKEN") == "https://hooks.slack.com/…"
    assert safe_url(None) is None


async def test_the_row_is_written_in_the_changes_transaction(db_url):
    """A budget whose audit row cannot be written is not set either (and a removal is not made)."""
    engine = make_engine(db_url)
    store = BudgetStore(engine)
    spec = BudgetSpec("", None, "general-agent", Decimal("5"))
    with pytest.raises(ValueError, match="unknown audit action"):
        await store.put(spec, Action("u1", "budget.bogus", spec.scope))
    async with engine.connect() as conn:
        assert (await conn.execute(select(Budget.id))).all() == []
        assert (await conn.execute(select(AuditEntry.id))).all() == []
    await store.put(spec, Action("u1", "budget.set", spec.scope, spec.audited(), "api"))
    with pytest.raises(ValueError, match="unknown audit source"):
        await store.delete(spec.scope, Action("u1", "budget.clear", spec.scope, source="web"))
    async with engine.connect() as conn:
        assert len((await conn.execute(select(Budget.id))).all()) == 1
        rows = await recent(conn)
    await engine.dispose()
    assert [(r["actor"], r["action"], r["target"], r["source"]) for r in rows] == [
        ("u1", "budget.set", "agent:general-agent", "api")]
    assert rows[0]["details"]["limitUsd"] == "5"


# -- the API --------------------------------------------------------------------------------------


@pytest.fixture
async def api(db_url, tmp_path):
    app = create_app(load_settings(env_file=None, home=tmp_path / "home", database_url=db_url, max_retries=0))
    async with app.router.lifespan_context(app):
        async with app.state.relay.ledger.sessions() as s, s.begin():
            admin = await create_user(s, "admin", is_admin=True)
            alice = await create_user(s, "alice")
            admin_key, _ = await create_key(s, admin)
            alice_key, _ = await create_key(s, alice)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://llmrelay.test") as client:
            yield client, {"admin": (admin.id, admin_key), "alice": (alice.id, alice_key)}


def auth(users, who):
    return {"authorization": f"Bearer {users[who][1]}"}


async def test_budget_routes_record_the_admin_and_only_admins_read_the_log(api):
    client, users = api
    admin_id, alice_id = users["admin"][0], users["alice"][0]
    r = await client.put("/api/ai/budgets", headers=auth(users, "admin"),
                         json={"userId": alice_id, "limitUsd": "123456.123456789012", "webhookUrl": HOOK})
    assert r.status_code == 200, r.text
    r = await client.delete(f"/api/ai/budgets?userId={alice_id}", headers=auth(users, "admin"))
    assert r.status_code == 204, r.text
    # refused writes record nothing
    assert (await client.put("/api/ai/budgets", headers=auth(users, "alice"),
                             json={"userId": alice_id, "limitUsd": "1"})).status_code == 403
    assert (await client.delete(f"/api/ai/budgets?userId={alice_id}", headers=auth(users, "admin"))).status_code == 404

    r = await client.get("/api/ai/audit", headers=auth(users, "admin"))
    assert r.status_code == 200, r.text
    got = r.json()["entries"]
    assert [(e["actor"], e["action"], e["target"], e["source"]) for e in got] == [
        (admin_id, "budget.clear", f"user:{alice_id}", "api"), (admin_id, "budget.set", f"user:{alice_id}", "api")]
    assert got[1]["details"] == {"limitUsd": "123456.123456789012", "period": "month", "resetDay": 1,
                                 "softPercent": 80, "unpriced": "refuse", "webhookUrl": SAFE_HOOK}
    for secret in (*HOOK_SECRETS, users["admin"][1], users["alice"][1]):
        assert secret not in r.text

    r = await client.get("/api/ai/audit?action=budget.set&limit=5", headers=auth(users, "admin"))
    assert [e["action"] for e in r.json()["entries"]] == ["budget.set"]
    r = await client.get("/api/ai/audit?limit=1", headers=auth(users, "admin"))
    assert [e["action"] for e in r.json()["entries"]] == ["budget.clear"]
    for bad in ("limit=0", "limit=1001", "action=user.delete"):
        r = await client.get(f"/api/ai/audit?{bad}", headers=auth(users, "admin"))
        assert r.status_code == 422, (bad, r.text)

    r = await client.get("/api/ai/audit", headers=auth(users, "alice"))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert "entries" not in r.text
    assert (await client.get("/api/ai/audit")).status_code == 401


async def test_the_first_start_records_the_admin_it_makes(db_url):
    from llmrelay.db.engine import make_engine, sessions
    from llmrelay.db.users import bootstrap_admin

    engine = make_engine(db_url)
    try:
        async with sessions(engine)() as s, s.begin():
            key = await bootstrap_admin(s)
        async with sessions(engine)() as s:
            rows = await recent(s)
    finally:
        await engine.dispose()
    assert key is not None
    assert sorted(r["action"] for r in rows) == ["key.create", "user.add"]
    assert all(r["actor"].endswith("(first start)") for r in rows)
    (made,) = [r for r in rows if r["action"] == "key.create"]
    assert key not in str(rows) and key.startswith(made["target"])  # the key's prefix, never the key


def test_users_limits_changes_a_users_own_limits_and_is_audited(env):
    ok(env, "users", "add", "limited", "--rpm", "10")
    said = ok(env, "users", "limits", "limited", "--rpm", "0", "--tpm", "5000")
    assert "requests/min unlimited, tokens/min 5,000" in " ".join(said.split())
    ok(env, "users", "limits", "limited", "--rpm", "default")
    listed = {u["name"]: u for u in json.loads(ok(env, "users", "list", "--json"))}
    assert (listed["limited"]["rpmLimit"], listed["limited"]["tpmLimit"]) == (None, 5000)
    changes = [e["details"] for e in entries(env, "--action", "user.limits")]
    assert changes == [{"rpmLimit": None}, {"rpmLimit": 0, "tpmLimit": 5000}]  # newest first
    bad = run(env, "users", "limits", "limited", "--rpm", "lots")
    assert bad.returncode == 2 and "neither a whole number" in bad.stderr
    nobody = run(env, "users", "limits", "nobody", "--tpm", "1")
    assert nobody.returncode != 0 and "no user named 'nobody'" in nobody.stderr
    assert run(env, "users", "limits", "limited").returncode == 2  # nothing to change
