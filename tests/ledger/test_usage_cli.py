"""`llmrelay usage` as a user runs it: a real process reading the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.models import AIModelUsage

T0 = datetime(2025, 3, 10, tzinfo=UTC)
WINDOW = ("--from", "2025-03-10", "--to", "2025-03-12")


def usage_row(**kw) -> dict:
    row = {"id": uuid.uuid4(), "request_id": uuid.uuid4().hex, "attempt": 1, "user_id": "alice",
           "agent_id": "general-agent", "provider": "openai", "model": "gpt-4o", "status": "success",
           "prompt_tokens": 0, "completion_tokens": 0, "cached_prompt_tokens": 0, "reasoning_tokens": 0,
           "cache_write_tokens": 0, "cost_usd": Decimal(0), "unpriced": False, "cost_mismatch": False,
           "latency_ms": 0, "created_at": T0}
    row.update(kw)
    row.setdefault("total_tokens", row["prompt_tokens"] + row["completion_tokens"])
    return row


async def add(db_url: str, rows: list[dict]) -> list[dict]:
    engine = make_engine(db_url)
    try:
        async with sessions(engine)() as s, s.begin():
            await s.execute(insert(AIModelUsage), rows)
    finally:
        await engine.dispose()
    return rows


def ledger_rows() -> list[dict]:
    """In the window [2025-03-10, 2025-03-12): 4 requests, 5 calls (1 failed, 1 fallback, 1 unpriced);
    priced cost 0.000123456789 + 0.000000000001 = $0.00012345679."""
    return [
        usage_row(request_id="r1", prompt_tokens=100, completion_tokens=50, cost_usd=Decimal("0.000123456789"),
                  latency_ms=100, created_at=T0 + timedelta(hours=1)),
        usage_row(request_id="r2", provider="anthropic", model="claude-3-5-sonnet-20241022", status="failed",
                  error_kind="overloaded", error_message='overloaded, "try later"', latency_ms=10,
                  created_at=T0 + timedelta(hours=2)),
        usage_row(request_id="r2", attempt=2, status="fallback", prompt_tokens=200, completion_tokens=100,
                  cost_usd=Decimal("0.000000000001"), latency_ms=300, created_at=T0 + timedelta(hours=2)),
        usage_row(request_id="r3", user_id="bob", provider="ollama", model="llama3.1", prompt_tokens=10,
                  completion_tokens=10, latency_ms=50, created_at=T0 + timedelta(days=1)),
        usage_row(request_id="r4", provider="anthropic", model="claude-new", prompt_tokens=5, completion_tokens=5,
                  cost_usd=None, unpriced=True, latency_ms=20, created_at=T0 + timedelta(days=1, hours=1)),
        usage_row(request_id="r5", cost_usd=Decimal(1), latency_ms=1, created_at=T0 - timedelta(microseconds=1)),
        usage_row(request_id="r6", cost_usd=Decimal(2), latency_ms=1, created_at=T0 + timedelta(days=2)),
    ]


@pytest.fixture
def plain_env(tmp_path):
    """The inherited environment without llmrelay settings or keys; the ledger in LLMRELAY_HOME."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    base.update(LLMRELAY_HOME=str(tmp_path / "home"), COLUMNS="200")
    return base


@pytest.fixture
def env(plain_env, db_url):
    return {**plain_env, "LLMRELAY_DATABASE_URL": db_url}


