"""Per-user rate limits: requests and tokens per minute, in memory or shared through Redis."""


import httpx
import pytest
from tests.servers import listening

from llmrelay.api import create_app
from llmrelay.db.users import create_key, create_user

ASK = {"agentId": "local-agent", "message": "Hi there"}


@pytest.fixture
def settings_overrides():
    return {"rate_rpm": 3, "rate_tpm": 0}


async def test_requests_over_the_per_minute_limit_get_429_with_retry_after(client, keys):
    for _ in range(3):
        assert (await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)).status_code == 200
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "requests per minute" in r.json()["detail"]
    # another user has a budget of their own
    assert (await client.post("/api/ai/agents", headers=keys.auth("bob"), json=ASK)).status_code == 200


async def test_a_users_own_limit_overrides_the_default(app, client):
    async with app.state.relay.ledger.sessions() as s, s.begin():
        vip = await create_user(s, "vip", rpm_limit=5)
        key, _ = await create_key(s, vip)
    codes = [(await client.post("/api/ai/agents", headers={"x-api-key": key}, json=ASK)).status_code
             for _ in range(6)]
    assert codes == [200] * 5 + [429]


async def test_reads_are_not_rate_limited(client, keys):
    codes = {(await client.get("/api/ai/agents", headers=keys.auth("alice"))).status_code for _ in range(5)}
    assert codes == {200}


class TestTokensPerMinute:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 0, "rate_tpm": 10}

    async def test_a_user_over_the_token_budget_is_refused_from_the_next_request_on(self, client, keys):
        first = await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
        assert first.status_code == 200 and first.json()["tokensUsed"]["total"] > 10
        r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
        assert r.status_code == 429 and "tokens per minute" in r.json()["detail"]
        assert int(r.headers["retry-after"]) >= 1


@pytest.mark.skipif(not listening(6379), reason="Redis not reachable at 127.0.0.1:6379 (.ci/run starts it)")
class TestSharedThroughRedis:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 4, "rate_tpm": 0, "redis_url": "redis://127.0.0.1:6379/0"}

    async def test_two_workers_share_one_budget(self, app, settings, keys):
        other = create_app(settings)  # a second worker: its own process memory, the same Redis
        async with other.router.lifespan_context(other):
            clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://w")
                       for a in (app, other)]
            codes = []
            for i in range(6):
                r = await clients[i % 2].post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)
                codes.append(r.status_code)
            for c in clients:
                await c.aclose()
        assert codes == [200, 200, 200, 200, 429, 429]


class TestWhenRedisDoesNotAnswer:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 2, "rate_tpm": 0, "redis_url": "redis://127.0.0.1:1/0"}  # nothing listens there

    async def test_limits_degrade_to_this_process_and_say_so(self, app, client, keys, caplog):
        codes = [(await client.post("/api/ai/agents", headers=keys.auth("alice"), json=ASK)).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]  # served, and still limited: by this process's own counters
        said = [r.getMessage() for r in caplog.records if r.name == "llmrelay.limits"]
        assert len(said) == 1 and "Redis does not answer" in said[0]  # once, not per request
        metrics = (await client.get("/metrics")).text
        assert "llmrelay_rate_limits_degraded 1.0" in metrics


class TestConcurrentStreams:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_rpm": 0, "rate_tpm": 0, "max_streams": 2}

    async def test_a_user_may_hold_only_so_many_streams_open_at_once(self, app, client, keys, fakes):
        import asyncio

        from llmrelay.testing import faults

        body = {"model": "openai/gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Hi there"}]}
        fakes["openai"].script(faults.reply(text="one two three four", seconds=0.3, times=2))
        streams = app.state.relay.streams
        alice = (await app.state.relay.principal("alice")).user_id

        async def read() -> int:
            async with client.stream("POST", "/v1/chat/completions", headers=keys.auth("alice"), json=body) as r:
                await r.aread()
                return r.status_code

        first = [asyncio.ensure_future(read()) for _ in range(2)]
        while streams.count(alice) < 2:
            await asyncio.sleep(0.01)
        third = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=body)
        assert third.status_code == 429 and third.headers["retry-after"] == "1"
        assert "2 concurrent streams" in third.json()["error"]["message"]
        other = await client.post("/v1/chat/completions", headers=keys.auth("bob"), json={**body, "stream": False})
        assert other.status_code == 200  # bob's own count; a plain request is not a stream
        assert await asyncio.gather(*first) == [200, 200]
        assert streams.count(alice) == 0  # every stream closed gave its place back
        again = await client.post("/v1/chat/completions", headers=keys.auth("alice"), json=body)
        assert again.status_code == 200
