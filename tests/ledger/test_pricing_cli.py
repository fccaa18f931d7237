"""`llmrelay db` and `llmrelay pricing` as a user runs them, on both databases."""

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def env(db_url, tmp_path, fakes):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    base.update(fakes.env(), LLMRELAY_HOME=str(tmp_path / "home"), LLMRELAY_DATABASE_URL=db_url, COLUMNS="200")
    return base


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def current(env, provider=None):
    args = ["pricing", "list", "--json"] + (["--provider", provider] if provider else [])
    return {(r["provider"], r["model"]): r for r in json.loads(run(env, *args).stdout)}


def test_db_upgrade_and_status(env):
    from llmrelay.db.migrate import head

    p = run(env, "db", "upgrade")
    assert p.returncode == 0 and f"already at revision {head()}" in p.stdout
    assert "up to date" in run(env, "db", "status").stdout


def test_pricing_set_adds_a_row_effective_now_and_keeps_history(env):
    before = current(env)[("openai", "gpt-4o")]
    assert (before["input"], before["output"], before["cached_input"]) == ("2.5", "10", "1.25")
    p = run(env, "pricing", "set", "openai", "gpt-4o", "--input", "2", "--output", "8", "--cached-input", "1")
    assert p.returncode == 0, p.stderr
    after = current(env)[("openai", "gpt-4o")]
    assert (after["input"], after["output"], after["cached_input"], after["source"]) == ("2", "8", "1", "manual")
    history = [r for r in json.loads(run(env, "pricing", "list", "--all", "--json").stdout)
               if (r["provider"], r["model"]) == ("openai", "gpt-4o")]
    assert [h["input"] for h in history] == ["2.5", "2"]


@pytest.mark.parametrize(("args", "message"), [
    (["openai", "gpt-4o", "--input", "x", "--output", "1"], "--input: not a number: 'x'"),
    (["openai", "gpt-4o", "--input", "-1", "--output", "1"], "--input: must be a non-negative amount"),
    (["acme", "m", "--input", "1", "--output", "1"], "unknown provider 'acme'"),
    (["openai", "gpt-4o", "--input", "1"], "Missing option '--output'"),
])
def test_pricing_set_rejects_bad_input_with_exit_2(env, args, message):
    p = run(env, "pricing", "set", *args)
    assert p.returncode == 2 and message in p.stderr


def test_pricing_sync_reads_openrouters_model_list(env, fakes):
    fakes["openrouter"].prices["openai/gpt-4o"]["prompt"] = "0.000002"
    p = run(env, "pricing", "sync")
    assert p.returncode == 0, p.stderr
    assert "new price(s)" in p.stdout and "1 without a usable price" in p.stdout  # openrouter/auto's -1
    prices = current(env, "openrouter")
    assert prices[("openrouter", "openai/gpt-4o")]["input"] == "2"
    assert prices[("openrouter", "openai/gpt-4o")]["source"] == "openrouter"
    assert prices[("openrouter", "meta-llama/llama-3.2-3b-instruct:free")]["input"] == "0"
    assert prices[("openrouter", "meta-llama/llama-3.1-70b-instruct")]["source"] == "seed"  # unchanged
    again = run(env, "pricing", "sync")
    assert "0 new price(s)" in again.stdout


def test_pricing_sync_reports_an_unreachable_openrouter(env):
    env["OPENROUTER_BASE_URL"] = "http://127.0.0.1:9/api/v1"
    p = run(env, "pricing", "sync")
    assert p.returncode == 1 and "cannot read openrouter's model list" in p.stderr


def test_pricing_sync_of_a_provider_without_a_price_list_says_so(env):
    p = run(env, "pricing", "sync", "--provider", "anthropic")
    assert p.returncode == 2 and "anthropic publishes no price list" in p.stderr
    p = run(env, "pricing", "sync", "--provider", "nosuch")
    assert p.returncode == 2 and "unknown provider 'nosuch'" in p.stderr
