"""Secrets never leave: a realistic session with marked secrets, then a grep of everything it left.

The secrets: each provider's API key (distinctive values the fakes insist on, one of them without any
well-known key shape), the session-signing secret, and every user's API key (a live and a revoked one).
The session: the agents API (plain and streaming), /v1/chat/completions (plain and streaming),
/v1/messages (plain and streaming), /v1/responses, providers that fail by echoing the key they were
sent (a fallback, a chain that fails whole, a stream that breaks), the web pages with a session cookie,
/metrics and the other reads, and the CLI's `usage --json`, `keys list` and `users list`.  What is
grepped: every response's headers and body, every log record at DEBUG (the access log included), the
CLI's output, and every file under LLMRELAY_HOME (the SQLite database and its -wal, the spool).  The
users' keys are kept as SHA-256 only: the hash is in the database, the key is not."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx

from llmrelay.db.users import PREFIX_LEN, hash_key
from llmrelay.testing import faults
from tests.security.world import PROVIDER_SECRETS, SESSION_SECRET, form_field, sign_in

CHAT = [{"role": "user", "content": "Hello"}]


class Transcript:
    """Every response of the session, as text to grep."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, c: httpx.AsyncClient, method: str, url: str, status: int | None = None, **kw):
        r = await c.request(method, url, **kw)
        if status is not None:
            assert r.status_code == status, (method, url, r.status_code, r.text[:300])
        headers = "\n".join(f"{k}: {v}" for k, v in r.headers.multi_items())
        self.texts.append(f"{method} {url} {r.status_code}\n{headers}\n{r.text}")
        return r


def echoing_faults(fakes) -> None:
    """Each keyed provider fails once by echoing the key it was sent, as real providers do."""
    s = PROVIDER_SECRETS
    fakes["anthropic"].script(faults.http_error(401, "authentication_error", f"invalid x-api-key: {s['anthropic']}"))
    fakes["openai"].script(faults.http_error(401, "invalid_api_key", f"Incorrect API key provided: {s['openai']}"))
    fakes["google"].script(faults.http_error(400, "API_KEY_INVALID", f"API key not valid: {s['google']}"))
    fakes["openrouter"].script(faults.http_error(401, None, f"No auth credentials found for {s['openrouter']}"))


async def agents_and_doors(go, c: httpx.AsyncClient, users, fakes) -> None:
    alice, bob = users.auth("alice"), {"x-api-key": users.keys["bob"]}
    await go(c, "GET", "/api/ai/agents", 200, headers=alice)
    await go(c, "POST", "/api/ai/agents", 200, headers=alice, json={"agentId": "general-agent", "message": "Hi"})
    await go(c, "POST", "/api/ai/agents", 200, headers=alice,
             json={"agentId": "general-agent", "message": "Hi", "stream": True})
    await go(c, "POST", "/v1/chat/completions", 200, headers=bob, json={"model": "agent:general-agent",
                                                                       "messages": CHAT})
    await go(c, "POST", "/v1/chat/completions", 200, headers=bob,
             json={"model": "openai/gpt-4o", "messages": CHAT, "stream": True,
                   "stream_options": {"include_usage": True}})
    await go(c, "POST", "/v1/messages", 200, headers=bob,
             json={"model": "agent:general-agent", "max_tokens": 64, "messages": CHAT})
    await go(c, "POST", "/v1/messages", 200, headers=bob,
             json={"model": "anthropic/claude-3-5-sonnet-20241022", "max_tokens": 64, "messages": CHAT, "stream": True})
    await go(c, "POST", "/v1/responses", 200, headers=bob, json={"model": "agent:general-agent", "input": "Hi"})
    for model in ("google/gemini-2.0-flash", "openrouter/meta-llama/llama-3.1-70b-instruct"):
        await go(c, "POST", "/v1/chat/completions", 200, headers=bob, json={"model": model, "messages": CHAT})
    for name in PROVIDER_SECRETS:  # each fake answers only its secret key: the keys did go out, to them
        assert fakes[name].requests, name


