"""`llmrelay budgets set / list / clear` as an operator runs them: a real process on a fresh home."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest


@pytest.fixture
def env(tmp_path):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    base["LLMRELAY_HOME"] = str(tmp_path / "home")
    base["COLUMNS"] = "200"
    return base


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def listed(env):
    p = run(env, "budgets", "list", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_set_list_and_clear_a_budget(env):
    assert run(env, "users", "add", "alice").returncode == 0
    p = run(env, "budgets", "set", "--user", "alice", "--agent", "general-agent", "--limit", "123456.123456789012",
            "--reset-day", "15", "--soft", "50", "--unpriced", "allow", "--webhook", "https://hooks.example.com/b")
    assert p.returncode == 0, p.stderr
    assert "user:alice/agent:general-agent" in p.stdout and "123456.123456789012 USD per month" in p.stdout
    p = run(env, "budgets", "set", "--agent", "local-agent", "--limit", "0.5", "--period", "week", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["scope"] == "agent:local-agent"

    budgets = {b["agentId"]: b for b in listed(env)}
    assert set(budgets) == {"general-agent", "local-agent"}
    mine = budgets["general-agent"]
    assert Decimal(mine["limitUsd"]) == Decimal("123456.123456789012") and mine["softUsd"] == "61728.061728394506"
    assert (mine["period"], mine["resetDay"], mine["softPercent"], mine["unpriced"], mine["webhookUrl"]) == (
        "month", 15, 50, "allow", "https://hooks.example.com/b")
    assert (mine["spentUsd"], mine["level"]) == ("0", "ok") and mine["scope"].startswith("user:")
    assert (budgets["local-agent"]["period"], budgets["local-agent"]["limitUsd"]) == ("week", "0.5")

    p = run(env, "budgets", "list")
    assert p.returncode == 0, p.stderr
    assert "user:alice/agent:general-agent" in p.stdout and "agent:local-agent" in p.stdout
    assert "123456.123456789012" in p.stdout and "61728.061728394506" in p.stdout

    p = run(env, "budgets", "set", "--user", "alice", "--agent", "general-agent", "--limit", "2")  # replaced
    assert p.returncode == 0, p.stderr
    assert {b["agentId"]: b["limitUsd"] for b in listed(env)} == {"general-agent": "2", "local-agent": "0.5"}

    p = run(env, "budgets", "clear", "--user", "alice", "--agent", "general-agent")
    assert p.returncode == 0, p.stderr
    assert [b["scope"] for b in listed(env)] == ["agent:local-agent"]
    p = run(env, "budgets", "clear", "--user", "alice", "--agent", "general-agent")
    assert p.returncode == 1 and "no budget on user:alice/agent:general-agent" in p.stderr


BAD = [
    (("--user", "alice", "--limit", "ten"), "--limit: expected a decimal number"),
    (("--user", "alice", "--limit", "1e3"), "--limit: expected a decimal number"),
    (("--user", "alice", "--limit", "0"), "--limit: Input should be greater than 0"),
    (("--user", "alice", "--limit", "0.0000000000001"), "--limit: Decimal input should have no more than 12"),
    (("--user", "alice", "--limit", "1", "--period", "year"), "--period:"),
    (("--user", "alice", "--limit", "1", "--period", "day", "--reset-day", "2"), "--reset-day: only a monthly"),
    (("--user", "alice", "--limit", "1", "--soft", "101"), "--soft:"),
    (("--user", "alice", "--limit", "1", "--webhook", "ftp://x"), "--webhook: expected an http"),
    (("--user", "nobody", "--limit", "1"), "--user: no user 'nobody'"),
    (("--agent", "no-such-agent", "--limit", "1"), "--agent: unknown agent 'no-such-agent'"),
    (("--limit", "1"), "--user or --agent"),
]


def test_bad_input_is_one_line_and_a_nonzero_exit(env):
    assert run(env, "users", "add", "alice").returncode == 0
    for args, says in BAD:
        p = run(env, "budgets", "set", *args)
        assert p.returncode != 0, args
        assert says in p.stderr and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
    p = run(env, "budgets", "clear")
    assert p.returncode != 0 and "--user or --agent" in p.stderr
    assert listed(env) == []  # nothing was written
