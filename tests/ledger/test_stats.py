"""Usage statistics against hand-computed figures, on SQLite and PostgreSQL.

The rows are inserted directly, with tokens, costs, latencies, statuses and times chosen so that
every expected number below can be worked out by hand (and is, in the comments)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, text

from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.models import AIModelUsage
from llmrelay.ledger.records import COLUMNS, CSV_COLUMNS, encode_cursor, export_csv, list_records, record_to_dict
from llmrelay.ledger.stats import agent_performance, unpriced_usage, usage_stats
from llmrelay.testing import faults
from llmrelay.types import InvalidRequest

T0 = datetime(2025, 3, 10, tzinfo=UTC)
COST = Decimal("0.000123456789")


def usage_row(**kw) -> dict:
    """An ai_model_usage row: a priced, successful openai/gpt-4o call by alice unless told otherwise."""
    row = {"id": uuid.uuid4(), "request_id": uuid.uuid4().hex, "attempt": 1, "user_id": "alice",
           "agent_id": "general-agent", "provider": "openai", "model": "gpt-4o", "status": "success",
           "error_kind": None, "error_message": None, "prompt_tokens": 0, "completion_tokens": 0,
           "cached_prompt_tokens": 0, "reasoning_tokens": 0, "cache_write_tokens": 0, "cost_usd": Decimal(0),
           "input_price": None, "output_price": None, "cached_input_price": None, "cache_write_price": None,
           "unpriced": False, "provider_cost_usd": None, "cost_mismatch": False, "latency_ms": 0, "created_at": T0}
    row.update(kw)
    row.setdefault("total_tokens", row["prompt_tokens"] + row["completion_tokens"])
    return row


@pytest.fixture
async def db(db_url):
    engine = make_engine(db_url)
    yield sessions(engine)
    await engine.dispose()


async def add(db, rows: list[dict]) -> None:
    async with db() as s, s.begin():
        await s.execute(insert(AIModelUsage), rows)


def traffic() -> list[dict]:
    """21 requests, 24 rows, 23 calls:

    - r0..r19 on openai/gpt-4o: latencies 10, 20, …, 190 and 1000 ms; 100 prompt + 50 completion
      tokens, 10 cached, 5 reasoning, $0.000123456789 each.  r0 and r1 first failed on anthropic
      (overloaded, 5 and 7 ms, no tokens), r2 first skipped google: those three are fallbacks.
    - r20 on anthropic/claude-unknown: a success of a model without a price, 1000 + 200 tokens, 300 ms.
    """
    rows = []
    for i in range(20):
        rid = f"r{i}"
        status = "fallback" if i < 3 else "success"
        rows.append(usage_row(request_id=rid, attempt=2 if i < 3 else 1, status=status, prompt_tokens=100,
                              completion_tokens=50, cached_prompt_tokens=10, reasoning_tokens=5, cost_usd=COST,
                              latency_ms=1000 if i == 19 else 10 * (i + 1), created_at=T0 + timedelta(minutes=i)))
    rows += [
        usage_row(request_id="r0", provider="anthropic", model="claude-3-5-sonnet-20241022", status="failed",
                  error_kind="overloaded", latency_ms=5),
        usage_row(request_id="r1", provider="anthropic", model="claude-3-5-sonnet-20241022", status="failed",
                  error_kind="overloaded", latency_ms=7),
        usage_row(request_id="r2", provider="google", model="gemini-2.0-flash", status="skipped",
                  error_message="GOOGLE_API_KEY is not set"),
        usage_row(request_id="r20", provider="anthropic", model="claude-unknown", prompt_tokens=1000,
                  completion_tokens=200, cost_usd=None, unpriced=True, latency_ms=300,
                  created_at=T0 + timedelta(hours=1)),
    ]
    return rows


async def test_totals_and_per_provider_figures_match_hand_computed_values(db):
    await add(db, traffic())
    async with db() as s:
        report = await usage_stats(s, group_by="provider")
    t = report.totals
    assert (t.requests, t.calls, t.skipped, t.successes, t.fallbacks, t.failures) == (21, 23, 1, 21, 3, 2)
    assert t.success_rate == 21 / 23 and t.fallback_rate == 3 / 21
    assert (t.tokens.prompt, t.tokens.completion, t.tokens.total, t.tokens.cached, t.tokens.reasoning) == (
        3000, 1200, 4200, 200, 100)
    assert t.cost_usd == Decimal("0.00246913578")  # 20 × 0.000123456789, exactly
    assert t.unpriced_calls == 1 and t.cost_complete is False
    # latencies of the 23 calls: 5, 7, 10 … 190, 300, 1000 (sum 1900 + 1000 + 12 + 300)
    assert t.avg_latency_ms == 3212 / 23
    # nearest rank: ceil(0.95 × 23) = 22nd smallest = 300 (interpolating would give 289)
    assert t.p95_latency_ms == 300

    by = {g.key["provider"]: g.stats for g in report.groups}
    assert [g.key for g in report.groups] == [{"provider": "anthropic"}, {"provider": "google"},
                                              {"provider": "openai"}]
    a = by["anthropic"]
    assert (a.requests, a.calls, a.successes, a.fallbacks, a.failures) == (3, 3, 1, 0, 2)
    assert a.success_rate == 1 / 3 and a.fallback_rate == 0.0
    assert a.cost_usd == 0 and a.unpriced_calls == 1 and not a.cost_complete
    assert a.avg_latency_ms == 104.0 and a.p95_latency_ms == 300
    g = by["google"]
    assert (g.requests, g.calls, g.skipped) == (1, 0, 1)
    assert g.success_rate is None and g.fallback_rate is None
    assert g.avg_latency_ms is None and g.p95_latency_ms is None and g.cost_usd == 0
    o = by["openai"]
    assert (o.requests, o.calls, o.successes, o.fallbacks, o.failures) == (20, 20, 20, 3, 0)
    assert o.success_rate == 1.0 and o.fallback_rate == 0.15
    assert o.cost_usd == Decimal("0.00246913578") and o.cost_complete
    assert o.cost_per_call == COST and o.cost_per_request == COST
    # 10 … 190 and 1000: mean 2900 / 20; nearest rank 19th = 190 (interpolating would give 230.5)
    assert o.avg_latency_ms == 145.0 and o.p95_latency_ms == 190


async def test_the_report_serialises_to_camel_case_with_exact_money_strings(db):
    await add(db, traffic())
    async with db() as s:
        d = (await usage_stats(s, group_by="provider", start=T0, end=T0 + timedelta(days=1))).to_dict()
    assert d["groupBy"] == "provider" and d["from"] == "2025-03-10T00:00:00+00:00"
    assert d["to"] == "2025-03-11T00:00:00+00:00"
    t = d["totals"]
    assert t["costUsd"] == "0.00246913578" and t["costComplete"] is False and t["unpricedCalls"] == 1
    assert t["tokens"] == {"prompt": 3000, "completion": 1200, "total": 4200, "cached": 200, "reasoning": 100}
    assert (t["calls"], t["requests"], t["p95LatencyMs"]) == (23, 21, 300)
    assert t["successRate"] == 21 / 23 and t["fallbackRate"] == 3 / 21 and t["avgLatencyMs"] == 3212 / 23
    google = d["groups"][1]
    assert google["provider"] == "google" and google["costUsd"] == "0" and google["successRate"] is None


async def test_model_groups_are_provider_and_model_pairs(db):
    await add(db, [
        usage_row(provider="ollama", model="llama3.1", latency_ms=40),
        usage_row(provider="openrouter", model="llama3.1", latency_ms=60, cost_usd=Decimal("0.5")),
        usage_row(provider="openrouter", model="llama3.1", latency_ms=80, cost_usd=Decimal("0.25")),
        usage_row(provider="openrouter", model="gpt-4o", latency_ms=10),
    ])
    async with db() as s:
        report = await usage_stats(s, group_by="model")
    got = [(g.key["provider"], g.key["model"], g.stats.calls, g.stats.cost_usd, g.stats.avg_latency_ms)
           for g in report.groups]
    assert got == [("ollama", "llama3.1", 1, 0, 40.0), ("openrouter", "gpt-4o", 1, 0, 10.0),
                   ("openrouter", "llama3.1", 2, Decimal("0.75"), 70.0)]


async def test_days_are_utc_dates_split_at_midnight_whatever_the_sessions_time_zone(db_url):
    kw = {"connect_args": {"server_settings": {"timezone": "Pacific/Auckland"}}} if "postgresql" in db_url else {}
    engine = make_engine(db_url, **kw)
    db = sessions(engine)
    plus_0530 = timedelta(hours=5, minutes=30)
    await add(db, [
        usage_row(created_at=datetime(2025, 3, 9, 23, 59, 59, 999999, UTC), latency_ms=1),   # before the window
        usage_row(created_at=datetime(2025, 3, 10, 0, 0, tzinfo=UTC), latency_ms=10),       # first instant: in
        usage_row(created_at=datetime(2025, 3, 10, 23, 59, 59, 999999, UTC), latency_ms=20),
        # 03:00 on the 11th at +05:30 is 21:30 UTC on the 10th
        usage_row(created_at=datetime(2025, 3, 11, 3, 0, tzinfo=timezone(plus_0530)),
                  latency_ms=30),
        usage_row(created_at=datetime(2025, 3, 11, 0, 0, tzinfo=UTC), latency_ms=40),
        usage_row(created_at=datetime(2025, 3, 11, 23, 0, tzinfo=UTC), latency_ms=60),
        usage_row(created_at=datetime(2025, 3, 12, 0, 0, tzinfo=UTC), latency_ms=1000),     # the end: out
    ])
    try:
        async with db() as s:
            if "postgresql" in db_url:
                assert (await s.execute(text("SHOW timezone"))).scalar() == "Pacific/Auckland"
            report = await usage_stats(s, group_by="day", start=T0, end=datetime(2025, 3, 12, tzinfo=UTC))
    finally:
        await engine.dispose()
    got = [(g.key["day"], g.stats.calls, g.stats.avg_latency_ms) for g in report.groups]
    assert got == [("2025-03-10", 3, 20.0), ("2025-03-11", 2, 50.0)]
    assert report.totals.calls == 5 and report.totals.p95_latency_ms == 60


async def test_the_window_is_half_open(db):
    await add(db, [usage_row(created_at=T0 - timedelta(microseconds=1), prompt_tokens=1),
                   usage_row(created_at=T0, prompt_tokens=10),
                   usage_row(created_at=T0 + timedelta(hours=1), prompt_tokens=100),
                   usage_row(created_at=T0 + timedelta(hours=2), prompt_tokens=1000)])
    async with db() as s:
        inside = await usage_stats(s, start=T0, end=T0 + timedelta(hours=2))
        only_start = await usage_stats(s, start=T0 + timedelta(hours=2))
        only_end = await usage_stats(s, end=T0)
        empty = await usage_stats(s, start=T0, end=T0)
    assert inside.totals.tokens.prompt == 110
    assert only_start.totals.tokens.prompt == 1000
    assert only_end.totals.tokens.prompt == 1
    assert empty.totals.calls == 0 and empty.groups == ()


async def test_a_user_never_sees_another_users_rows(db):
    await add(db, [
        usage_row(user_id="alice", prompt_tokens=10, cost_usd=Decimal("0.01"), latency_ms=100),
        usage_row(user_id="alice", agent_id="web-dev-agent", prompt_tokens=20, cost_usd=Decimal("0.02")),
        usage_row(user_id="bob", prompt_tokens=1000, cost_usd=Decimal("9"), latency_ms=9000),
        usage_row(user_id="bob", model="mystery", cost_usd=None, unpriced=True, prompt_tokens=5),
        usage_row(user_id="alice-2", prompt_tokens=7),
    ])
    async with db() as s:
        alice = await usage_stats(s, user_id="alice", group_by="user")
        rows, _ = await list_records(s, user_id="alice")
        exported = "".join([chunk async for chunk in export_csv(s, user_id="alice")])
        unpriced = await unpriced_usage(s, user_id="alice")
        by_agent = await usage_stats(s, user_id="alice", group_by="agent")
    assert [g.key for g in alice.groups] == [{"userId": "alice"}]
    assert alice.totals.tokens.prompt == 30 and alice.totals.cost_usd == Decimal("0.03")
    assert alice.totals.cost_complete and alice.totals.p95_latency_ms == 100
    assert {r.user_id for r in rows} == {"alice"} and len(rows) == 2
    parsed = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert [r["user_id"] for r in parsed] == ["alice", "alice"]
    assert unpriced == []
    assert [(g.key["agentId"], g.stats.tokens.prompt) for g in by_agent.groups] == [
        ("general-agent", 10), ("web-dev-agent", 20)]


async def test_filters_by_agent_and_provider_combine(db):
    await add(db, traffic())
    async with db() as s:
        anthropic = await usage_stats(s, provider="anthropic", agent_id="general-agent")
        other_agent = await usage_stats(s, agent_id="web-dev-agent")
    assert (anthropic.totals.calls, anthropic.totals.failures, anthropic.totals.tokens.total) == (3, 2, 1200)
    assert other_agent.totals.calls == 0 and other_agent.totals.cost_usd == 0


async def test_unpriced_usage_lists_each_model_without_a_price_with_its_tokens_and_when(db):
    await add(db, [
        *traffic(),
        usage_row(provider="openai", model="gpt-9", cost_usd=None, unpriced=True, prompt_tokens=7,
                  completion_tokens=3, created_at=T0 + timedelta(days=2)),
        usage_row(provider="openai", model="gpt-9", cost_usd=None, unpriced=True, prompt_tokens=1,
                  completion_tokens=1, reasoning_tokens=1, created_at=T0 + timedelta(days=1)),
    ])
    async with db() as s:
        found = await unpriced_usage(s)
        windowed = await unpriced_usage(s, start=T0 + timedelta(days=1))
    assert [(u.provider, u.model, u.calls, u.tokens.prompt, u.tokens.completion, u.tokens.total,
             u.tokens.reasoning, u.first_seen, u.last_seen) for u in found] == [
        ("anthropic", "claude-unknown", 1, 1000, 200, 1200, 0, T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
        ("openai", "gpt-9", 2, 8, 4, 12, 1, T0 + timedelta(days=1), T0 + timedelta(days=2))]
    assert [u.model for u in windowed] == ["gpt-9"]
    assert found[1].to_dict()["firstSeen"] == "2025-03-11T00:00:00+00:00"


async def test_agent_performance_gives_latency_success_rate_and_cost_per_call_and_request(db):
    await add(db, [
        # request a: failed on anthropic (cost of its partial usage 0.003), then served by openai (0.004)
        usage_row(request_id="a", provider="anthropic", status="failed", latency_ms=100, cost_usd=Decimal("0.003"),
                  prompt_tokens=30),
        usage_row(request_id="a", attempt=2, status="fallback", latency_ms=200, cost_usd=Decimal("0.004")),
        # request b: served by anthropic at once
        usage_row(request_id="b", provider="anthropic", latency_ms=300, cost_usd=Decimal("0.002")),
        usage_row(request_id="c", agent_id="web-dev-agent", latency_ms=5000, cost_usd=Decimal(1)),
    ])
    async with db() as s:
        perf = await agent_performance(s, "general-agent")
    assert perf.stats.calls == 3 and perf.stats.requests == 2
    assert perf.stats.avg_latency_ms == 200.0 and perf.stats.success_rate == 2 / 3
    assert perf.stats.cost_usd == Decimal("0.009")
    assert perf.stats.cost_per_call == Decimal("0.003") and perf.stats.cost_per_request == Decimal("0.0045")
    by = {g.key["provider"]: g.stats for g in perf.providers}
    assert by["anthropic"].success_rate == 0.5 and by["anthropic"].cost_per_call == Decimal("0.0025")
    assert by["openai"].fallback_rate == 1.0 and by["openai"].avg_latency_ms == 200.0
    d = perf.to_dict()
    assert d["agentId"] == "general-agent" and d["costPerCall"] == "0.003" and d["costPerRequest"] == "0.0045"
    assert [p["provider"] for p in d["providers"]] == ["anthropic", "openai"]


async def test_an_empty_ledger_reports_zeros_and_no_rates(db):
    async with db() as s:
        report = await usage_stats(s, group_by="day")
    t = report.totals
    assert report.groups == () and (t.requests, t.calls, t.cost_usd) == (0, 0, 0)
    assert t.success_rate is None and t.avg_latency_ms is None and t.p95_latency_ms is None
    assert t.cost_per_call is None and t.cost_complete


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"group_by": "week"}, "groupBy"),
    ({"start": datetime(2025, 3, 10)}, "from"),  # naive: which time zone?  refused
    ({"start": T0, "end": T0 - timedelta(seconds=1)}, "from"),
])
async def test_bad_statistics_arguments_are_invalid_requests(db, kwargs, field):
    async with db() as s:
        with pytest.raises(InvalidRequest) as err:
            await usage_stats(s, **kwargs)
    assert err.value.field == field


# -- records --------------------------------------------------------------------------------------


async def walk(db, **kw) -> list[uuid.UUID]:
    seen, cursor = [], None
    while True:
        async with db() as s:
            page, cursor = await list_records(s, cursor=cursor, **kw)
        assert len(page) <= kw.get("limit", 50)
        seen += [r.id for r in page]
        if cursor is None:
            return seen


async def test_pages_walk_every_row_exactly_once_newest_first_with_ties_in_created_at(db):
    rows = ([usage_row(created_at=T0) for _ in range(5)]                      # five rows at the same instant
            + [usage_row(created_at=T0 + timedelta(seconds=1), user_id="bob") for _ in range(4)]
            + [usage_row(created_at=T0 + timedelta(minutes=i), status="failed") for i in range(2, 6)])
    await add(db, rows)
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)]
    assert await walk(db, limit=4) == expected
    assert await walk(db, limit=1) == expected
    assert await walk(db, limit=13) == expected
    assert await walk(db, limit=5, user_id="alice") == [i for i in expected if i not in {r["id"] for r in rows[5:9]}]
    assert await walk(db, limit=2, status="failed") == [r["id"] for r in reversed(rows[9:])]
    async with db() as s:
        page, cursor = await list_records(s, limit=13)
    assert len(page) == 13 and cursor is None


async def test_rows_recorded_between_pages_do_not_shift_the_pages_that_follow(db):
    rows = [usage_row(created_at=T0 + timedelta(seconds=i % 3)) for i in range(9)]
    await add(db, rows)
    async with db() as s:
        first, cursor = await list_records(s, limit=4)
    await add(db, [usage_row(created_at=T0 + timedelta(days=1))])  # newer than everything
    seen = [r.id for r in first]
    while cursor:
        async with db() as s:
            page, cursor = await list_records(s, limit=4, cursor=cursor)
        seen += [r.id for r in page]
    assert sorted(seen) == sorted(r["id"] for r in rows) and len(seen) == 9


async def test_a_record_serialises_to_camel_case_with_money_and_times_as_strings(db):
    row = usage_row(cost_usd=Decimal("0.00250"), input_price=Decimal("0.0025"), status="fallback", attempt=2,
                    created_at=datetime(2025, 3, 10, 1, 2, 3, 4, UTC), prompt_tokens=12)
    await add(db, [row])
    async with db() as s:
        (rec,), cursor = await list_records(s)
    d = record_to_dict(rec)
    assert cursor is None and len(d) == len(COLUMNS)
    assert (d["id"], d["requestId"], d["status"], d["attempt"]) == (str(row["id"]), row["request_id"], "fallback", 2)
    assert (d["costUsd"], d["inputUsdPer1M"], d["outputUsdPer1M"]) == ("0.0025", "2.5", None)  # stored per 1k
    assert "inputPrice" not in d  # a price says its unit
    assert d["createdAt"] == "2025-03-10T01:02:03.000004+00:00" and d["unpriced"] is False
    assert (d["promptTokens"], d["totalTokens"], d["cachedPromptTokens"], d["latencyMs"]) == (12, 12, 0, 0)


@pytest.mark.parametrize("cursor", [
    "", "not a cursor!", "AAAA", encode_cursor(T0, uuid.uuid4())[:-3],
    "MXwyMDI1LTAzLTEwVDAwOjAwOjAwfGFiYw",  # "1|2025-03-10T00:00:00|abc": naive time, short id
    encode_cursor(T0, uuid.uuid4()).replace("M", "+"),
])
async def test_a_malformed_cursor_is_an_invalid_request_naming_the_cursor(db, cursor):
    async with db() as s:
        with pytest.raises(InvalidRequest) as err:
            await list_records(s, cursor=cursor)
    assert err.value.field == "cursor"


async def test_bad_page_sizes_and_statuses_are_invalid_requests(db):
    async with db() as s:
        for kwargs, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"status": "ok"}, "status")):
            with pytest.raises(InvalidRequest) as err:
                await list_records(s, **kwargs)
            assert err.value.field == field


# -- CSV ------------------------------------------------------------------------------------------


async def test_csv_export_streams_every_column_in_batches_and_parses_back_to_the_rows(db):
    rows = [usage_row(created_at=T0 + timedelta(seconds=i, microseconds=7), prompt_tokens=i, latency_ms=i,
                      cost_usd=Decimal("0.000000000001") * i) for i in range(7)]
    rows[3].update(status="failed", error_kind="server_error", error_message='bad, "quoted"\nsecond line',
                   cost_usd=None, unpriced=True, input_price=Decimal("0.0025"), provider_cost_usd=Decimal("1E+2"),
                   cost_mismatch=True)
    await add(db, [*rows, usage_row(user_id="bob")])
    async with db() as s:
        chunks = [c async for c in export_csv(s, batch_size=3, user_id="alice")]
    assert len(chunks) == 1 + 3  # the header, then 7 rows in batches of 3, 3 and 1
    assert chunks[0] == ",".join(CSV_COLUMNS) + "\r\n"
    assert "input_usd_per_1m" in CSV_COLUMNS and "input_price" not in CSV_COLUMNS
    parsed = list(csv.DictReader(io.StringIO("".join(chunks), newline="")))
    assert len(parsed) == 7 and set(parsed[0]) == set(CSV_COLUMNS)
    for got, row in zip(parsed, rows, strict=True):
        assert uuid.UUID(got["id"]) == row["id"]
        assert datetime.fromisoformat(got["created_at"]) == row["created_at"]
        assert got["created_at"].endswith("+00:00")
        for col in ("prompt_tokens", "latency_ms", "attempt"):
            assert int(got[col]) == row[col]
        for col in ("cost_usd", "provider_cost_usd"):
            assert (Decimal(got[col]) if got[col] else None) == row[col]
            assert "E" not in got[col]
        # the applied price, kept per 1k tokens, exported per 1M
        assert (Decimal(got["input_usd_per_1m"]) / 1000 if got["input_usd_per_1m"] else None) == row["input_price"]
        assert "E" not in got["input_usd_per_1m"]
        assert got["unpriced"] == ("true" if row["unpriced"] else "false")
        assert got["error_message"] == (row["error_message"] or "")
    assert parsed[2]["cost_usd"] == "0.000000000002" and parsed[0]["cost_usd"] == "0"
    assert parsed[3]["provider_cost_usd"] == "100" and parsed[3]["created_at"] == "2025-03-10T00:00:03.000007+00:00"


# -- end to end -------------------------------------------------------------------------------------


async def test_statistics_agree_with_requests_sent_through_the_relay(relay, ledger, fakes):
    fakes["anthropic"].script(faults.overloaded())
    fell_back = await relay.chat("general-agent", "Hello statistics", user="alice")
    direct = await relay.chat("general-agent", "Hello again, statistics", user="alice")
    await relay.chat("general-agent", "Someone else", user="bob")
    assert fell_back.fallback_used and fell_back.provider == "openai" and not direct.fallback_used
    await ledger.recorder.flush()
    async with ledger.sessions() as s:
        report = await usage_stats(s, user_id="alice", group_by="provider")
    attempts = fell_back.attempts + direct.attempts
    t = report.totals
    assert (t.requests, t.calls, t.successes, t.fallbacks, t.failures) == (2, 3, 2, 1, 1)
    assert t.tokens.prompt == fell_back.usage.input_tokens + direct.usage.input_tokens
    assert t.tokens.completion == fell_back.usage.output_tokens + direct.usage.output_tokens
    assert t.cost_usd == fell_back.cost_usd + direct.cost_usd > 0 and t.cost_complete
    assert t.avg_latency_ms == sum(a.latency_ms for a in attempts) / 3
    assert t.p95_latency_ms == max(a.latency_ms for a in attempts)  # ceil(0.95 × 3) = 3rd of 3
    by = {g.key["provider"]: g.stats for g in report.groups}
    assert (by["anthropic"].calls, by["anthropic"].failures, by["anthropic"].successes) == (2, 1, 1)
    assert by["openai"].fallback_rate == 1.0 and by["openai"].cost_usd == fell_back.cost_usd


def nearest_rank(values: list[int], percent: int = 95) -> int | None:
    """The ceil(percent/100 n)-th smallest value: the definition, written plainly."""
    ordered = sorted(values)
    return ordered[-(-percent * len(ordered) // 100) - 1] if ordered else None


LATENCY_SHAPES = {
    "small": lambda rnd: rnd.randint(0, 300),
    "wide": lambda rnd: rnd.randint(0, 20_000),
    "ties": lambda rnd: rnd.choice((5, 255, 256, 257, 511, 512, 9000)),
    "tail": lambda rnd: rnd.randint(100, 400) if rnd.random() < 0.9 else rnd.randint(3000, 60_000),
}


@pytest.mark.parametrize("shape", sorted(LATENCY_SHAPES))
async def test_p95_is_the_nearest_rank_of_each_groups_calls_whatever_the_latencies(db, shape):
    """The p95 is read in two passes (a bucketed histogram, then the exact latencies of one bucket):
    it must be exactly the nearest rank, per group and overall, on any spread of latencies."""
    import random

    rnd = random.Random(shape)
    rows = []
    for i in range(600):
        status = rnd.choice(("success", "success", "success", "fallback", "failed", "skipped"))
        rows.append(usage_row(agent_id=f"agent-{rnd.randint(0, 3)}", status=status,
                              created_at=T0 + timedelta(hours=rnd.randint(0, 71), seconds=i),
                              latency_ms=LATENCY_SHAPES[shape](rnd) if status != "skipped" else rnd.randint(0, 99)))
    await add(db, rows)
    calls = [r for r in rows if r["status"] != "skipped"]
    async with db() as s:
        by_day = ("day", lambda r: r["created_at"].date().isoformat())
        for group_by, key in (("agent", lambda r: r["agent_id"]), by_day):
            report = await usage_stats(s, start=T0, end=T0 + timedelta(days=3), group_by=group_by)
            assert report.totals.p95_latency_ms == nearest_rank([r["latency_ms"] for r in calls])
            assert report.totals.calls == len(calls)
            expected = {}
            for r in calls:
                expected.setdefault(key(r), []).append(r["latency_ms"])
            got = {next(iter(g.key.values())): g.stats.p95_latency_ms for g in report.groups}
            assert got == {k: nearest_rank(v) for k, v in expected.items()}
            assert {next(iter(g.key.values())): g.stats.avg_latency_ms for g in report.groups} == {
                k: sum(v) / len(v) for k, v in expected.items()}


async def test_a_provider_or_model_counts_a_request_once_however_often_it_was_tried(db):
    """Retries and a second model of the same provider are calls, not more requests."""
    rows = [usage_row(request_id="r1", attempt=1, provider="anthropic", model="claude-a", status="failed"),
            usage_row(request_id="r1", attempt=2, provider="anthropic", model="claude-a", status="failed",
                      first_on_provider=False, first_on_model=False),
            usage_row(request_id="r1", attempt=3, provider="anthropic", model="claude-b", status="failed",
                      first_on_provider=False),
            usage_row(request_id="r1", attempt=4, provider="openai", status="fallback"),
            usage_row(request_id="r2", attempt=1, provider="anthropic", model="claude-b")]
    await add(db, rows)
    async with db() as s:
        by_provider = await usage_stats(s, start=T0, end=T0 + timedelta(days=1), group_by="provider")
        by_model = await usage_stats(s, start=T0, end=T0 + timedelta(days=1), group_by="model")
    assert by_provider.totals.requests == 2 and by_provider.totals.calls == 5
    assert {g.key["provider"]: (g.stats.requests, g.stats.calls) for g in by_provider.groups} == {
        "anthropic": (2, 4), "openai": (1, 1)}
    assert {(g.key["provider"], g.key["model"]): (g.stats.requests, g.stats.calls) for g in by_model.groups} == {
        ("anthropic", "claude-a"): (1, 2), ("anthropic", "claude-b"): (2, 2), ("openai", "gpt-4o"): (1, 1)}


# -- per request and per attempt ----------------------------------------------------------------------


async def test_success_is_counted_per_request_and_failures_per_attempt(db):
    """One request answered after three failed attempts is one answered request (100 %), and three
    of its four attempts failed (75 %); the attempt-level `successRate` keeps its old meaning (25 %)."""
    rows = [usage_row(request_id="r1", attempt=n, provider="ollama", model="llama3.1", status="failed",
                      error_kind="overloaded", first_on_provider=n == 1, first_on_model=n == 1) for n in (1, 2, 3)]
    rows.append(usage_row(request_id="r1", attempt=4, status="fallback"))
    async with db() as s:
        await add(db, rows)
        one = await usage_stats(s, start=T0, end=T0 + timedelta(days=1))
        await add(db, [usage_row(request_id="r2", provider="ollama", model="llama3.1", status="failed",
                                 error_kind="overloaded"),
                       usage_row(request_id="r2", attempt=2, provider="google", status="skipped")])
        two = await usage_stats(s, start=T0, end=T0 + timedelta(days=1), group_by="provider")
    t = one.totals
    assert (t.requests, t.calls, t.successes, t.failures) == (1, 4, 1, 3)
    assert (t.request_success_rate, t.attempt_failure_rate, t.success_rate) == (1.0, 0.75, 0.25)
    d = t.to_dict()
    assert (d["requestSuccessRate"], d["attemptFailureRate"], d["successRate"]) == (1.0, 0.75, 0.25)
    # a second request that no link answered: 1 of 2 requests answered, 4 of 5 attempts failed
    t = two.totals
    assert (t.requests, t.calls, t.request_success_rate, t.attempt_failure_rate) == (2, 5, 0.5, 0.8)
    by = {g.key["provider"]: g.stats for g in two.groups}
    # per provider: the requests that reached it, and its answers
    assert (by["ollama"].requests, by["ollama"].request_success_rate, by["ollama"].attempt_failure_rate) == (
        2, 0.0, 1.0)
    assert (by["openai"].requests, by["openai"].request_success_rate, by["openai"].attempt_failure_rate) == (
        1, 1.0, 0.0)
    assert (by["google"].requests, by["google"].request_success_rate, by["google"].attempt_failure_rate) == (
        1, 0.0, None)


async def test_an_answer_whose_first_attempt_is_before_the_window_never_makes_the_rate_exceed_1(db):
    await add(db, [usage_row(request_id="edge", status="failed", created_at=T0 - timedelta(seconds=1)),
                   usage_row(request_id="edge", attempt=2, status="fallback", created_at=T0),
                   usage_row(request_id="inside", created_at=T0 + timedelta(seconds=1))])
    async with db() as s:
        t = (await usage_stats(s, start=T0, end=T0 + timedelta(days=1))).totals
    assert (t.requests, t.successes, t.request_success_rate) == (1, 2, 1.0)


async def test_the_hand_computed_traffic_answers_every_request_and_fails_2_of_23_attempts(db):
    await add(db, traffic())
    async with db() as s:
        report = await usage_stats(s, group_by="provider")
    t = report.totals
    assert (t.request_success_rate, t.attempt_failure_rate) == (1.0, 2 / 23)
    by = {g.key["provider"]: g.stats for g in report.groups}
    # anthropic: 3 requests reached it (r0, r1 overloaded; r20 answered), 2 of its 3 attempts failed
    assert (by["anthropic"].request_success_rate, by["anthropic"].attempt_failure_rate) == (1 / 3, 2 / 3)
    assert (by["google"].request_success_rate, by["google"].attempt_failure_rate) == (0.0, None)
