"""Three `llmrelay serve` replicas on loopback ports, started together on one empty PostgreSQL database and one
Redis, behind a round-robin client (what a load balancer does): they migrate once and make one admin, and
share global rate limits, circuit breaker state, revoked keys and saved configs (at once: keys are polled
only every 60 s here, so what the test sees came by PostgreSQL's notifications), and one ledger."""

from __future__ import annotations

import itertools
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import coredis
import httpx
import pytest

from llmrelay.testing import FakeServers, faults
from tests.dbfixtures import PG_ADMIN, _admin, _run
from tests.servers import Server, cli, listening, wait_for

REDIS_DB = 12
REDIS = f"redis://127.0.0.1:6379/{REDIS_DB}"
AGENTS = """
[[agents]]
id = "steady"
name = "Steady"
system_prompt = "Answer briefly."
default_provider = "openai"
supported_providers = [
  { provider = "openai", model = "gpt-4o-mini", priority = 1 },
  { provider = "anthropic", model = "claude-3-5-haiku-20241022", priority = 2 },
]
"""


pytestmark = pytest.mark.skipif(not (listening(5432) and listening(6379)),
                                reason="PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are both needed for "
                                       "the replicas (.ci/run starts them)")


class Cluster:
    def __init__(self, replicas: list[Server], env: dict[str, str], fakes: FakeServers, admin_key: str,
                 database: str) -> None:
        self.replicas = replicas
        self.env = env
        self.fakes = fakes
        self.admin_key = admin_key
        self.database = database
        self._next = itertools.cycle(range(len(replicas)))
        self.answers: list[dict] = []  # every agents-API answer, for the ledger's count of attempts

    def balanced(self) -> Server:
        """The next replica, round robin (what a load balancer does)."""
        return self.replicas[next(self._next)]

    def ask(self, key: str, replica: Server | None = None, message: str = "hello") -> httpx.Response:
        r = (replica or self.balanced()).fresh("POST", "/api/ai/agents", headers={"authorization": f"Bearer {key}"},
                                               json={"agentId": "steady", "message": message})
        if r.status_code == 200 or "attemptedProviders" in r.json():
            self.answers.append(r.json())
        return r

    def user_key(self, name: str, *flags: str) -> str:
        assert cli(self.env, "users", "add", name, *flags).returncode == 0
        made = cli(self.env, "keys", "create", "--user", name)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]


async def _flush_redis() -> None:
    await coredis.Redis.from_url(REDIS).flushdb()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("replicas")
    name = f"llmrelay_replicas_{os.getpid()}"
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _run(_admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/" + name
    _run(_flush_redis())
    (work / "agents.toml").write_text(AGENTS)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    with FakeServers() as fakes:
        env = {**base, **fakes.env(), "LLMRELAY_DATABASE_URL": url, "LLMRELAY_REDIS_URL": REDIS,
               "LLMRELAY_AGENTS_FILE": str(work / "agents.toml"), "LLMRELAY_MAX_RETRIES": "0",
               "LLMRELAY_RATE_RPM": "0", "LLMRELAY_RATE_TPM": "0", "LLMRELAY_KEY_REFRESH": "60",
               "LLMRELAY_SESSION_SECRET": "the-same-secret-on-every-replica-0123456789",
               "LLMRELAY_HOME": str(work / "cli-home")}

        def start(i: int) -> Server:
            home = work / f"replica-{i}"
            home.mkdir()
            return Server({**env, "LLMRELAY_HOME": str(home / "home")}, home)

        with ThreadPoolExecutor(3) as pool:  # all three at once, on an empty database
            replicas = list(pool.map(start, range(3)))
        try:
            keys = [k for r in replicas for k in re.findall(r"admin api key: (\S+)", r.stdout)]
            assert len(keys) == 1, [r.stdout for r in replicas]
            yield Cluster(replicas, env, fakes, keys[0], name)
        finally:
            for r in replicas:
                r.stop()
            _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _sql(cluster: Cluster, query: str) -> list:
    import asyncpg

    async def go():
        conn = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://")
                                     .rsplit("/", 1)[0] + "/" + cluster.database)
        try:
            return await conn.fetch(query)
        finally:
            await conn.close()

    found: list = []

    async def keep() -> None:
        found.extend(await go())

    _run(keep())
    return found


def test_replicas_started_together_migrate_once_and_make_one_admin(cluster):
    from llmrelay.db.migrate import head

    assert [r["version_num"] for r in _sql(cluster, "SELECT version_num FROM alembic_version")] == [head()]
    assert _sql(cluster, "SELECT count(*) AS n FROM users")[0]["n"] == 1
    for replica in cluster.replicas:
        assert replica.fresh("GET", "/readyz").json()["status"] == "ready"
        assert cluster.ask(cluster.admin_key, replica).status_code == 200


