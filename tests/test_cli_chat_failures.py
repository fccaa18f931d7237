"""A failed `llmrelay chat`: each link's error is said once, however often the link was retried."""

import json
import os
import subprocess
import sys

import pytest

from llmrelay.testing import FakeServers


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with FakeServers() as fakes:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
        yield {**base, **fakes.env(), "LLMRELAY_HOME": str(tmp_path_factory.mktemp("chat") / "home"),
               "LLMRELAY_MAX_RETRIES": "2", "OLLAMA_BASE_URL": "http://127.0.0.1:9",  # nothing listens there
               "COLUMNS": "100"}


def chat(env, *args):
    return subprocess.run([sys.executable, "-m", "llmrelay", "chat", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_last_line_names_each_links_error_once_with_its_attempts(env):
    p = chat(env, "--agent", "local-agent", "Hi")  # two Ollama links, each tried three times
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    last = lines[-1]
    assert last.startswith("llmrelay: no answer: all 2 links failed: "
                           "ollama/mistral (3 attempts), ollama/llama3.2 (3 attempts): connection: "), last
    assert last.count("Ollama is not reachable") == 1
    # the attempts as they happen: the message once per link, a retry that failed alike in brief
    assert [line.split(" failed")[0] for line in lines[:-1]] == ["↪ ollama/mistral"] * 3 + ["↪ ollama/llama3.2"] * 3
    assert sum("not reachable" in line for line in lines[:-1]) == 2
    assert lines[1] == "↪ ollama/mistral failed (connection) again"


def test_json_says_the_same_once_and_keeps_every_attempt(env):
    p = chat(env, "--agent", "local-agent", "--json", "Hi")
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert data["error"].count("Ollama is not reachable") == 1
    assert len(data["attemptedProviders"]) == 6


def test_links_that_failed_differently_each_keep_their_own_reason(env):
    env = {k: v for k, v in env.items() if k not in ("GOOGLE_API_KEY", "ANTHROPIC_API_KEY")}
    p = chat(env, "--agent", "web-dev-agent", "Hi")  # anthropic, google, ollama
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("llmrelay: no answer: all 3 links failed: anthropic/claude-3-5-sonnet-20241022: "
                           "skipped: ANTHROPIC_API_KEY is not set; google/gemini-2.0-flash: skipped: "
                           "GOOGLE_API_KEY is not set; "), last
    assert "ollama/mistral (3 attempts): connection: Ollama is not reachable" in last
    assert last.count("Ollama is not reachable") == 1
