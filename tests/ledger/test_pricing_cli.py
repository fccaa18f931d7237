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
    (["openai", "gpt-4o", "--input", "1.0000000001", "--output", "1"],  # never rounded away in silence
     "--input: more than 9 decimal places per 1M tokens"),
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
    assert prices[("openrouter", "openai/gpt-4o-mini")]["source"] == "seed"  # unchanged
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


# -- sync from genai-prices and from a file; tiers from the command line -----------------------------------


def test_pricing_sync_from_genai_prices_prices_every_catalog_model_it_knows(env):
    from genai_prices import data_snapshot

    from llmrelay.catalog import KNOWN_MODELS
    from llmrelay.ledger.price_sources import GENAI_PROVIDERS

    p = run(env, "pricing", "sync", "--source", "genai-prices")
    assert p.returncode == 0, p.stderr
    assert "google/text-embedding-004: not in genai-prices" in p.stdout  # the catalog models it does not know
    assert "genai-prices does not know the provider" in p.stdout  # ollama: priced by its own `*` row
    prices = current(env)
    known = 0
    for provider, model in KNOWN_MODELS:
        if provider not in GENAI_PROVIDERS:
            continue
        try:
            data_snapshot.get_snapshot().find_provider_model(model, None, GENAI_PROVIDERS[provider], None)
        except LookupError:
            continue
        known += 1
        row = prices[(provider, model)]
        assert row["input"] != "—" and row["output"] != "—", (provider, model)
    assert known >= 25
    pro = prices[("google", "gemini-2.5-pro")]
    assert [(t["aboveInputTokens"], t["input"], t["output"]) for t in pro["tiers"]] == [(200000, "2.5", "15")]
    again = run(env, "pricing", "sync", "--source", "genai-prices")
    assert again.returncode == 0 and "genai-prices: 0 new price(s)" in again.stdout


def test_pricing_sync_dry_run_writes_nothing(env, tmp_path):
    before = run(env, "pricing", "list", "--all", "--json").stdout
    p = run(env, "pricing", "sync", "--source", "genai-prices", "--dry-run")
    assert p.returncode == 0 and "dry run" in p.stdout
    assert run(env, "pricing", "list", "--all", "--json").stdout == before


PRICE_TOML = '''
[[prices]]
provider = "openrouter"
model = "meta-llama/llama-3.3-70b-instruct:free"
input = "0"
output = "0"

[[prices]]
provider = "google"
model = "gemini-2.5-pro"
input = "1.25"
output = "10"
cached_input = 0.125
[[prices.tiers]]
above_input_tokens = 128000
input = "2.5"
output = "15"
cached_input = "0.25"
'''


def test_pricing_sync_from_a_toml_file_prints_model_ids_literally_at_80_columns(env, tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(PRICE_TOML)
    p = run({**env, "COLUMNS": "80"}, "pricing", "sync", "--source", f"file:{path}")
    assert p.returncode == 0, p.stderr
    assert "llama-3.3-70b-instruct:free" in p.stdout.replace("\n", "").replace("│", "").replace(" ", "") or \
        ":free" in p.stdout  # folded or whole, never an emoji
    assert "🆓" not in p.stdout
    assert "input >128k" in p.stdout and "— -> 2.5" in p.stdout  # 0013's tier is above 200k
    prices = current(env)
    assert prices[("openrouter", "meta-llama/llama-3.3-70b-instruct:free")]["source"] == "file"
    assert prices[("google", "gemini-2.5-pro")]["tiers"][0]["cached_input"] == "0.25"
    again = run(env, "pricing", "sync", "--source", f"file:{path}")
    assert "file: 0 new price(s), 2 unchanged" in again.stdout


def test_pricing_sync_from_a_json_file_with_a_date(env, tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"prices": [{"provider": "openai", "model": "gpt-4o", "input": "2", "output": "8", '
                    '"effective_from": "2030-01-01"}]}')
    p = run(env, "pricing", "sync", "--source", f"file:{path}", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [(c["model"], c["new"]["input"], c["old"]["input"]) for c in out["changes"]] == [("gpt-4o", "2", "2.5")]
    history = [r for r in json.loads(run(env, "pricing", "list", "--all", "--json").stdout)
               if (r["provider"], r["model"]) == ("openai", "gpt-4o")]
    assert history[-1]["effectiveFrom"].startswith("2030-01-01") and current(env)[("openai", "gpt-4o")]["input"] != "2"


@pytest.mark.parametrize(("content", "message"), [
    ('{"prices": [{"provider": "acme", "model": "m", "input": "1", "output": "1"}]}', "provider must be one of"),
    ('{"prices": [{"provider": "openai", "model": "m", "output": "1"}]}', "input is required"),
    ('{"prices": [{"provider": "openai", "model": "m", "input": "-1", "output": "1"}]}', "non-negative"),
    ('{"prices": [{"provider": "openai", "model": "m", "input": "1", "output": "1", "tiers": [{"input": "1"}]}]}',
     "above_input_tokens must be"),
    ("not json", "not JSON"),
])
def test_pricing_sync_refuses_a_bad_price_file_with_exit_2(env, tmp_path, content, message):
    path = tmp_path / "prices.json"
    path.write_text(content)
    p = run(env, "pricing", "sync", "--source", f"file:{path}")
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert run(env, "pricing", "sync", "--source", "nosuch").returncode == 2


def test_pricing_set_with_tiers_and_hour_writes(env):
    p = run(env, "pricing", "set", "anthropic", "claude-x", "--input", "3", "--output", "15", "--cache-write", "3.75",
            "--cache-write-1h", "6", "--tier", "200000:6:22.5:0.6:7.5:12")
    assert p.returncode == 0, p.stderr
    row = current(env)[("anthropic", "claude-x")]
    assert (row["cache_write_1h"], row["tiers"][0]["cache_write_1h"], row["tiers"][0]["aboveInputTokens"]) == (
        "6", "12", 200000)
    bad = run(env, "pricing", "set", "anthropic", "claude-x", "--input", "3", "--output", "15", "--tier", "0:1:1")
    assert bad.returncode == 2 and "--tier" in bad.stderr
