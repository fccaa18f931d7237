"""Every table the CLI prints, at 80, 100 and 120 columns: money, ids, names and dates are never cut or
folded (a narrower table leaves secondary columns out, or the rows become `column: value` blocks), no
line is wider than the terminal, and every such command also prints JSON.  In-process (Typer's runner,
COLUMNS set), on a SQLite ledger seeded with long names and exact amounts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from llmrelay.cli import app
from llmrelay.db.engine import make_engine, sessions
from llmrelay.db.migrate import upgrade
from llmrelay.db.models import AIModelUsage

WIDTHS = (80, 100, 120)
LONG_USER = "a-user-with-a-rather-long-name"
MODEL = "claude-3-5-sonnet-20241022"
T0 = datetime.now(UTC) - timedelta(days=1)


def row(**kw) -> dict:
    r = {"id": uuid.uuid4(), "request_id": uuid.uuid4().hex, "attempt": 1, "user_id": uuid.uuid4().hex,
         "agent_id": "code-review-agent", "provider": "openai", "model": "gpt-4o-mini-2024-07-18", "status": "success",
         "prompt_tokens": 123_456, "completion_tokens": 7_890, "cached_prompt_tokens": 0, "reasoning_tokens": 0,
         "cache_write_tokens": 0, "cost_usd": Decimal("12345.678901234567"), "unpriced": False,
         "cost_mismatch": False, "latency_ms": 12_345, "created_at": T0}
    r.update(kw)
    r["total_tokens"] = r["prompt_tokens"] + r["completion_tokens"]
    return r


async def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
        async with sessions(engine)() as s, s.begin():
            await s.execute(insert(AIModelUsage), [
                row(), row(provider="anthropic", model=MODEL, status="failed", error_kind="overloaded"),
                row(request_id="r", provider="openrouter", model="meta-llama/llama-3.1-405b-instruct:free",
                    cost_usd=Decimal("0.000000000001")),
                row(agent_id="direct", provider="ollama", model="llama3.1", cost_usd=None, unpriced=True)])
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """One ledger for the module: usage rows, a user with a long name, keys, a budget, audit entries."""
    home = tmp_path_factory.mktemp("cli-tables")
    url = f"sqlite+aiosqlite:///{home / 'ledger.db'}"
    asyncio.run(_seed(url))
    env = {"LLMRELAY_HOME": str(home / "home"), "LLMRELAY_DATABASE_URL": url}
    for args in (["users", "add", "admin", "--admin"], ["users", "add", LONG_USER, "--rpm", "1200000"],
                 ["keys", "create", "--user", LONG_USER, "--name", "nightly batch jobs of the reporting team"],
                 ["budgets", "set", "--user", LONG_USER, "--limit", "123456.789012345678", "--soft", "50"]):
        done = invoke(env, 200, *args)
        assert done.exit_code == 0, done.output
    return env


def invoke(env: dict[str, str], columns: int, *args: str):
    clean = {k: None for k in os.environ if k.startswith("LLMRELAY_") or k.endswith(("_API_KEY", "_BASE_URL"))}
    return CliRunner().invoke(app, list(args), env={**clean, **env, "COLUMNS": str(columns)})


def assert_whole(output: str, columns: int, *values: str) -> None:
    lines = output.splitlines()
    too_wide = [line for line in lines if len(line) > columns]
    assert not too_wide, f"wider than {columns}:\n" + "\n".join(too_wide)
    assert "…" not in output, output
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is not whole on any line:\n{output}"


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("by", ["model", "agent", "user", "provider", "day", None])
def test_usage(ledger, columns, by):
    done = invoke(ledger, columns, "usage", *(["--by", by] if by else []))
    assert done.exit_code == 0, done.output
    money = "$24691.357802469135 *"  # 2 × 12345.678901234567 + 0.000000000001, and one unpriced call
    whole = {"model": (MODEL, "meta-llama/llama-3.1-405b-instruct:free"), "agent": ("code-review-agent", "direct"),
             "provider": ("openrouter",), "user": (), "day": (T0.date().isoformat(),), None: ()}[by]
    assert_whole(done.output, columns, money, "75.0%", "25.0%", *whole)
    if by == "user":  # user ids: 32 hex digits each, whole
        assert len(re.findall(r"\b[0-9a-f]{32}\b", done.output)) == 4


@pytest.mark.parametrize("columns", WIDTHS)
def test_users_and_keys(ledger, columns):
    users = invoke(ledger, columns, "users", "list")
    assert users.exit_code == 0, users.output
    ids = [u["id"] for u in json.loads(invoke(ledger, columns, "users", "list", "--json").output)]
    assert_whole(users.output, columns, LONG_USER, "1,200,000", "unlimited (admin)", *ids)
    keys = invoke(ledger, columns, "keys", "list")
    assert keys.exit_code == 0, keys.output
    [key] = json.loads(invoke(ledger, columns, "keys", "list", "--json").output)
    assert_whole(keys.output, columns, key["prefix"], LONG_USER, "reporting")


@pytest.mark.parametrize("columns", WIDTHS)
def test_budgets_and_audit(ledger, columns):
    budgets = invoke(ledger, columns, "budgets", "list")
    assert budgets.exit_code == 0, budgets.output
    [b] = json.loads(invoke(ledger, columns, "budgets", "list", "--json").output)
    assert_whole(budgets.output, columns, f"user:{LONG_USER}", b["limitUsd"], b["softUsd"], b["spentUsd"])
    audit = invoke(ledger, columns, "audit")
    assert audit.exit_code == 0, audit.output
    entries = json.loads(invoke(ledger, columns, "audit", "--json").output)
    assert {e["action"] for e in entries} >= {"user.add", "key.create", "budget.set"}
    assert_whole(audit.output, columns, LONG_USER, "budget.set", "key.create", entries[0]["actor"])


@pytest.mark.parametrize("columns", WIDTHS)
def test_agents_and_providers(ledger, columns):
    agents = invoke(ledger, columns, "agents")
    assert agents.exit_code == 0, agents.output
    ids = [a["id"] for a in json.loads(invoke(ledger, columns, "agents", "--json").output)]
    assert_whole(agents.output, columns, *ids, "anthropic/claude-3-5-sonnet-20241022")
    env = {**ledger, "OPENROUTER_BASE_URL": "https://openrouter.example.com/api/v1/some/long/path/for/tables"}
    providers = invoke(env, columns, "providers")
    assert providers.exit_code == 0, providers.output
    urls = [p["baseUrl"] for p in json.loads(invoke(env, columns, "providers", "--json").output)]
    assert_whole(providers.output, columns, *urls, "ANTHROPIC_API_KEY")  # reasons wrap between words


def test_model_ids_are_printed_literally_not_as_emoji(ledger):
    done = invoke(ledger, 200, "usage", "--by", "model")
    assert "meta-llama/llama-3.1-405b-instruct:free" in done.output  # `:free:` must not become an emoji


def test_help_shows_no_bool_on_flags_and_version_is_one_plain_line():
    for args in (["--help"], ["usage", "--help"], ["chat", "--help"], ["users", "add", "--help"],
                 ["budgets", "set", "--help"], ["serve", "--help"], ["fake-providers", "--help"],
                 ["keys", "create", "--help"], ["keys", "revoke", "--help"]):
        done = invoke({}, 100, *args)
        assert done.exit_code == 0 and "<bool>" not in done.output and "<str>" not in done.output, done.output
        assert "''" not in done.output and '""' not in done.output
    version = invoke({}, 100, "--version")
    assert re.fullmatch(r"llmrelay \d+\.\d+\.\d+\S*\n", version.output), version.output


@pytest.mark.parametrize("columns", WIDTHS)
def test_pricing_list(ledger, columns):
    prices = invoke(ledger, columns, "pricing", "list")
    assert prices.exit_code == 0, prices.output
    rows = json.loads(invoke(ledger, columns, "pricing", "list", "--json").output)
    longest = max(rows, key=lambda r: len(r["model"]))
    assert_whole(prices.output, columns, longest["model"], "gemini-2.5-pro")
