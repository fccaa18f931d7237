"""The CLI as a user runs it: a real process, with the providers' base URLs at the fakes."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from llmrelay.testing import FakeServers, faults


@pytest.fixture(scope="module")
def fakes():
    with FakeServers() as f:
        yield f


@pytest.fixture
def env(fakes, tmp_path):
    fakes.reset()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    base.update(fakes.env())
    base["LLMRELAY_HOME"] = str(tmp_path / "home")
    base["LLMRELAY_MAX_RETRIES"] = "0"
    base["COLUMNS"] = "200"
    return base


def run(env, *args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=60, cwd=cwd)


def test_chat_streams_the_answer_and_ends_with_a_summary_line(env):
    p = run(env, "chat", "--agent", "general-agent", "Hello CLI")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Hello from fake anthropic (claude-3-5-sonnet-20241022). You said: Hello CLI\n"
    last = p.stderr.strip().splitlines()[-1]
    assert "anthropic" in last and "claude-3-5-sonnet-20241022" in last and "no fallback" in last
    assert re.search(r"\d+ prompt \+ \d+ completion = \d+ tokens", last)


def test_chat_json_is_exactly_one_object_with_the_documented_fields(env, fakes):
    fakes["anthropic"].script(faults.overloaded())
    p = run(env, "chat", "--agent", "general-agent", "--json", "Hi")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert set(data) == {"response", "model", "provider", "usedProvider", "fallbackUsed", "budgetDowngraded",
                         "attemptedProviders", "tokensUsed", "costUsd", "generationTime", "requestId"}
    assert data["usedProvider"] == data["provider"] == "openai" and data["fallbackUsed"] is True
    assert data["attemptedProviders"][0]["status"] == "failed"
    assert data["attemptedProviders"][0]["errorKind"] == "overloaded"
    assert isinstance(data["generationTime"], int)


def test_chat_exits_1_and_says_why_for_each_link_when_all_fail(env, fakes):
    for name in ("anthropic", "google", "ollama"):
        fakes[name].script(faults.overloaded())
    p = run(env, "chat", "--agent", "web-dev-agent", "--json", "Hi")
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert [a["provider"] for a in data["attemptedProviders"]] == ["anthropic", "google", "ollama"]
    assert data["error"].startswith("all 3 links failed")
    for name in ("anthropic", "google", "ollama"):
        fakes[name].script(faults.overloaded())
    p = run(env, "chat", "--agent", "web-dev-agent", "Hi")
    assert p.returncode == 1 and p.stdout == ""
    assert "anthropic/claude-3-5-sonnet-20241022 failed (overloaded)" in p.stderr
    assert "all 3 links failed" in p.stderr


def test_chat_with_provider_model_and_history(env, fakes, tmp_path):
    h = tmp_path / "h.json"
    h.write_text(json.dumps([{"role": "user", "content": "I am Bob."}, {"role": "assistant", "content": "Hi Bob."}]))
    p = run(env, "chat", "--agent", "general-agent", "--provider", "ollama", "--model", "mistral",
            "--history", str(h), "Who am I?")
    assert p.returncode == 0, p.stderr
    assert "ollama" in p.stderr.splitlines()[-1]
    sent = fakes["ollama"].requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]


@pytest.mark.parametrize(("args", "message"), [
    (["chat", "--agent", "nope", "Hi"], "unknown agent 'nope'"),
    (["chat", "--agent", "general-agent", "--history", "missing.json", "Hi"], "--history missing.json: no such file"),
    (["chat", "--agent", "general-agent", "--provider", "acme", "Hi"], "unknown provider 'acme'"),
    (["chat", "--agent", "general-agent", " "], "message must be a non-empty string"),
])
def test_bad_usage_is_one_line_and_exit_code_2(env, args, message):
    p = run(env, *args)
    assert p.returncode == 2
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_usage_errors_from_typer_exit_2(env):
    assert run(env, "chat", "Hi").returncode == 2  # --agent missing
    assert run(env, "chat", "--agent", "general-agent", "--temperature", "7", "Hi").returncode == 2


def test_a_bad_setting_stops_the_cli_with_the_variable_named(env):
    env["OPENAI_BASE_URL"] = "not a url"
    p = run(env, "providers")
    assert p.returncode == 2 and p.stderr.startswith("llmrelay: error: OPENAI_BASE_URL: ")


def test_providers_lists_reasons_and_check_probes_each(env, fakes):
    del env["GOOGLE_API_KEY"]
    p = run(env, "providers", "--json")
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    assert rows["google"]["enabled"] is False and rows["google"]["reason"] == "GOOGLE_API_KEY is not set"
    assert rows["ollama"]["enabled"] is True
    p = run(env, "providers", "--check", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    checks = {r["name"]: r.get("check") for r in json.loads(p.stdout)}
    assert all(checks[n]["ok"] for n in ("anthropic", "openai", "openrouter", "ollama"))
    assert checks["google"] is None
    fakes["openai"].script(faults.http_error(401))
    p = run(env, "providers", "--check")
    assert p.returncode == 1 and "auth" in p.stdout


def test_agents_table_and_agents_file(env, tmp_path):
    f = tmp_path / "agents.toml"
    f.write_text('[[agents]]\nid = "support-agent"\nname = "Support"\nprovider = "openai"\nmodel = "gpt-4o-mini"\n')
    env["LLMRELAY_AGENTS_FILE"] = str(f)
    p = run(env, "agents")
    assert p.returncode == 0
    assert "support-agent" in p.stdout and "general-agent" in p.stdout
    data = json.loads(run(env, "agents", "--json").stdout)
    assert {a["id"] for a in data} >= {"support-agent", "web-dev-agent", "general-agent"}
    f.write_text('[[agents]]\nid = "x"\nname = "X"\nprovider = "opneai"\nmodel = "m"\n')
    p = run(env, "agents")
    assert p.returncode == 2 and "agents.toml: agent 'x': provider: unknown provider 'opneai'" in p.stderr


def test_fake_providers_command_serves_scriptable_fakes_a_user_can_chat_against(env, tmp_path):
    env_file = tmp_path / "fakes.env"
    proc = subprocess.Popen([sys.executable, "-m", "llmrelay", "fake-providers", "--port", "0",
                             "--env-file", str(env_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        for _ in range(100):
            if env_file.exists():
                break
            time.sleep(0.1)
        pairs = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
        assert set(pairs) >= {"ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OLLAMA_BASE_URL"}
        env.update(pairs)
        import urllib.request

        anthropic = pairs["ANTHROPIC_BASE_URL"]
        req = urllib.request.Request(anthropic + "/_fake/faults", data=json.dumps({"type": "overloaded"}).encode(),
                                     headers={"content-type": "application/json"})
        assert json.loads(urllib.request.urlopen(req, timeout=5).read()) == {"queued": 1}
        p = run(env, "chat", "--agent", "general-agent", "--json", "Hi")
        data = json.loads(p.stdout)
        assert data["usedProvider"] == "openai" and data["fallbackUsed"] is True
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000104944415478"
                    "9c63f8cfc000440c100a001fee03fd8b5f14d40000000049454e44ae426082")


def test_chat_sends_images_with_the_message(env, fakes, tmp_path):
    (tmp_path / "dot.png").write_bytes(PNG)
    (tmp_path / "photo").write_bytes(PNG)  # no extension: the type comes from the bytes
    p = run(env, "chat", "--agent", "general-agent", "--image", "dot.png", "--image", "photo", "What are these?",
            cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "I saw 2 images" in p.stdout
    content = fakes["anthropic"].requests[-1].body["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "image", "image"]
    assert content[1]["source"]["media_type"] == "image/png"
    assert content[1]["source"]["data"] == __import__("base64").b64encode(PNG).decode()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("missing.png", None, "--image missing.png: no such file"),
    ("notes.txt", b"just text", "--image notes.txt: not an image"),
])
def test_a_bad_image_is_a_usage_error(env, tmp_path, name, data, message):
    if data is not None:
        (tmp_path / name).write_bytes(data)
    p = run(env, "chat", "--agent", "general-agent", "--image", name, "Hi", cwd=tmp_path)
    assert p.returncode == 2 and message in p.stderr


def test_chat_prints_the_tools_an_answer_calls(env, fakes):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]
    fakes["anthropic"].script(faults.reply(text="Let me look.", tool_calls=calls))
    p = run(env, "chat", "--agent", "general-agent", "Weather and time in Paris?")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "Let me look."
    assert lines[1:] == ['tool call: get_weather {"city":"Paris"}', "tool call: get_time {}"]
    fakes["anthropic"].script(faults.reply(tool_calls=calls[:1]))
    data = json.loads(run(env, "chat", "--agent", "general-agent", "--json", "Weather?").stdout)
    [call] = data["toolCalls"]
    assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Paris"})
    assert call["id"] and data["response"] == ""
