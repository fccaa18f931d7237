"""`llmrelay serve` as a real process: first start, keys made and revoked while it runs (one worker
and two), a client that walks away mid-stream, graceful shutdown, readiness and metrics.

Each test starts the server on port 0 (it prints the port it got), with its providers at the fakes
and its own LLMRELAY_HOME, and waits for /healthz.  Everything is polled with a deadline."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from tests.servers import Server, cli, wait_for

from llmrelay.agents import load_agents
from llmrelay.db.users import hash_key
from llmrelay.testing import faults

KEY_REFRESH = 2.0  # the default LLMRELAY_KEY_REFRESH: a revoked key is refused within this
@pytest.fixture
def env(fakes, tmp_path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    return {**base, **fakes.env(), "LLMRELAY_HOME": str(tmp_path / "home"), "LLMRELAY_MAX_RETRIES": "0",
            "LLMRELAY_LOG_LEVEL": "info", "COLUMNS": "200"}


@pytest.fixture
def start(env, tmp_path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def go(*args: str, **more_env: str) -> Server:
        server = Server({**env, **more_env}, tmp_path, *args)
        started.append(server)
        return server

    yield go
    for server in started:
        server.kill()


def ask(server: Server, key: str, message: str = "Hello", request_id: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", **({"x-request-id": request_id} if request_id else {})}
    return server.fresh("POST", "/api/ai/agents", headers=headers,
                        json={"agentId": "general-agent", "message": message})


def all_rows(home: Path) -> list[dict]:
    db = sqlite3.connect(home / "llmrelay.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM ai_model_usage ORDER BY created_at, attempt")]
    finally:
        db.close()


def ledger_rows(home: Path, request_id: str) -> list[dict]:
    with sqlite3.connect(home / "llmrelay.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM ai_model_usage WHERE request_id = ? ORDER BY attempt", (request_id,))
        return [dict(r) for r in rows]


def refused_everywhere(server: Server, key: str, times: int = 12) -> bool:
    """`times` requests, each on a new connection, all refused (every worker has dropped the key)."""
    return all(server.fresh("GET", "/api/ai/agents", headers={"authorization": f"Bearer {key}"}).status_code == 401
               for _ in range(times))


def test_first_start_prints_the_admin_key_once_and_stores_only_its_hash_then_keys_come_and_go_while_serving(
        start, env, tmp_path):
    server = start()
    lines = [line for line in server.stdout.splitlines() if line.startswith("admin api key: ")]
    assert len(lines) == 1, server.stdout
    admin_key = lines[0].removeprefix("admin api key: ")
    assert re.fullmatch(r"lr_[A-Za-z0-9_-]{40,}", admin_key)
    assert "/docs" in server.stdout

    r = ask(server, admin_key, "Hello from the first start", request_id="first-start-1")
    assert r.status_code == 200, r.text
    rid = r.json()["requestId"]  # llmrelay's own (unique) id; the client's is logged beside it
    assert rid == r.headers["x-request-id"] and rid != "first-start-1"
    assert server.stop() == 0

    home = tmp_path / "home"
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert hash_key(admin_key).encode() in stored  # we are looking in the right place…
    assert admin_key.encode() not in stored  # …and the key itself is not there
    assert ledger_rows(home, rid)[0]["status"] == "success"

    # the access log: one JSON line per request, with its id, never a key
    log = server.stderr
    assert f'"request_id":"{rid}"' in log and '"path":"/api/ai/agents"' in log
    assert '"client_request_id":"first-start-1"' in log
    assert admin_key not in log and (server.stdout + log).count(admin_key) == 1

    again = start()  # a restart: no new admin, the old key still works
    assert "admin api key" not in again.stdout
    assert again.fresh("GET", "/api/ai/agents", headers={"x-api-key": admin_key}).status_code == 200

    made = cli(env, "keys", "create", "--user", "admin", "--name", "ops")  # while it runs
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("lr_")
    assert again.fresh("GET", "/api/ai/agents", headers={"authorization": f"Bearer {key}"}).status_code == 200
    revoked = cli(env, "keys", "revoke", key[:11])
    assert revoked.returncode == 0, revoked.stderr
    wait_for("the revoked key to be refused", lambda: refused_everywhere(again, key, 1), KEY_REFRESH + 3)
    assert again.fresh("GET", "/api/ai/agents", headers={"x-api-key": admin_key}).status_code == 200
    assert key not in again.stderr + again.stdout
    assert again.stop(signal.SIGINT) == 0  # Ctrl-C: the same graceful stop


def test_two_workers_share_revocations_readiness_and_metrics(start, env, fakes):
    server = start("--workers", "2")
    admin_key = server.stdout.split("admin api key: ")[1].split()[0]
    ready = server.fresh("GET", "/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"

    spent = Decimal(0)
    for i in range(4):
        r = ask(server, admin_key, f"call {i}")
        assert r.status_code == 200, r.text
        spent += Decimal(r.json()["costUsd"])
    assert spent > 0
    for _ in range(4):  # whichever worker answers, /metrics adds up every worker's samples
        text = server.fresh("GET", "/metrics").text
        found = re.search(r'^llmrelay_attempts_total\{[^}]*provider="anthropic"[^}]*\} (\S+)$', text, re.M)
        assert found and float(found.group(1)) == 4.0, text[:2000]

    def cost_counted() -> float | None:  # counted as the ledger writer builds the rows
        text = server.fresh("GET", "/metrics").text
        found = re.search(r'^llmrelay_cost_usd_total\{provider="anthropic"\} (\S+)$', text, re.M)
        return found and abs(float(found.group(1)) - float(spent)) < 1e-9
    wait_for("the cost counter to reach what the replies cost", cost_counted, 10)

    made = cli(env, "keys", "create", "--user", "admin")
    key = made.stdout.strip().splitlines()[-1]
    assert all(server.fresh("GET", "/api/ai/agents", headers={"x-api-key": key}).status_code == 200
               for _ in range(8))
    assert cli(env, "keys", "revoke", key[:11]).returncode == 0
    wait_for("every worker to refuse the revoked key", lambda: refused_everywhere(server, key), KEY_REFRESH + 4)
    assert server.stop() == 0


def open_connections(fakes, name: str) -> int:
    """Connections the fake provider `name` holds open right now (its aiohttp server's count)."""
    return len(fakes._runners[name].server.connections)


def test_a_client_that_disconnects_mid_stream_cancels_the_upstream_call_and_its_usage_is_recorded(
        start, fakes, tmp_path):
    words = " ".join(f"word{i}" for i in range(60))  # 60 deltas, 0.3 s apart: an 18 s stream
    fakes["anthropic"].script(faults.reply(text=words, seconds=0.3))
    server = start()
    admin_key = server.stdout.split("admin api key: ")[1].split()[0]
    message = "Tell me a long story"

    seen = []
    with httpx.Client(base_url=server.url, timeout=30) as client, client.stream(
            "POST", "/api/ai/agents", headers={"authorization": f"Bearer {admin_key}", "x-request-id": "walked-away"},
            json={"agentId": "general-agent", "message": message, "stream": True}) as r:
        assert r.status_code == 200
        walked_away = r.headers["x-request-id"]
        for line in r.iter_lines():
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
            if seen.count("delta") == 3:
                break
        assert open_connections(fakes, "anthropic") == 1  # the upstream call is live while we listen
    # the client is gone: the relay closes its connection to the provider long before the 18 s are up
    wait_for("the upstream connection to close", lambda: open_connections(fakes, "anthropic") == 0, 5)
    assert [len(f.requests) for f in fakes.fakes.values()] == [1, 0, 0, 0, 0]  # and nothing else was tried
    assert server.stop() == 0

    rows = ledger_rows(tmp_path / "home", walked_away)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["provider"] == "anthropic" and row["status"] == "failed"
    assert row["error_message"].startswith("cancelled by the caller after ")
    system = load_agents()["general-agent"].system_prompt
    assert row["prompt_tokens"] == len(f"{system} {message}".split()) > 0  # Anthropic's message_start usage


def test_sigterm_lets_in_flight_requests_finish_within_the_grace_period_and_cancels_the_rest(
        start, fakes, tmp_path):
    fakes["anthropic"].script(faults.slow_first_byte(2.5))  # general-agent's first link: done within the grace
    fakes["openai"].script(faults.hang(10))  # code-review-agent's first link: never done
    server = start(LLMRELAY_SHUTDOWN_GRACE="5")
    admin_key = server.stdout.split("admin api key: ")[1].split()[0]
    answers: dict[str, httpx.Response | Exception] = {}

    def call(agent: str, rid: str) -> None:
        try:
            answers[rid] = server.fresh("POST", "/api/ai/agents", json={"agentId": agent, "message": "Hi"},
                                        headers={"authorization": f"Bearer {admin_key}", "x-request-id": rid})
        except httpx.HTTPError as exc:
            answers[rid] = exc

    threads = [threading.Thread(target=call, args=(agent, rid))
               for agent, rid in (("general-agent", "finishes"), ("code-review-agent", "cut-off"))]
    for t in threads:
        t.start()
    wait_for("both calls to reach the providers",
             lambda: fakes["anthropic"].requests and fakes["openai"].requests, 10)
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            httpx.get(server.url + "/healthz", timeout=0.5)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            return False
        return False

    wait_for("new connections to be refused", refused, 2.0)  # while the slow call is still in flight
    code = server.proc.wait(20)
    elapsed = time.monotonic() - t0
    for t in threads:
        t.join(10)

    assert code == 0, server.stderr
    assert 4.5 < elapsed < 12  # it waited for the grace period, then cancelled the rest
    done = answers["finishes"]
    assert isinstance(done, httpx.Response) and done.status_code == 200, done
    assert done.json()["usedProvider"] == "anthropic"
    cut = answers["cut-off"]
    assert not (isinstance(cut, httpx.Response) and cut.status_code == 200)
    home = tmp_path / "home"
    assert [r["status"] for r in ledger_rows(home, done.headers["x-request-id"])] == ["success"]
    cancelled = [r for r in all_rows(home) if r["agent_id"] == "code-review-agent"]
    assert [(r["provider"], r["status"]) for r in cancelled] == [("openai", "failed")]
    assert cancelled[0]["error_message"].startswith("cancelled")


def test_a_port_in_use_is_one_line_and_exit_1_and_nothing_is_created(env, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "llmrelay", "serve", "--port", str(port)], env=env,
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        f"llmrelay: error: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(is another server running there?)"]
    assert not (tmp_path / "home" / "llmrelay.db").exists()


@pytest.mark.parametrize("flags", [["--workers", "0"], ["--port", "70000"], ["--bogus"]])
def test_bad_flags_exit_2(flags):
    from typer.testing import CliRunner

    from llmrelay.cli import app

    assert CliRunner().invoke(app, ["serve", *flags]).exit_code == 2
