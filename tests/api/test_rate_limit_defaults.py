"""Rate-limit defaults: an admin without limits of their own is not held to the per-user default (a load
test with the operator's key is not a flood of 429s), a 429 says which limit was hit, whose it is and how
to change it, and `llmrelay serve` prints the limits in force when it starts."""

from __future__ import annotations

import pytest

from llmrelay.db.users import create_key, create_user
from llmrelay.routing.guards import OverLimit, RateLimits, describe_limits
from llmrelay.types import Principal, RateLimited

ASK = {"agentId": "local-agent", "message": "Hi there"}


@pytest.fixture
def settings_overrides():
    return {"rate_rpm": 2, "rate_tpm": 0}


async def test_an_admin_without_limits_of_their_own_is_not_held_to_the_default(client, keys):
    codes = [(await client.post("/api/ai/agents", headers=keys.auth("admin"), json=ASK)).status_code
             for _ in range(6)]
    assert codes == [200] * 6
    codes = [(await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_an_admin_with_a_limit_of_their_own_is_held_to_it(app, client):
    async with app.state.relay.ledger.sessions() as s, s.begin():
        ops = await create_user(s, "ops", is_admin=True, rpm_limit=1)
        key, _ = await create_key(s, ops)
    first = await client.post("/api/ai/agents", headers={"x-api-key": key}, json=ASK)
    second = await client.post("/api/ai/agents", headers={"x-api-key": key}, json=ASK)
    assert (first.status_code, second.status_code) == (200, 429)
    detail = second.json()["detail"]
    assert "1 requests per minute, this user's own limit (llmrelay users limits NAME --rpm N)" in detail


async def test_the_429_names_the_default_limit_and_how_to_change_it(client, keys):
    for _ in range(2):
        await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
    detail = r.json()["detail"]
    assert r.status_code == 429 and detail.startswith("rate limit reached (requests per minute); retry in ")
    assert "2 requests per minute, the server's default for every user (LLMRELAY_RATE_RPM=N, 0: unlimited; " \
           "a user's own limit: llmrelay users limits NAME --rpm N)" in detail
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 429 and "LLMRELAY_RATE_RPM=N" in r.json()["error"]["message"]


async def test_tokens_per_minute_refusals_say_the_same():
    limits = RateLimits(rpm=0, tpm=10)
    alice = Principal("u1", "alice")
    await limits.admit(alice)
    await limits.spend(alice, 50)
    with pytest.raises(OverLimit) as err:
        await limits.admit(alice)
    assert isinstance(err.value, RateLimited) and err.value.limit == "tokens per minute"
    assert "10 tokens per minute, the server's default for every user (LLMRELAY_RATE_TPM=N" in str(err.value)
    admin = Principal("u2", "root", is_admin=True)
    await limits.spend(admin, 10_000)
    await limits.admit(admin)  # unlimited without a limit of their own
    assert (limits.rpm_of(admin), limits.tpm_of(admin), limits.tpm_of(alice)) == (0, 0, 10)
    assert limits.tpm_of(Principal("u3", "capped", is_admin=True, tpm_limit=5)) == 5


def test_the_start_up_line_says_the_limits_in_force_and_where_they_are_counted():
    line = describe_limits(600, 2_000_000, shared=False)
    assert line.startswith("rate limits: 600 requests/min and 2,000,000 tokens/min per user")
    assert "LLMRELAY_RATE_RPM" in line and "admins: unlimited" in line and "--rpm N" in line
    assert line.endswith("counted in this process")
    assert "unlimited requests" in describe_limits(0, 5, shared=False)
    assert describe_limits(1, 1, shared=False, workers=4).endswith("(LLMRELAY_REDIS_URL shares them)")
    assert describe_limits(1, 1, shared=True, workers=4).endswith("shared through Redis")


def test_serve_prints_the_limits_in_force_among_its_start_up_lines(tmp_path):
    """A real `llmrelay serve`, its stdout as an operator sees it; the admin's load test is not refused."""
    import os

    from tests.servers import Server

    from llmrelay.testing import FakeServers

    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    with FakeServers() as fakes:
        env = {**base, **fakes.env(), "LLMRELAY_HOME": str(tmp_path / "home"), "LLMRELAY_RATE_RPM": "3",
               "LLMRELAY_RATE_TPM": "0"}
        server = Server(env, tmp_path)
        try:
            lines = server.stdout.splitlines()
            [line] = [x for x in lines if x.startswith("rate limits: ")]
            assert line.startswith("rate limits: 3 requests/min and unlimited tokens per user (LLMRELAY_RATE_RPM")
            assert "admins: unlimited unless given their own" in line and line.endswith("counted in this process")
            assert lines.index(line) < next(i for i, x in enumerate(lines) if "listening on" in x)
            key = server.stdout.split("admin api key: ")[1].split()[0]
            codes = [server.fresh("POST", "/api/ai/agents", headers={"x-api-key": key}, json=ASK).status_code
                     for _ in range(5)]
            assert codes == [200] * 5  # over the default of 3: the admin is not held to it
        finally:
            server.kill()


def test_the_open_stream_cap_says_how_to_change_it():
    from llmrelay.routing.guards import OpenStreams

    streams, alice = OpenStreams(cap=1), Principal("u1", "alice")
    streams.open(alice)
    with pytest.raises(RateLimited) as err:
        streams.open(alice)
    assert str(err.value) == ("rate limit reached (1 concurrent streams); retry in 1 s: the server's cap per user "
                              "(LLMRELAY_MAX_STREAMS=N, 0: no cap)")
    assert err.value.retry_after == 1
