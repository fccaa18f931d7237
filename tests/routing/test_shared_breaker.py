"""The breaker shared across processes: what one process learns about a link (a failure of a distinct
request, an opening, a recovery) is applied by the others, through a real Redis."""

from __future__ import annotations

import asyncio
import logging

import coredis
import pytest
from tests.servers import listening

from llmrelay.routing.breaker import CircuitBreaker
from llmrelay.routing.shared_breaker import SharedBreaker, channel_of

DB = 11  # a database of its own: the open-circuit keys of other tests stay apart
REDIS = f"redis://127.0.0.1:6379/{DB}"
LINK = ("openai", "gpt-4o")


class Told:
    """A listener that writes down what the breaker tells it."""

    def __init__(self):
        self.said: list[tuple] = []

    def failed(self, key):
        self.said.append(("fail", key))

    def opened(self, key, seconds):
        self.said.append(("open", key, seconds))

    def probing(self, key):
        self.said.append(("probe", key))

    def released(self, key):
        self.said.append(("release", key))

    def recovered(self, key):
        self.said.append(("ok", key))


def test_the_listener_hears_counted_failures_openings_and_recoveries_but_not_a_requests_own_retries():
    b = CircuitBreaker(threshold=2, cooldown=7)
    b.listener = told = Told()
    b.failure(*LINK, request=1)
    b.failure(*LINK, request=1)  # the same request's retry: not counted, not told
    b.failure(*LINK, request=2)  # the second request: the circuit opens
    b.failure(*LINK, request=3)  # already open: not told again
    b.success("google", "g")  # nothing to recover: not told
    b.success(*LINK)
    assert told.said == [("fail", LINK), ("open", LINK, 7), ("ok", LINK)]


def test_remote_news_counts_here_and_is_not_told_back():
    b = CircuitBreaker(threshold=3, cooldown=10)
    b.listener = told = Told()
    b.failure(*LINK, request=1)
    b.remote_failure(LINK)
    assert b.state(*LINK) == "closed"
    b.remote_failure(LINK)  # three consecutive failing requests, two of them elsewhere
    assert b.state(*LINK) == "open"
    b.remote_recovered(LINK)
    assert b.state(*LINK) == "closed"
    b.remote_open(LINK, 4.0)
    reason = b.acquire(*LINK)
    assert reason is not None and "next probe in 4.0 s" in reason
    assert told.said == [("fail", LINK)]


def test_channels_are_per_redis_database():
    assert channel_of("redis://h:6379/3") != channel_of("redis://h:6379/4")
    assert channel_of("redis://h:6379") == channel_of("redis://h:6379/0")


redis_only = pytest.mark.skipif(not listening(6379), reason="Redis not reachable at 127.0.0.1:6379 (.ci/run starts it)")


async def _flush() -> None:
    await coredis.Redis.from_url(REDIS).flushdb()


async def _shared(n: int, threshold: int = 3, cooldown: float = 30.0) -> list[SharedBreaker]:
    shared = [SharedBreaker(CircuitBreaker(threshold, cooldown), REDIS) for _ in range(n)]
    for s in shared:
        await s.start()
    async with asyncio.timeout(5):
        for s in shared:
            await s.subscribed.wait()
    return shared


