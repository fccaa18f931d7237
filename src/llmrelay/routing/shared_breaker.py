"""A circuit breaker's news shared by every process over Redis (`LLMRELAY_REDIS_URL`).

Each process keeps its own `CircuitBreaker` (the request path never waits for Redis) and tells the others,
on the pub/sub channel `llmrelay:breaker:<db>`, what it learnt: a counted failure of a link (a distinct request
that found it failing), an opening (with the seconds it stays open) and a recovery.  The others apply it
(`CircuitBreaker.remote_*`), so consecutive failures are counted across replicas and a circuit one opens is
open on all; in half-open one process's probe holds the others back; a recovery anywhere closes it
everywhere.  An open circuit is also written to Redis as a key
that expires with its cooldown, so a process that starts (or reconnects) while it is open learns of it.

When Redis does not answer, each process goes on with its own breaker (said once in the log and by
`degraded`, the /metrics gauge `llmrelay_breaker_degraded`) and tries again every `retry_seconds`; what it
learnt meanwhile is not sent later (it is stale by then), and on reconnecting it reads the open circuits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import coredis

from .breaker import CircuitBreaker, Key

log = logging.getLogger("llmrelay.breaker")
OPEN_PREFIX = "llmrelay:breaker:open:"


def channel_of(redis_url: str) -> str:
    """The pub/sub channel for the database number `redis_url` names: channels are not per database in
    Redis, and two deployments on one Redis (db 0 and db 1) must not hear each other."""
    db = urlsplit(redis_url).path.strip("/") or "0"
    return f"llmrelay:breaker:{db}"


def _open_key(key: Key) -> str:
    return OPEN_PREFIX + json.dumps(key, separators=(",", ":"))


class SharedBreaker:
    """Listens to `breaker` and carries its news to and from the other processes through Redis."""

    def __init__(self, breaker: CircuitBreaker, redis_url: str, *, retry_seconds: float = 10.0,
                 timeout: float = 2.0) -> None:
        self.breaker = breaker
        self.me = uuid.uuid4().hex
        self.retry_seconds = retry_seconds
        self._redis: Any = coredis.Redis.from_url(redis_url, decode_responses=True, connect_timeout=timeout,
                                                  stream_timeout=timeout)
        self.channel = channel_of(redis_url)
        self._timeout = timeout
        self._out: deque[tuple[str, Key, float]] = deque(maxlen=10_000)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._down: set[str] = set()  # which side (publish, subscribe) cannot reach Redis
        self.subscribed = asyncio.Event()
        """Set once the channel is subscribed and the open circuits read (tests wait for it)."""
        breaker.listener = self

    @property
    def degraded(self) -> bool:
        return bool(self._down)

    # -- the breaker's listener (on the request path: only queues) --

    def failed(self, key: Key) -> None:
        self._send("fail", key, 0.0)

    def opened(self, key: Key, seconds: float) -> None:
        self._send("open", key, seconds)

    def probing(self, key: Key) -> None:
        self._send("probe", key, 0.0)

    def released(self, key: Key) -> None:
        self._send("release", key, 0.0)

    def recovered(self, key: Key) -> None:
        self._send("ok", key, 0.0)

    def _send(self, op: str, key: Key, seconds: float) -> None:
        self._out.append((op, key, seconds))
        self._wake.set()

    # -- lifecycle --

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._publish_loop(), name="llmrelay-breaker-out"),
                           asyncio.create_task(self._subscribe_loop(), name="llmrelay-breaker-in")]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.breaker.listener = None

    def _trouble(self, side: str, exc: BaseException) -> None:
        if not self._down:
            log.warning("circuit breaker: Redis does not answer (%s); each process keeps its own circuits until "
                        "it does", type(exc).__name__)
        self._down.add(side)

    def _fine(self, side: str) -> None:
        if side in self._down:
            self._down.discard(side)
            if not self._down:
                log.warning("circuit breaker: Redis answers again; circuits are shared again")

    # -- out --

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._out:
                op, key, seconds = self._out.popleft()
                try:
                    async with asyncio.timeout(self._timeout * 2):
                        await self._publish(op, key, seconds)
                except Exception as exc:  # Redis is down: this news is lost; the local breaker goes on
                    self._trouble("publish", exc)
                    self._out.clear()
                    await asyncio.sleep(self.retry_seconds)
                    break
                self._fine("publish")

    async def _publish(self, op: str, key: Key, seconds: float) -> None:
        if op == "open":
            await self._redis.set(_open_key(key), self.me, px=max(int(seconds * 1000), 1))
        elif op == "ok":
            await self._redis.delete([_open_key(key)])
        message = {"from": self.me, "op": op, "provider": key[0], "model": key[1], "seconds": seconds}
        await self._redis.publish(self.channel, json.dumps(message))

    # -- in --

    async def _subscribe_loop(self) -> None:
        while True:
            pubsub = None
            try:
                pubsub = self._redis.pubsub(channels=[self.channel], ignore_subscribe_messages=True)
                async with asyncio.timeout(self._timeout * 2):
                    await pubsub
                    await self._read_open_circuits()
                self._fine("subscribe")
                self.subscribed.set()
                async for message in pubsub:
                    self._apply(message.get("data"))
                raise ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                self._trouble("subscribe", exc)
                await asyncio.sleep(self.retry_seconds)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    async def _read_open_circuits(self) -> None:
        async for name in self._redis.scan_iter(match=OPEN_PREFIX + "*"):
            ttl = await self._redis.pttl(name)
            if ttl and ttl > 0:
                try:
                    provider, model = json.loads(name[len(OPEN_PREFIX):])
                except (ValueError, TypeError):
                    continue
                self.breaker.remote_open((provider, model), ttl / 1000)

    def _apply(self, data: object) -> None:
        try:
            message = json.loads(data)  # type: ignore[arg-type]
            if message["from"] == self.me:
                return
            key = (str(message["provider"]), str(message["model"]))
            op = message["op"]
            if op == "fail":
                self.breaker.remote_failure(key)
            elif op == "open":
                self.breaker.remote_open(key, float(message["seconds"]))
            elif op == "probe":
                self.breaker.remote_probe(key)
            elif op == "release":
                self.breaker.remote_released(key)
            elif op == "ok":
                self.breaker.remote_recovered(key)
        except (ValueError, TypeError, KeyError) as exc:  # not ours, or from a newer version: skip it
            log.debug("ignored a breaker message: %s", exc)