def test_rate_limits_are_global(cluster):
    key = cluster.user_key("limited", "--rpm", "7")
    codes = [cluster.ask(key).status_code for _ in range(12)]  # four per replica
    assert codes.count(200) == 7 and codes.count(429) == 5, codes


def test_a_circuit_opened_by_failures_on_different_replicas_is_open_on_every_one(cluster):
    key = cluster.user_key("breaker")
    openai = cluster.fakes["openai"]
    openai.reset()
    openai.script(*[faults.http_error(500) for _ in range(3)])
    for replica in cluster.replicas:  # one failing request on each replica: three consecutive failures in all
        r = cluster.ask(key, replica)
        assert r.status_code == 200 and r.json()["fallbackUsed"], r.text
        assert r.json()["attemptedProviders"][0]["status"] == "failed"
    assert len(openai.requests) == 3
    for replica in cluster.replicas:  # every replica skips the link now, without calling it
        first = wait_for("the circuit open on every replica", lambda rep=replica: _skipped(cluster.ask(key, rep)), 5)
        assert "circuit open" in first["error"]
    assert len(openai.requests) == 3
    metrics = cluster.replicas[0].fresh("GET", "/metrics").text
    assert "llmrelay_breaker_degraded 0.0" in metrics


def _skipped(r: httpx.Response) -> dict | None:
    first = r.json()["attemptedProviders"][0]
    return first if first["status"] == "skipped" else None


def test_a_revoked_key_stops_working_on_every_replica_at_once(cluster):
    key = cluster.user_key("revoked")
    for replica in cluster.replicas:
        assert replica.fresh("GET", "/api/ai/config", headers={"authorization": f"Bearer {key}"}).status_code == 200
    listed = cli(cluster.env, "keys", "list", "--json")
    prefix = next(k["prefix"] for k in json.loads(listed.stdout) if k["user"] == "revoked")
    assert cli(cluster.env, "keys", "revoke", prefix).returncode == 0
    for replica in cluster.replicas:  # keys are re-read every 60 s here: this is the notification
        wait_for("the key refused", lambda rep=replica: rep.fresh(
            "GET", "/api/ai/config", headers={"authorization": f"Bearer {key}"}).status_code == 401, 3)


def test_a_saved_config_applies_on_every_replica_at_once(cluster):
    key = cluster.user_key("configured")
    auth = {"authorization": f"Bearer {key}"}
    saved = cluster.replicas[0].fresh("POST", "/api/ai/config", headers=auth, json={
        "agentId": "steady", "primaryProvider": "google", "primaryModel": "gemini-2.0-flash", "fallbackChain": []})
    assert saved.status_code in (200, 201), saved.text
    for replica in cluster.replicas[1:]:  # configs are otherwise re-read every 5 s
        wait_for("the saved config served", lambda rep=replica: cluster.ask(key, rep).json().get("usedProvider")
                 == "google", 2)


def test_a_budget_set_on_one_replica_holds_on_every_replica_at_once(cluster):
    key = cluster.user_key("budgeted")
    for replica in cluster.replicas:  # each has read the budgets (none for this user)
        assert cluster.ask(key, replica).status_code == 200
    users = json.loads(cli(cluster.env, "users", "list", "--json").stdout)
    user_id = next(u["id"] for u in users if u["name"] == "budgeted")
    put = cluster.replicas[0].fresh("PUT", "/api/ai/budgets", headers={"authorization": f"Bearer {cluster.admin_key}"},
                                    json={"userId": user_id, "limitUsd": "0.000001"})
    assert put.status_code == 200, put.text
    for replica in cluster.replicas[1:]:  # budgets are otherwise re-read every 5 s
        wait_for("the budget enforced", lambda rep=replica: cluster.ask(key, rep).status_code == 402, 2)


def test_one_ledger_with_a_row_for_every_attempt(cluster):
    attempts = sum(len(a["attemptedProviders"]) for a in cluster.answers)
    ids = [a["requestId"] for a in cluster.answers]

    def rows() -> int:
        return _sql(cluster, "SELECT count(*) AS n FROM ai_model_usage")[0]["n"]

    wait_for("every row written", lambda: rows() >= attempts, 10)
    assert rows() == attempts
    found = _sql(cluster, "SELECT count(DISTINCT request_id) AS n FROM ai_model_usage")[0]["n"]
    assert found == len(set(ids))
    print(f"\nreplicas: {len(cluster.answers)} answers, {attempts} attempts, {rows()} ledger rows")
    totals = [r.fresh("GET", "/api/ai/usage", headers={"authorization": f"Bearer {cluster.admin_key}"})
              .json()["totals"] for r in cluster.replicas]
    assert totals[0] == totals[1] == totals[2]  # every replica reads the same ledger
    assert totals[0]["calls"] + totals[0]["skipped"] == attempts and totals[0]["requests"] == len(set(ids))