async def _until(check, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@redis_only
async def test_consecutive_failures_across_processes_open_the_circuit_on_every_one():
    await _flush()
    a, b, c = await _shared(3)
    try:
        a.breaker.failure(*LINK, request=1)
        b.breaker.failure(*LINK, request=1)  # another process's request 1: a distinct request
        await _until(lambda: all(s.breaker._circuits.get(LINK) and s.breaker._circuits[LINK].failures == 2
                                 for s in (a, b, c)))
        assert {s.breaker.state(*LINK) for s in (a, b, c)} == {"closed"}
        c.breaker.failure(*LINK, request=7)
        await _until(lambda: all(s.breaker.state(*LINK) == "open" for s in (a, b, c)))
        assert "circuit open" in a.breaker.acquire(*LINK)

        late = (await _shared(1))[0]  # started while the circuit is open: it reads it from Redis
        try:
            assert late.breaker.state(*LINK) == "open"
            b.breaker.success(*LINK)  # b's probe got an answer: closed everywhere
            await _until(lambda: all(s.breaker.state(*LINK) == "closed" for s in (a, b, c, late)))
            assert not await coredis.Redis.from_url(REDIS).keys("llmrelay:breaker:open:*")
        finally:
            await late.aclose()
    finally:
        for s in (a, b, c):
            await s.aclose()


@redis_only
async def test_a_success_elsewhere_restarts_the_count():
    await _flush()
    a, b = await _shared(2, threshold=2)
    try:
        a.breaker.failure(*LINK, request=1)
        await _until(lambda: LINK in b.breaker._circuits)
        b.breaker.success(*LINK)
        await _until(lambda: LINK not in a.breaker._circuits)
        a.breaker.failure(*LINK, request=2)
        await asyncio.sleep(0.1)
        assert a.breaker.state(*LINK) == b.breaker.state(*LINK) == "closed"
    finally:
        for s in (a, b):
            await s.aclose()


async def _a_probing_while_b_waits() -> list[SharedBreaker]:
    """Two processes whose circuit a opened and is now half-open: a lets its probe through, b has heard so."""
    await _flush()
    a, b = await _shared(2, threshold=1, cooldown=0.3)
    a.breaker.failure(*LINK, request=1)
    await _until(lambda: b.breaker.state(*LINK) == "open")
    await asyncio.sleep(0.35)
    assert a.breaker.state(*LINK) == b.breaker.state(*LINK) == "half_open"
    assert a.breaker.acquire(*LINK) is None  # a's probe
    await _until(lambda: b.breaker._circuits[LINK].probe_elsewhere_until > 0)  # a's message came
    assert "on another replica" in b.breaker.acquire(*LINK)
    return [a, b]


@redis_only
async def test_in_half_open_one_process_probes_and_the_others_wait_for_its_outcome():
    a, b = await _a_probing_while_b_waits()
    try:
        a.breaker.failure(*LINK, request=2)  # the probe failed: open again everywhere, for a full cooldown
        await _until(lambda: b.breaker.state(*LINK) == "open")
        await asyncio.sleep(0.35)
        assert b.breaker.acquire(*LINK) is None  # now b probes, and it answers
        b.breaker.success(*LINK)
        await _until(lambda: a.breaker.state(*LINK) == "closed" and LINK not in a.breaker._circuits)
    finally:
        for s in (a, b):
            await s.aclose()


@redis_only
async def test_a_probe_given_back_without_an_outcome_lets_another_process_probe_at_once():
    a, b = await _a_probing_while_b_waits()
    try:
        a.breaker.release(*LINK)  # a's caller went away: no outcome, the probe is given back
        await _until(lambda: b.breaker._circuits[LINK].probe_elsewhere_until == 0)
        assert b.breaker.acquire(*LINK) is None  # b probes now, not a cooldown later
        assert "already in flight" in b.breaker.acquire(*LINK)  # and only one of its requests does
        a.breaker.release(*LINK)  # a holds no probe now: nothing to tell
        b.breaker.success(*LINK)
        await _until(lambda: LINK not in a.breaker._circuits)
    finally:
        for s in (a, b):
            await s.aclose()


def test_a_given_back_probe_is_told_once_and_only_when_one_was_held():
    b = CircuitBreaker(threshold=1, cooldown=0)
    b.listener = told = Told()
    b.release(*LINK)  # nothing held
    b.failure(*LINK, request=1)
    assert b.acquire(*LINK) is None  # half-open at once (cooldown 0): the probe
    b.release(*LINK)
    b.release(*LINK)  # given back already
    assert told.said == [("open", LINK, 0), ("probe", LINK), ("release", LINK)]


async def test_without_redis_each_process_keeps_its_own_circuits_and_says_so_once(caplog):
    caplog.set_level(logging.WARNING, "llmrelay.breaker")
    s = SharedBreaker(CircuitBreaker(threshold=1, cooldown=30), "redis://127.0.0.1:1/0", retry_seconds=0.2)
    await s.start()
    try:
        await _until(lambda: s.degraded)
        s.breaker.failure(*LINK, request=1)  # the breaker works on its own
        assert s.breaker.state(*LINK) == "open"
        await asyncio.sleep(0.6)  # several retries
        said = [r.getMessage() for r in caplog.records if "Redis does not answer" in r.getMessage()]
        assert len(said) == 1
    finally:
        await s.aclose()