def run(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "llmrelay", "usage", *args], env=env, capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def report(env, *args) -> dict:
    p = run(env, *args, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


async def test_json_report_matches_the_hand_computed_totals_and_groups(env, db_url):
    await add(db_url, ledger_rows())
    d = report(env, *WINDOW, "--by", "provider")
    t = d["totals"]
    assert (t["requests"], t["calls"], t["successes"], t["fallbacks"], t["failures"]) == (4, 5, 4, 1, 1)
    assert t["costUsd"] == "0.00012345679" and t["unpricedCalls"] == 1 and t["costComplete"] is False
    assert t["tokens"]["prompt"] == 315 and t["tokens"]["total"] == 480
    assert t["avgLatencyMs"] == 96.0 and t["p95LatencyMs"] == 300  # (100+10+300+50+20)/5; 5th of 5
    assert d["from"] == "2025-03-10T00:00:00+00:00" and d["to"] == "2025-03-12T00:00:00+00:00"
    groups = {g["provider"]: g for g in d["groups"]}
    assert list(groups) == ["anthropic", "ollama", "openai"]
    assert groups["anthropic"]["calls"] == 2 and groups["anthropic"]["successRate"] == 0.5
    assert (t["requestSuccessRate"], t["attemptFailureRate"], t["successRate"]) == (1.0, 0.2, 0.8)
    assert groups["anthropic"]["requestSuccessRate"] == 0.5 and groups["anthropic"]["attemptFailureRate"] == 0.5
    assert groups["openai"]["costUsd"] == "0.00012345679" and groups["openai"]["fallbackRate"] == 0.5


async def test_table_has_a_row_per_group_a_totals_row_and_marks_an_incomplete_cost(env, db_url):
    await add(db_url, ledger_rows())
    p = run(env, *WINDOW, "--by", "model")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    body = [line for line in lines if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == ["anthropic", "anthropic", "ollama", "openai", "total"]
    assert "claude-new" in body[1] and "$0 *" in body[1]
    total = body[-1]
    # 4 of 4 requests answered, 1 of 5 attempts failed, 1 of 4 answers by a fallback
    assert "$0.00012345679 *" in total and "100.0%" in total and "20.0%" in total and "25.0%" in total
    assert lines[-1].startswith("* cost incomplete: 1 call of models without a known price")
    p = run(env, "--from", "2025-03-11T00:00:00", "--to", "2025-03-11T00:30:00Z", "--user", "bob")
    totals = [line for line in p.stdout.splitlines() if line.startswith("│")]
    assert len(totals) == 1 and "$0 " in totals[0] and "cost incomplete" not in p.stdout


async def test_to_is_exclusive_and_dates_take_iso_times_and_offsets(env, db_url):
    await add(db_url, ledger_rows())
    assert report(env, "--from", "2025-03-10", "--to", "2025-03-11")["totals"]["calls"] == 3
    same = report(env, "--from", "2025-03-10T05:30+05:30", "--to", "2025-03-11T00:00:00Z")
    assert same["totals"]["calls"] == 3 and same["from"] == "2025-03-10T00:00:00+00:00"
    # from 02:00 (inclusive: r2's fallback at 02:00 counts) to the 13th: r2, r3, r4 and r6
    assert report(env, "--from", "2025-03-10T02:00", "--to", "2025-03-13")["totals"]["costUsd"] == "2.000000000001"


async def test_the_default_window_is_the_last_30_days(env, db_url):
    now = datetime.now(UTC)
    await add(db_url, [usage_row(created_at=now - timedelta(days=1), cost_usd=Decimal("0.5")),
                       usage_row(created_at=now - timedelta(days=31), cost_usd=Decimal(7))])
    d = report(env)
    assert d["totals"]["calls"] == 1 and d["totals"]["costUsd"] == "0.5"
    assert abs(datetime.fromisoformat(d["to"]) - datetime.fromisoformat(d["from"]) - timedelta(days=30)) < timedelta(
        seconds=1)


async def test_filters_by_user_agent_and_provider(env, db_url):
    await add(db_url, ledger_rows())
    bob = report(env, *WINDOW, "--user", "bob", "--by", "user")
    assert [g["userId"] for g in bob["groups"]] == ["bob"] and bob["totals"]["tokens"]["prompt"] == 10
    assert report(env, *WINDOW, "--provider", "anthropic")["totals"]["calls"] == 2
    assert report(env, *WINDOW, "--agent", "web-dev-agent")["totals"]["calls"] == 0


async def test_csv_writes_every_matching_row_and_says_how_many(env, db_url, tmp_path):
    rows = await add(db_url, ledger_rows())
    out = tmp_path / "usage.csv"
    p = run(env, *WINDOW, "--csv", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"Wrote 5 rows to {out}"
    with open(out, newline="", encoding="utf-8") as f:
        parsed = list(csv.DictReader(f))
    in_window = [r for r in rows if T0 <= r["created_at"] < T0 + timedelta(days=2)]
    assert [uuid.UUID(r["id"]) for r in parsed] == [r["id"] for r in sorted(in_window, key=lambda r: (
        r["created_at"], r["id"]))]
    failed = next(r for r in parsed if r["status"] == "failed")
    assert failed["error_message"] == 'overloaded, "try later"' and failed["cost_usd"] == "0"
    assert {r["cost_usd"] for r in parsed} == {"0.000123456789", "0.000000000001", "0", ""}
    assert not list(tmp_path.glob("*.part"))
    p = run(env, *WINDOW, "--user", "bob", "--csv", "-")
    assert p.returncode == 0 and len(list(csv.DictReader(p.stdout.splitlines()))) == 1
    assert p.stderr.strip() == "Wrote 1 row to standard output"


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "yesterday"], "--from 'yesterday': expected YYYY-MM-DD or an ISO date-time"),
    (["--to", "2025-02-30"], "--to '2025-02-30': expected YYYY-MM-DD"),
    (["--from", "2025-03-12", "--to", "2025-03-12"], "must be before --to"),
    (["--by", "week"], "--by 'week': expected one of provider, agent, model, day, user"),
    (["--provider", "acme"], "--provider 'acme': unknown provider"),
    (["--csv", "x.csv", "--json"], "--csv exports the rows themselves"),
    (["--csv", "no/such/dir/x.csv"], "--csv no/such/dir/x.csv: cannot write"),
])
def test_bad_values_are_one_line_on_stderr_and_exit_code_2(plain_env, tmp_path, args, message):
    p = run(plain_env, *args, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("llmrelay: error: ") and message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


async def test_a_narrow_terminal_gets_each_group_as_a_block_with_every_figure(env, db_url):
    await add(db_url, ledger_rows())
    p = run({**env, "COLUMNS": "80"}, *WINDOW, "--by", "model")
    assert p.returncode == 0, p.stderr
    lines = [line.rstrip() for line in p.stdout.splitlines()]
    start = lines.index("openai · gpt-4o")
    block = dict(line.split(": ", 1) for line in lines[start + 1:lines.index("", start)])
    assert {k: v.strip() for k, v in block.items()} == {
        "requests": "2", "answered": "100.0%", "attempts": "2", "failed attempts": "0.0%", "fallback": "50.0%",
        "prompt tok": "300", "completion tok": "150", "total tok": "450", "cost (USD)": "$0.00012345679",
        "avg ms": "200.0", "p95 ms": "300"}
