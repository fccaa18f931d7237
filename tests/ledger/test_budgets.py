"""Budgets through the one pipeline, on SQLite and PostgreSQL: calendar periods in UTC, the soft downgrade to a
cheaper link, the hard stop that still lets a free local model serve, unpriced models, exact settlement."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from llmrelay.db.budgets import BudgetSpec, BudgetStore
from llmrelay.db.models import AIModelUsage, BudgetLease
from llmrelay.types import BudgetExceeded, Link, Message, RequestOptions

HELLO = [Message("user", "Say hello.")]


async def rows(ledger, request_id):
    await ledger.recorder.flush()
    async with ledger.sessions() as s:
        q = select(AIModelUsage).where(AIModelUsage.request_id == request_id).order_by(AIModelUsage.attempt)
        return (await s.execute(q)).scalars().all()


async def spend(ledger, user_id, agent_id, cost, at):
    """A ledger row of `cost` USD at the moment `at` (what an earlier request cost)."""
    async with ledger.engine.begin() as conn:
        await conn.execute(insert(AIModelUsage).values(
            id=uuid.uuid4(), request_id=uuid.uuid4().hex, attempt=1, user_id=user_id, agent_id=agent_id,
            provider="openai", model="gpt-4o", status="success", prompt_tokens=1, completion_tokens=1,
            total_tokens=2, cost_usd=Decimal(cost), unpriced=False, cost_mismatch=False, latency_ms=1,
            created_at=at))


async def set_budget(relay, **kw) -> BudgetSpec:
    spec = await relay.budgets.store.put(BudgetSpec("", **kw))
    relay.budgets.changed(spec, spec.scope)
    return spec


def worst(relay, link: str, request_chars: int = len("Say hello."), max_tokens: int = 64) -> Decimal:
    provider, model = link.split("/", 1)
    return relay.budgets.worst_case(Link(provider, model), request_chars, 0, 0, max_tokens)


@pytest.fixture
async def started(relay):
    await relay.start()
    return relay


async def test_a_month_is_the_calendar_month_in_utc(started, ledger):
    relay = started
    spec = await set_budget(relay, user_id="alice", agent_id=None, limit_usd=Decimal("1.00"))
    await spend(ledger, "alice", "general-agent", "0.40", datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))
    await spend(ledger, "alice", "general-agent", "0.25", datetime(2027, 2, 1, 0, 0, 0, tzinfo=UTC))
    await spend(ledger, "bob", "general-agent", "0.99", datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC))
    relay.budgets.clock = lambda: datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    (jan,) = await relay.budgets.status([spec])
    relay.budgets.clock = lambda: datetime(2027, 2, 1, 0, 0, 0, tzinfo=UTC)
    (feb,) = await relay.budgets.status([spec])
    assert (jan.start, jan.end, jan.spent) == (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC),
                                               Decimal("0.40"))
    assert (feb.start, feb.end, feb.spent) == (datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC),
                                               Decimal("0.25"))


async def test_a_request_on_the_last_second_of_a_month_is_held_to_it_and_the_next_second_starts_afresh(
        started, ledger):
    relay = started
    await set_budget(relay, user_id="alice", agent_id=None, limit_usd=Decimal("0.50"))
    await spend(ledger, "alice", "general-agent", "0.50", datetime(2027, 1, 31, 12, tzinfo=UTC))
    relay.budgets.clock = lambda: datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(BudgetExceeded) as refused:
        await relay.run(await relay.principal("alice"), "openai/gpt-4o", HELLO)
    assert refused.value.budget == "user:alice" and refused.value.limit_usd == Decimal("0.50")
    assert refused.value.resets_at == datetime(2027, 2, 1, tzinfo=UTC)
    assert refused.value.spent_usd == Decimal("0.50")
    relay.budgets.clock = lambda: datetime(2027, 2, 1, 0, 0, 0, tzinfo=UTC)
    outcome = await relay.run(await relay.principal("alice"), "openai/gpt-4o", HELLO)
    assert outcome.error is None and outcome.budget_downgraded is False


async def test_between_soft_and_hard_a_cheaper_link_serves_and_the_ledger_says_why(started, ledger):
    relay = started  # general-agent: Claude Sonnet, then GPT-4o, then Gemini Flash, ...
    sonnet, gpt, flash = (worst(relay, x) for x in ("anthropic/claude-3-5-sonnet-20241022", "openai/gpt-4o",
                                                     "google/gemini-2.0-flash"))
    assert flash < gpt < sonnet
    spent = Decimal("1.00")
    limit = spent + (gpt + flash) / 2  # room for Flash's worst case, not for GPT-4o's nor Sonnet's
    await set_budget(relay, user_id=None, agent_id="general-agent", limit_usd=limit, soft_percent=50)
    await spend(ledger, "someone", "general-agent", spent, datetime.now(UTC))
    outcome = await relay.run(await relay.principal("alice"), "agent:general-agent", HELLO,
                              RequestOptions(max_tokens=64))
    assert outcome.error is None and outcome.link == Link("google", "gemini-2.0-flash")
    assert outcome.budget_downgraded is True
    got = await rows(ledger, outcome.request_id)
    assert [(r.provider, r.status, r.budget_downgraded) for r in got] == [
        ("anthropic", "skipped", True), ("openai", "skipped", True), ("google", "fallback", True)]
    assert got[1].error_message.startswith("budget agent:general-agent: openai/gpt-4o could cost up to")
    (status,) = await relay.budgets.status()
    assert status.level == "soft"


async def test_past_the_hard_limit_only_a_free_local_model_serves(started, ledger):
    relay = started
    await set_budget(relay, user_id="alice", agent_id=None, limit_usd=Decimal("0.10"))
    await spend(ledger, "alice", "general-agent", "0.10", datetime.now(UTC))
    alice = await relay.principal("alice")
    outcome = await relay.run(alice, "openai/gpt-4o", HELLO, RequestOptions(fallbacks=("ollama/mistral",)))
    assert outcome.error is None and outcome.link == Link("ollama", "mistral") and outcome.budget_downgraded
    assert outcome.cost_usd == 0
    got = await rows(ledger, outcome.request_id)
    assert [(r.provider, r.status) for r in got] == [("openai", "skipped"), ("ollama", "fallback")]
    free = await relay.run(alice, "ollama/mistral", HELLO)  # a free chain is never held back
    assert free.error is None and free.budget_downgraded is False
    with pytest.raises(BudgetExceeded, match="budget user:alice leaves no link"):
        await relay.run(alice, "openai/gpt-4o", HELLO, RequestOptions(fallbacks=("google/gemini-2.0-flash",)))
    await spend(ledger, "bob", "general-agent", "5", datetime.now(UTC))  # another user's spend is not alice's
    assert (await relay.run(await relay.principal("bob"), "openai/gpt-4o", HELLO)).error is None


async def test_an_unpriced_model_is_refused_under_a_budget_unless_allowed(started, ledger):
    relay = started
    await set_budget(relay, user_id="alice", agent_id=None, limit_usd=Decimal("10"))
    alice = await relay.principal("alice")
    outcome = await relay.run(alice, "openai/gpt-9-unknown", HELLO, RequestOptions(fallbacks=("openai/gpt-4o",)))
    got = await rows(ledger, outcome.request_id)
    assert [(r.model, r.status) for r in got] == [("gpt-9-unknown", "skipped"), ("gpt-4o", "fallback")]
    assert "has no known price and the budget refuses unpriced models" in got[0].error_message
    await set_budget(relay, user_id="alice", agent_id=None, limit_usd=Decimal("10"), unpriced="allow")
    outcome = await relay.run(alice, "openai/gpt-9-unknown", HELLO)
    assert outcome.error is None and outcome.cost_usd is None  # never counted as 0
    (row,) = await rows(ledger, outcome.request_id)
    assert row.unpriced is True and row.cost_usd is None


async def test_what_a_request_reserves_settles_to_its_exact_cost_in_the_ledger(started, ledger):
    relay = started
    spec = await set_budget(relay, user_id="alice", agent_id=None, limit_usd=Decimal("50"))
    alice = await relay.principal("alice")
    outcomes = await asyncio.gather(*(relay.run(alice, "openai/gpt-4o", HELLO) for _ in range(20)))
    costs = sum(o.cost_usd for o in outcomes)
    assert costs > 0
    await ledger.recorder.flush()
    async with ledger.engine.connect() as conn:
        (used,) = (await conn.execute(select(BudgetLease.used))).scalars().all()  # one lease served them all
    assert used == costs  # the ledger writer added each row's cost to the lease, in its own transaction
    (status,) = await relay.budgets.status([spec])
    assert status.spent == costs and status.reserved > 0  # the lease still holds the rest of its share
    await relay.budgets.aclose()  # given back: it holds only what is not yet in the ledger, i.e. nothing
    (status,) = await relay.budgets.status([spec])
    assert (status.spent, status.reserved) == (costs, 0)


async def test_no_lease_ever_hands_out_more_than_the_period_has_left(started, ledger):
    relay = started
    store: BudgetStore = relay.budgets.store
    spec = await set_budget(relay, user_id="carol", agent_id=None, limit_usd=Decimal("1.00"))
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    until = datetime(2100, 1, 1, tzinfo=UTC)
    grants = [await store.take_lease(spec, start, end, Decimal("0.3"), Decimal("0.1"), until) for _ in range(5)]
    assert [g.amount for g in grants] == [Decimal("0.3"), Decimal("0.3"), Decimal("0.3"), Decimal("0.1"), 0]
    assert grants[-1].lease_id is None and grants[-1].reserved == Decimal("1.00")


async def test_embeddings_are_held_to_the_same_budgets(started, ledger):
    relay = started
    await set_budget(relay, user_id="dave", agent_id=None, limit_usd=Decimal("0.01"))
    dave = await relay.principal("dave")
    done = await relay.embed(dave, "openai/text-embedding-3-small", ["a text", "another"])
    assert done.error is None and done.cost_usd > 0 and done.budget_downgraded is False
    await spend(ledger, "dave", "general-agent", "0.01", datetime.now(UTC))  # spent by another process
    await relay.budgets.aclose()  # which ours sees when it takes its next lease
    with pytest.raises(BudgetExceeded, match="budget user:dave"):
        await relay.embed(dave, "openai/text-embedding-3-small", ["a text"])


@pytest.fixture
async def receiver():
    """A webhook receiver on 127.0.0.1: every POST's headers and JSON body, in order."""
    from aiohttp import web

    got: list[tuple[dict, dict]] = []

    async def take(request):
        got.append((dict(request.headers), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", take)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook", got
    await runner.cleanup()


async def _until(check, seconds=5.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_webhook_hears_each_threshold_once_per_period_whichever_process_crosses_it(
        started, ledger, settings, receiver):
    from llmrelay.db.models import BudgetEvent
    from llmrelay.relay import Relay

    relay = started
    url, got = receiver
    await set_budget(relay, user_id="erin", agent_id=None, limit_usd=Decimal("1.00"), soft_percent=50,
                     webhook_url=url)
    await spend(ledger, "erin", "general-agent", "0.60", datetime.now(UTC))
    erin = await relay.principal("erin")
    assert (await relay.run(erin, "openai/gpt-4o", HELLO)).error is None
    await _until(lambda: len(got) == 1)
    headers, body = got[0]
    assert body["type"] == "budget.soft" and body["budget"] == "user:erin" and headers["Idempotency-Key"] == body["id"]
    assert Decimal(body["spentUsd"]) >= Decimal("0.60") and body["limitUsd"] == "1" and body["softUsd"] == "0.5"

    other = Relay(settings, ledger=ledger)  # another process on the same database: the event is not sent again
    try:
        assert (await other.run(erin, "openai/gpt-4o", HELLO)).error is None
        await spend(ledger, "erin", "general-agent", "0.40", datetime.now(UTC))
        await other.budgets.aclose()
        with pytest.raises(BudgetExceeded):
            await other.run(erin, "openai/gpt-4o", HELLO)
        await _until(lambda: len(got) == 2)
    finally:
        await other.budgets.aclose()
        await asyncio.gather(*(p.aclose() for p in other.providers.values()))  # its ledger is the test's
    assert [b["type"] for _, b in got] == ["budget.soft", "budget.hard"]
    await asyncio.sleep(0.2)
    assert len(got) == 2
    async with ledger.engine.connect() as conn:
        events = (await conn.execute(select(BudgetEvent.level, BudgetEvent.delivered_at))).all()
    assert sorted(level for level, _ in events) == ["hard", "soft"] and all(at is not None for _, at in events)


async def test_the_ledgers_settled_past_is_summed_once_and_the_recent_rows_every_time(ledger):
    from datetime import timedelta

    store = BudgetStore(ledger.engine, lateness=timedelta(hours=1))
    spec = await store.put(BudgetSpec("", "frank", None, Decimal("100")))
    now = datetime(2027, 3, 10, 12, 30, tzinfo=UTC)
    start, end = datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC)
    await spend(ledger, "frank", "a", "1.5", now - timedelta(hours=5))
    await spend(ledger, "frank", "a", "0.25", now - timedelta(minutes=30))
    await spend(ledger, "frank", "a", "7", datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC))  # the month before
    assert (await store.usage(spec, start, end, now))[0] == Decimal("1.75")
    assert store._bases[spec.id][1:] == (datetime(2027, 3, 10, 11, tzinfo=UTC), Decimal("1.5"))
    later = now + timedelta(hours=3)
    await spend(ledger, "frank", "a", "2", now + timedelta(hours=2))
    assert (await store.usage(spec, start, end, later))[0] == Decimal("3.75")
    assert store._bases[spec.id][1:] == (datetime(2027, 3, 10, 14, tzinfo=UTC), Decimal("1.75"))  # one hour added
    grant = await store.take_lease(spec, start, end, Decimal(1), Decimal("0.1"), later + timedelta(minutes=5),
                                   now=later)
    assert grant.spent == Decimal("3.75") and grant.amount == Decimal("9.625")


async def test_when_the_database_does_not_answer_the_lease_held_serves_and_none_means_503(started, ledger,
                                                                                          monkeypatch):
    from sqlalchemy.exc import OperationalError

    from llmrelay.types import BudgetUnavailable

    relay = started
    await set_budget(relay, user_id="gina", agent_id=None, limit_usd=Decimal("10"))
    gina = await relay.principal("gina")
    assert (await relay.run(gina, "openai/gpt-4o", HELLO)).error is None  # a lease is held

    async def down(*args, **kw):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database down"))

    monkeypatch.setattr(relay.budgets.store, "take_lease", down)
    relay.budgets.lease_seconds = 0  # every request wants a new lease now
    assert (await relay.run(gina, "openai/gpt-4o", HELLO)).error is None  # served from the one held
    await set_budget(relay, user_id="hal", agent_id=None, limit_usd=Decimal("10"))
    with pytest.raises(BudgetUnavailable, match="budget user:hal cannot be checked now"):
        await relay.run(await relay.principal("hal"), "openai/gpt-4o", HELLO)  # none held: never unchecked
