"""One pipeline: every ingress goes through `Relay.run`, so the same request is held to the same limits
and charged the same tokens however it ends — answered, failed, cancelled, or abandoned mid-stream —
through the agents API, /v1, `llmrelay chat` (a real process) and the Python API.

The tokens a request is charged are read where the rate limiter keeps them: Redis, shared by the
in-process app and the CLI processes (each ingress asks as its own user, so each has its own counter).
Each must equal the tokens of the request's ledger rows, and be more than nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from llmrelay.api import create_app
from llmrelay.config import load_settings
from llmrelay.db.users import create_key, create_user
from llmrelay.testing import FakeServers, faults
from llmrelay.types import TextDelta
from tests.servers import listening, wait_for

REDIS = "redis://127.0.0.1:6379/0"
REDIS_CLI = shutil.which("redis-cli")
TPM = 1_000_000  # every user's own limit: far above what these requests use, so nothing is clipped
AGENTS = """
[[agents]]
id = "two-step"
name = "Two step"
system_prompt = "Answer briefly."
default_provider = "anthropic"
supported_providers = [
  { provider = "anthropic", model = "claude-3-5-haiku-20241022", priority = 1 },
  { provider = "openai", model = "gpt-4o-mini", priority = 2 },
]
"""
QUESTION = "Tell me about the one pipeline"
INGRESSES = ("agents", "v1", "cli", "python")


pytestmark = pytest.mark.skipif(
    not listening(6379) or REDIS_CLI is None,
    reason="Redis (and redis-cli) not reachable at 127.0.0.1:6379 (.ci/run installs and starts it): the CLI shares "
           "rate-limit counters with the server only through Redis")


@pytest.fixture(scope="module")
def fakes():
    with FakeServers() as f:
        yield f


@pytest.fixture
def home(tmp_path) -> Path:
    (tmp_path / "agents.toml").write_text(AGENTS)
    return tmp_path / "home"


@pytest.fixture
async def app(fakes, home, monkeypatch):
    fakes.reset()
    for var, value in fakes.env().items():
        monkeypatch.setenv(var, value)
    settings = load_settings(env_file=None, home=home, max_retries=0, redis_url=REDIS,
                             agents_file=home.parent / "agents.toml")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app
    fakes.reset()


@pytest.fixture
async def users(app):
    """One user per ingress (a fresh name each test: their Redis counters start at zero), with keys."""
    made = {}
    async with app.state.relay.ledger.sessions() as s, s.begin():
        for ingress in INGRESSES:
            user = await create_user(s, f"{ingress}-{uuid.uuid4().hex[:8]}", tpm_limit=TPM, rpm_limit=1000)
            key, _ = await create_key(s, user)
            made[ingress] = (user.id, user.name, key)
    return made


def cli_env(fakes, home: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
    return {**base, **fakes.env(), "LLMRELAY_HOME": str(home), "LLMRELAY_MAX_RETRIES": "0",
            "LLMRELAY_REDIS_URL": REDIS, "LLMRELAY_AGENTS_FILE": str(home.parent / "agents.toml")}


def charged(user_id: str) -> int:
    """The tokens the rate limiter has charged `user_id` (its sliding-window counters in Redis)."""
    keys = subprocess.run([REDIS_CLI, "--raw", "keys", f"*tpm/{user_id}/*"], capture_output=True, text=True,
                          check=True).stdout.split()
    if not keys:
        return 0
    values = subprocess.run([REDIS_CLI, "--raw", "mget", *keys], capture_output=True, text=True,
                            check=True).stdout.split()
    return sum(int(v) for v in values if v.strip().lstrip("-").isdigit())


async def ledger_tokens(app, user_id: str) -> tuple[int, int]:
    """(rows, tokens) of every ledger row of `user_id` (each test's user makes one request)."""
    await app.state.relay.ledger.recorder.flush()
    home = app.state.settings.home
    with sqlite3.connect(home / "llmrelay.db") as db:
        rows, tokens = db.execute("SELECT count(*), coalesce(sum(total_tokens), 0) FROM ai_model_usage "
                                  "WHERE user_id = ?", (user_id,)).fetchone()
    return rows, tokens


# -- driving each ingress --------------------------------------------------------------------------------


async def asgi(app, path: str, body: dict, key: str, *, leave_after_first_chunk: bool = False,
               cancel_when=None) -> tuple[int | None, bytes]:
    """One request through the raw ASGI interface (httpx's in-process transport can neither hang up
    mid-body nor be cancelled): the client may leave after the first body chunk, or the request's task
    may be cancelled (as a server shutdown does) once `cancel_when()` holds."""
    raw = orjson.dumps(body)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "server": ("test", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {key}".encode())]}
    first_chunk = asyncio.Event()
    sent: list[dict] = []
    asked = False

    async def receive():
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": raw, "more_body": False}
        if leave_after_first_chunk:
            await first_chunk.wait()
        else:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first_chunk.set()

    task = asyncio.ensure_future(app(scope, receive, send))
    if cancel_when is not None:
        deadline = time.monotonic() + 10
        while not cancel_when():
            assert time.monotonic() < deadline, "the request never got where it was to be cancelled"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        await asyncio.wait_for(task, 10)
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def run_cli(fakes, home: Path, user: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmrelay", "chat", "--agent", "two-step", "--user", user, *args,
                           QUESTION], env=cli_env(fakes, home), capture_output=True, text=True, timeout=60)


def interrupt_cli(fakes, home: Path, user: str, *args: str, when) -> tuple[int, str]:
    """`llmrelay chat`, stopped with SIGINT (Ctrl-C) once `when(proc)` holds."""
    proc = subprocess.Popen([sys.executable, "-m", "llmrelay", "chat", "--agent", "two-step", "--user", user, *args,
                             QUESTION], env=cli_env(fakes, home), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for("the CLI to get where it is interrupted", lambda: when(proc), 30, every=0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err.decode()


def first_stdout_byte(proc) -> bool:
    return bool(proc.stdout.read(1))


# -- the three ways a request ends without an answer ---------------------------------------------------


def script_failing(fakes) -> None:
    """The first link answers but its answer is a refusal (tokens used, falls through); the second fails."""
    fakes["anthropic"].script(faults.reply(text="I will not", finish="refusal"))
    fakes["openai"].script(faults.http_error(500))


async def test_a_failing_request_charges_the_same_tokens_through_every_ingress(app, users, fakes, home):
    ask = {"agentId": "two-step", "message": QUESTION}
    script_failing(fakes)
    status, _ = await asgi(app, "/api/ai/agents", ask, users["agents"][2])
    assert status == 502
    script_failing(fakes)
    v1 = {"model": "agent:two-step", "messages": [{"role": "user", "content": QUESTION}]}
    status, _ = await asgi(app, "/v1/chat/completions", v1, users["v1"][2])
    assert status == 502
    script_failing(fakes)
    p = run_cli(fakes, home, users["cli"][1], "--json")
    assert p.returncode == 1, p.stderr
    script_failing(fakes)
    relay = app.state.relay
    outcome = await relay.run(await relay.principal(users["python"][0]), "agent:two-step",
                              *_python_turns())
    assert outcome.error is not None and outcome.tokens_spent > 0
    _assert_charged_alike(await _charges(app, users))


async def test_an_abandoned_stream_charges_the_same_tokens_through_every_ingress(app, users, fakes, home):
    words = " ".join(f"word{i}" for i in range(40))  # 40 deltas 0.2 s apart: the client leaves long before

    def script():
        fakes["anthropic"].script(faults.reply(text=words, seconds=0.2))

    script()
    status, body = await asgi(app, "/api/ai/agents", {"agentId": "two-step", "message": QUESTION, "stream": True},
                              users["agents"][2], leave_after_first_chunk=True)
    assert status == 200 and b"event: done" not in body
    script()
    status, body = await asgi(app, "/v1/chat/completions", {"model": "agent:two-step", "stream": True,
                                                             "messages": [{"role": "user", "content": QUESTION}]},
                              users["v1"][2], leave_after_first_chunk=True)
    assert status == 200 and b"[DONE]" not in body
    script()
    code, err = interrupt_cli(fakes, home, users["cli"][1], when=first_stdout_byte)
    assert code == 130 and "interrupted" in err
    script()
    relay = app.state.relay
    run = relay.run(await relay.principal(users["python"][0]), "agent:two-step", *_python_turns())
    events = aiter(run)
    async for event in events:
        if isinstance(event, TextDelta):
            break
    await events.aclose()
    charges = await _charges(app, users)
    _assert_charged_alike(charges)
    assert all(rows == 1 for rows, _, _ in charges.values())  # one cancelled attempt each, nothing else tried


async def test_a_cancelled_request_charges_the_same_tokens_through_every_ingress(app, users, fakes, home):
    """Cancelled while its second link hangs (a server shutting down cancels what is in flight; the CLI
    is stopped with Ctrl-C): the first link's tokens are charged all the same."""

    def script():
        fakes["anthropic"].script(faults.reply(text="I will not", finish="refusal"))
        fakes["openai"].script(faults.hang(30))

    def hanging(before: int):
        return lambda *_: len(fakes["openai"].requests) > before

    script()
    await asgi(app, "/api/ai/agents", {"agentId": "two-step", "message": QUESTION}, users["agents"][2],
               cancel_when=hanging(len(fakes["openai"].requests)))
    script()
    await asgi(app, "/v1/chat/completions", {"model": "agent:two-step",
                                             "messages": [{"role": "user", "content": QUESTION}]},
               users["v1"][2], cancel_when=hanging(len(fakes["openai"].requests)))
    script()
    code, err = interrupt_cli(fakes, home, users["cli"][1], "--json", when=hanging(len(fakes["openai"].requests)))
    assert code == 130 and "interrupted" in err
    script()
    relay = app.state.relay
    task = asyncio.ensure_future(relay.run(await relay.principal(users["python"][0]), "agent:two-step",
                                           *_python_turns()))
    wait = hanging(len(fakes["openai"].requests))
    while not wait():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    charges = await _charges(app, users)
    _assert_charged_alike(charges)
    assert all(rows == 2 for rows, _, _ in charges.values())  # the refusal, and the cancelled second link
    fakes.reset()  # the hanging fake replies end with the test


def _python_turns():
    from llmrelay.types import Message, RequestOptions

    return [Message("user", QUESTION)], RequestOptions()


async def _charges(app, users) -> dict[str, tuple[int, int, int]]:
    """Per ingress: (ledger rows, ledger tokens, tokens charged), once every charge has landed."""
    out = {}
    for ingress, (user_id, _, _) in users.items():
        rows, tokens = await ledger_tokens(app, user_id)
        deadline = time.monotonic() + 5
        while charged(user_id) != tokens and time.monotonic() < deadline:  # a charge finishing in the background
            await asyncio.sleep(0.05)
        out[ingress] = (rows, tokens, charged(user_id))
    return out


def _assert_charged_alike(charges: dict[str, tuple[int, int, int]]) -> None:
    spent = {ingress: c for ingress, (_, _, c) in charges.items()}
    recorded = {ingress: t for ingress, (_, t, _) in charges.items()}
    assert spent == recorded, charges  # each ingress charged exactly what its ledger rows used
    assert len(set(spent.values())) == 1, charges  # and every ingress the same
    assert next(iter(spent.values())) > 0, charges



async def test_a_per_user_rpm_limit_refuses_the_cli_too_and_is_shared_with_the_server(app, fakes, home):
    async with app.state.relay.ledger.sessions() as s, s.begin():
        user = await create_user(s, f"rpm-{uuid.uuid4().hex[:8]}", rpm_limit=2)
        key, _ = await create_key(s, user)
    status, _ = await asgi(app, "/api/ai/agents", {"agentId": "two-step", "message": QUESTION}, key)
    assert status == 200
    assert run_cli(fakes, home, user.name).returncode == 0  # the second request of the minute
    refused = run_cli(fakes, home, user.name)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "refused: rate limit reached (requests per minute)" in refused.stderr
    status, body = await asgi(app, "/v1/chat/completions", {"model": "agent:two-step",
                                                             "messages": [{"role": "user", "content": "Hi"}]}, key)
    assert status == 429 and orjson.loads(body)["error"]["code"] == "rate_limit_exceeded"
    rows, _ = await ledger_tokens(app, user.id)
    assert rows == 2  # the refused requests never reached a provider


def test_an_unknown_cli_user_is_one_line_and_exit_2(fakes, home):
    p = run_cli(fakes, home, "nobody-at-all")
    assert p.returncode == 2 and "no user 'nobody-at-all'" in p.stderr
