"""/api/ai/usage, /records and /export against what was really sent through /api/ai/agents (with
faults and token counts scripted at the fakes, so every figure is worked out by hand below), on
SQLite and on PostgreSQL."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from llmrelay.api.routes.usage import RecordsOut, UsageOut
from llmrelay.db.models import AIModelUsage
from llmrelay.ledger.records import COLUMNS, CSV_COLUMNS, PER_1M
from llmrelay.testing import faults


@pytest.fixture
def settings_overrides(db_url):
    return {"database_url": db_url}


@pytest.fixture
async def ids(app, keys):
    return {name: (await app.state.keys.principal(getattr(keys, name))).user_id for name in ("admin", "alice", "bob")}


async def ask(client, keys, who, agent):
    r = await client.post("/api/ai/agents", headers=keys.auth(who), json={"agentId": agent, "message": "Hi there"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def traffic(app, client, keys, fakes):
    """Four requests, five ledger rows:

    alice  r1 general-agent  anthropic/claude-3-5-sonnet-20241022 answers, 100 in + 50 out
              at $3 / $15 per 1M: 0.0003 + 0.00075                                 = $0.00105
           r2 general-agent  anthropic overloaded (failed, no tokens, $0), then
              openai/gpt-4o answers (a fallback), 200 in + 100 out at $2.50 / $10: = $0.0015
           r3 local-agent    ollama/mistral, 10 in + 5 out, priced by ollama's `*` row = $0
    bob    r4 general-agent  anthropic, 1000 in + 1000 out: 0.003 + 0.015             = $0.018
    """
    fakes["anthropic"].script(faults.reply(usage={"input": 100, "output": 50}))
    r1 = await ask(client, keys, "alice", "general-agent")
    fakes["anthropic"].script(faults.overloaded())
    fakes["openai"].script(faults.reply(usage={"input": 200, "output": 100}))
    r2 = await ask(client, keys, "alice", "general-agent")
    fakes["ollama"].script(faults.reply(usage={"input": 10, "output": 5}))
    r3 = await ask(client, keys, "alice", "local-agent")
    fakes["anthropic"].script(faults.reply(usage={"input": 1000, "output": 1000}))
    r4 = await ask(client, keys, "bob", "general-agent")
    assert [r["usedProvider"] for r in (r1, r2, r3, r4)] == ["anthropic", "openai", "ollama", "anthropic"]
    assert [r["costUsd"] for r in (r1, r2, r3, r4)] == ["0.00105", "0.0015", "0", "0.018"]
    await app.state.relay.ledger.recorder.flush()
    return r1, r2, r3, r4


async def rows(app, **where):
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(*(getattr(AIModelUsage, k) == v for k, v in where.items()))
        return list((await s.execute(stmt)).scalars().all())


def nearest_rank(values, percent):
    ordered = sorted(values)
    return ordered[-(-len(ordered) * percent // 100) - 1]


async def get(client, keys, who, path="/api/ai/usage", **params):
    r = await client.get(path, params=params, headers=keys.auth(who))
    assert r.status_code == 200, r.text
    return r.json()


def stats(d):
    """The figures of a totals/group object that can be worked out by hand (latency is checked apart)."""
    return {k: d[k] for k in ("requests", "calls", "skipped", "successes", "fallbacks", "failures", "successRate",
                              "fallbackRate", "costUsd", "costComplete", "unpricedCalls")} | {
        "tokens": (d["tokens"]["prompt"], d["tokens"]["completion"], d["tokens"]["total"])}


ALICE = {"requests": 3, "calls": 4, "skipped": 0, "successes": 3, "fallbacks": 1, "failures": 1, "successRate": 0.75,
         "fallbackRate": 1 / 3, "costUsd": "0.00255", "costComplete": True, "unpricedCalls": 0,
         "tokens": (310, 155, 465)}


async def test_a_users_usage_is_what_they_sent(app, client, keys, ids, traffic):
    d = await get(client, keys, "alice")
    assert stats(d["totals"]) == ALICE
    assert d["totals"]["costPerCall"] == "0.0006375" and d["totals"]["costPerRequest"] == "0.00085"
    assert d["groupBy"] is None and d["groups"] == []
    latencies = [r.latency_ms for r in await rows(app, user_id=ids["alice"])]
    assert d["totals"]["avgLatencyMs"] == pytest.approx(sum(latencies) / 4)
    assert d["totals"]["p95LatencyMs"] == nearest_rank(latencies, 95)
    now = datetime.now(UTC)
    assert now - timedelta(days=30, minutes=1) < datetime.fromisoformat(d["from"]) < now - timedelta(days=29)
    assert now - timedelta(minutes=1) < datetime.fromisoformat(d["to"]) <= now


async def test_breakdowns_by_provider_agent_model_day_and_user(client, keys, ids, traffic):
    by = {}
    for group_by in ("provider", "agent", "model", "day", "user"):
        d = await get(client, keys, "alice", groupBy=group_by)
        assert d["groupBy"] == group_by and stats(d["totals"]) == ALICE
        UsageOut.model_validate(d)  # the documented shape
        by[group_by] = d["groups"]
    providers = {g["provider"]: g for g in by["provider"]}
    assert list(providers) == ["anthropic", "ollama", "openai"]
    assert (providers["anthropic"]["calls"], providers["anthropic"]["failures"], providers["anthropic"]["successRate"],
            providers["anthropic"]["costUsd"]) == (2, 1, 0.5, "0.00105")
    assert (providers["openai"]["fallbacks"], providers["openai"]["fallbackRate"], providers["openai"]["costUsd"],
            providers["openai"]["tokens"]["total"]) == (1, 1.0, "0.0015", 300)
    assert providers["ollama"]["costUsd"] == "0" and providers["ollama"]["costComplete"] is True
    assert [(g["agentId"], g["requests"], g["costUsd"]) for g in by["agent"]] == [
        ("general-agent", 2, "0.00255"), ("local-agent", 1, "0")]
    assert [(g["provider"], g["model"], g["calls"]) for g in by["model"]] == [
        ("anthropic", "claude-3-5-sonnet-20241022", 2), ("ollama", "mistral", 1), ("openai", "gpt-4o", 1)]
    assert [(g["day"], g["requests"]) for g in by["day"]] == [(datetime.now(UTC).date().isoformat(), 3)]
    assert [(g["userId"], g["requests"]) for g in by["user"]] == [(ids["alice"], 3)]  # never anyone else


async def test_an_admin_sees_everyone_unless_naming_a_user(client, keys, ids, traffic):
    d = await get(client, keys, "admin", groupBy="user")
    assert (d["totals"]["requests"], d["totals"]["costUsd"]) == (4, "0.02055")
    assert sorted((g["userId"], g["costUsd"]) for g in d["groups"]) == sorted(
        [(ids["alice"], "0.00255"), (ids["bob"], "0.018")])
    d = await get(client, keys, "admin", userId=ids["bob"])
    assert (d["totals"]["requests"], d["totals"]["calls"], d["totals"]["costUsd"], d["totals"]["tokens"]["total"]) == (
        1, 1, "0.018", 2000)
    assert stats((await get(client, keys, "admin", userId=ids["alice"]))["totals"]) == ALICE


async def test_a_user_cannot_read_anothers_usage(client, keys, ids, traffic):
    for path in ("/api/ai/usage", "/api/ai/usage/records", "/api/ai/usage/export"):
        r = await client.get(path, params={"userId": ids["bob"]}, headers=keys.auth("alice"))
        assert r.status_code == 403 and r.json()["field"] == "userId", (path, r.text)
        assert (await client.get(path)).status_code == 401
    assert stats((await get(client, keys, "alice", userId=ids["alice"]))["totals"]) == ALICE


async def test_filters_by_agent_and_provider(client, keys, traffic):
    d = await get(client, keys, "alice", agentId="local-agent")
    assert (d["totals"]["requests"], d["totals"]["tokens"]["total"], d["totals"]["costUsd"]) == (1, 15, "0")
    d = await get(client, keys, "alice", provider="openai")
    assert (d["totals"]["calls"], d["totals"]["fallbacks"], d["totals"]["costUsd"]) == (1, 1, "0.0015")
    d = await get(client, keys, "alice", **{"from": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
                                            "to": (datetime.now(UTC) + timedelta(days=2)).date().isoformat()})
    assert d["totals"]["requests"] == 0 and d["totals"]["costUsd"] == "0" and d["totals"]["successRate"] is None


async def test_the_window_is_half_open_in_utc(app, client, keys, ids):
    """Rows at chosen moments around 2025-03-10 (UTC): `from` inclusive, `to` exclusive, a date
    means midnight, a time without an offset means UTC, an offset is honoured."""
    moments = [datetime(2025, 3, 9, 23, 59, 59, 999000, UTC), datetime(2025, 3, 10, tzinfo=UTC),
               datetime(2025, 3, 10, 23, 59, 59, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC)]
    async with app.state.relay.ledger.sessions() as s, s.begin():
        await s.execute(insert(AIModelUsage), [
            {"id": uuid.uuid4(), "request_id": uuid.uuid4().hex, "attempt": 1, "user_id": ids["alice"],
             "agent_id": "general-agent", "provider": "openai", "model": "gpt-4o", "status": "success",
             "cost_usd": Decimal("0.001"), "latency_ms": 10 * (i + 1), "created_at": when}
            for i, when in enumerate(moments)])

    async def calls(**params):
        return (await get(client, keys, "alice", **params))["totals"]["calls"]

    assert await calls(**{"from": "2025-03-10", "to": "2025-03-11"}) == 2
    assert await calls(**{"from": "2025-03-10T01:00:00+01:00", "to": "2025-03-11T00:00:00"}) == 2
    assert await calls(**{"from": "2025-03-09T23:59:59.999", "to": "2025-03-11T00:00:00.001Z"}) == 4
    d = await get(client, keys, "alice", groupBy="day", **{"from": "2025-03-01", "to": "2025-04-01"})
    assert [(g["day"], g["calls"], g["costUsd"]) for g in d["groups"]] == [
        ("2025-03-09", 1, "0.001"), ("2025-03-10", 2, "0.002"), ("2025-03-11", 1, "0.001")]
    assert (d["from"], d["to"]) == ("2025-03-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00")
    assert (await get(client, keys, "alice"))["totals"]["calls"] == 0  # the default: the last 30 days


@pytest.mark.parametrize(("path", "params", "status", "field"), [
    ("/api/ai/usage", {"from": "10/03/2025"}, 400, "from"),
    ("/api/ai/usage", {"to": "yesterday"}, 400, "to"),
    ("/api/ai/usage", {"from": "2025-03-11", "to": "2025-03-10"}, 400, "from"),
    ("/api/ai/usage", {"from": "2025-03-10", "to": "2025-03-10"}, 400, "from"),
    ("/api/ai/usage", {"to": "0001-01-02"}, 400, "to"),
    ("/api/ai/usage", {"groupBy": "week"}, 422, "groupBy"),
    ("/api/ai/usage", {"provider": "acme"}, 422, "provider"),
    ("/api/ai/usage/records", {"status": "ok"}, 422, "status"),
    ("/api/ai/usage/records", {"limit": 0}, 422, "limit"),
    ("/api/ai/usage/records", {"limit": 1001}, 422, "limit"),
    ("/api/ai/usage/records", {"cursor": "not-a-cursor"}, 400, "cursor"),
    ("/api/ai/usage/export", {"format": "xlsx"}, 400, "format"),
    ("/api/ai/usage/export", {"from": "soon"}, 400, "from"),
])
async def test_bad_parameters_are_problems_naming_the_field(client, keys, path, params, status, field):
    r = await client.get(path, params=params, headers=keys.auth("alice"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == field and r.json()["status"] == status


async def walk(client, keys, who, limit, **params):
    """Every page of /records; returns the records and the number of pages."""
    out, cursor, pages = [], None, 0
    while True:
        page = await get(client, keys, who, "/api/ai/usage/records", limit=limit,
                         **params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        out += page["records"]
        assert len(page["records"]) <= limit
        cursor = page["nextCursor"]
        if cursor is None:
            return out, pages


async def test_records_pages_walk_every_row_once_newest_first(app, client, keys, ids, traffic):
    everything, pages = await walk(client, keys, "admin", limit=2)
    RecordsOut.model_validate({"records": everything, "nextCursor": None})
    assert pages == 3 and len(everything) == 5
    assert {r["id"] for r in everything} == {str(r.id) for r in await rows(app)}
    keys_in_order = [(r["createdAt"], r["id"]) for r in everything]
    assert keys_in_order == sorted(keys_in_order, reverse=True)
    mine, _ = await walk(client, keys, "alice", limit=1)
    assert len(mine) == 4 and {r["userId"] for r in mine} == {ids["alice"]}
    assert {r["requestId"] for r in mine} == {r["requestId"] for r in traffic[:3]}
    failed = await get(client, keys, "alice", "/api/ai/usage/records", status="failed")
    assert [(r["provider"], r["errorKind"], r["costUsd"]) for r in failed["records"]] == [
        ("anthropic", "overloaded", "0")]
    by_request = {r["requestId"]: r for r in mine if r["status"] != "failed"}
    r1 = by_request[traffic[0]["requestId"]]
    assert (r1["promptTokens"], r1["completionTokens"], r1["costUsd"], r1["status"]) == (100, 50, "0.00105", "success")
    assert by_request[traffic[1]["requestId"]]["status"] == "fallback"


def csv_value(value):
    """A record's JSON value as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def test_the_csv_export_streams_the_same_rows_as_the_records(client, keys, traffic):
    params = {"from": "2020-01-01", "to": "2100-01-01"}
    r = await client.get("/api/ai/usage/export", params={**params, "format": "csv"}, headers=keys.auth("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="llmrelay-usage-2020-01-01-2100-01-01.csv"'
    table = list(csv.DictReader(io.StringIO(r.text, newline="")))
    records, _ = await walk(client, keys, "admin", limit=1000, **params)
    assert len(table) == len(records) == 5
    by_id = {rec["id"]: rec for rec in records}
    camel = {c: c.split("_")[0] + "".join(p.title() for p in c.split("_")[1:]) for c in (*COLUMNS, *PER_1M.values())}
    for row in table:
        assert list(row) == list(CSV_COLUMNS)  # the prices per 1M tokens, named so (as the records give them)
        rec = by_id[row["id"]]
        assert {c: row[c] for c in COLUMNS if c not in PER_1M} == {
            c: csv_value(rec[camel[c]]) for c in COLUMNS if c not in PER_1M}
        for header in PER_1M.values():
            assert row[header] == ("" if rec[camel[header]] is None else rec[camel[header]])
    assert [row["created_at"] for row in table] == sorted(row["created_at"] for row in table)  # oldest first

    r = await client.get("/api/ai/usage/export", headers=keys.auth("alice"))
    assert r.status_code == 200
    assert {row["request_id"] for row in csv.DictReader(io.StringIO(r.text))} == {x["requestId"] for x in traffic[:3]}