async def failing_providers(go, c: httpx.AsyncClient, users, fakes) -> None:
    alice = users.auth("alice")
    echoing_faults(fakes)  # four links fail, the fifth (ollama) answers
    r = await go(c, "POST", "/api/ai/agents", 200, headers=alice, json={"agentId": "general-agent", "message": "Hi"})
    assert r.json()["fallbackUsed"] is True
    echoing_faults(fakes)
    await go(c, "POST", "/v1/chat/completions", headers=alice, json={"model": "openai/gpt-4o", "messages": CHAT})
    await go(c, "POST", "/v1/messages", headers=alice,
             json={"model": "anthropic/claude-3-5-sonnet-20241022", "max_tokens": 64, "messages": CHAT})
    await go(c, "POST", "/api/ai/agents", headers=alice, json={"agentId": "code-review-agent", "message": "Hi",
                                                               "stream": True})
    fakes["openai"].script(faults.stream_error(1, message=f"upstream broke near {PROVIDER_SECRETS['openai']}"))
    await go(c, "POST", "/v1/chat/completions", headers=alice,
             json={"model": "openai/gpt-4o", "messages": CHAT, "stream": True})
    await go(c, "POST", "/api/ai/agents", headers={"authorization": f"Bearer {users.revoked}"},
             json={"agentId": "general-agent", "message": "Hi"})
    fakes.reset()


async def pages_and_reads(go, new_client, users) -> None:
    for who in ("alice", "admin"):
        async with new_client() as c:
            csrf = await sign_in(c, users.keys[who])
            for path in ("/", "/agents/general-agent", "/usage", "/usage?range=30d", "/api/ai/agents",
                         "/api/ai/models", "/api/ai/providers", "/api/ai/config", "/api/ai/budgets",
                         "/api/ai/usage?groupBy=provider", "/api/ai/usage/records", "/api/ai/usage/export?format=csv"):
                await go(c, "GET", path, 200)
            await go(c, "POST", "/api/ai/agents", 200, headers={"x-csrf-token": csrf},
                     json={"agentId": "general-agent", "message": "From the page", "stream": True})
            await go(c, "POST", "/signout", 303, data={"csrf_token": csrf})
    async with new_client() as c:  # a refused sign-in does not show the key back
        page = await go(c, "GET", "/signin", 200)
        r = await go(c, "POST", "/signin", 200, data={"key": users.revoked, "next": "/",
                                                     "signin_token": form_field(page.text, "signin_token")})
        assert "not valid" in r.text
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/signin", "/static/app.js"):
            await go(c, "GET", path, 200)


def cli_outputs(fakes, home) -> list[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(fakes.env(), LLMRELAY_HOME=str(home), LLMRELAY_SESSION_SECRET=SESSION_SECRET, COLUMNS="200")
    outputs = []
    for args in (["usage", "--json"], ["keys", "list"], ["users", "list"]):
        p = subprocess.run([sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, (args, p.stderr)
        outputs.append(f"llmrelay {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    assert "lr_" in outputs[1] and "alice" in outputs[1]  # the prefixes are listed, never the keys
    return outputs


def files_under(home) -> dict[str, bytes]:
    found = {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert "llmrelay.db" in found
    return found


def log_text(caplog) -> str:
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info and not record.exc_text:
            lines.append(logging.Formatter().formatException(record.exc_info))
        lines.append(str(record.__dict__))
    return "\n".join(lines)


async def test_no_secret_appears_in_any_response_log_page_cli_output_or_file(app, users, client, fakes, home, caplog,
                                                                              new_client):
    caplog.set_level(logging.DEBUG)
    go = Transcript()
    await agents_and_doors(go, client, users, fakes)
    await failing_providers(go, client, users, fakes)
    await pages_and_reads(go, new_client, users)
    await app.state.relay.ledger.recorder.flush()
    cli = cli_outputs(fakes, home)
    files = files_under(home)

    user_keys = [*users.keys.values(), users.revoked]
    secrets = {**{f"{p} key": k for p, k in PROVIDER_SECRETS.items()}, "session secret": SESSION_SECRET,
               **{f"user key {k[:PREFIX_LEN]}": k[PREFIX_LEN:] for k in user_keys}}  # the prefix is no secret
    places = {"responses": "\n".join(go.texts), "logs": log_text(caplog), "cli": "\n".join(cli),
              **{f"file {name}": data.decode("latin-1") for name, data in files.items()}}
    assert any('"path":"/v1/messages"' in r.getMessage() for r in caplog.records if r.name == "llmrelay.access")
    leaks = [(what, where) for what, secret in secrets.items() for where, text in places.items() if secret in text]
    assert not leaks, f"secrets found: {leaks}"
    assert sum("[redacted]" in text for text in go.texts) >= 3  # the echoed keys came back, redacted

    stored = files["llmrelay.db"] + files.get("llmrelay.db-wal", b"")
    for key in user_keys:
        assert hash_key(key).encode() in stored  # kept as its SHA-256 only
