"""Admission and spend: whether a request may be served, and what it is charged once it has been.

`Relay.run` calls `admit` once a request has been resolved (before any provider is called) and
`spend` exactly once when it ends, however it ends (answered, failed, cancelled, abandoned
mid-stream), so every ingress — the agents API, /v1, the CLI, the Python API — is held to the
same limits.  Budgets plug in here too.

`RateLimits`: requests per minute and tokens per minute per user, with the `limits` library.
Counters live in each process's memory, or in Redis (`LLMRELAY_REDIS_URL`) to be shared by every
worker, instance and CLI run.  A request is counted when it is admitted; its tokens once it has
ended (they are not known before), so a user over the token budget is refused from the next
request on.  Both are sliding-window counters: constant memory per user, whatever the traffic.
A request without a principal (the Python API's local caller) is not limited.

When Redis does not answer, the limits degrade to this process's own counters rather than refuse or fail
requests: said once in the log (and again when Redis is back), shown by `degraded` (the /metrics gauge
`llmrelay_rate_limits_degraded`); Redis is tried again every `retry_seconds`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from ..types import Principal, RateLimited

log = logging.getLogger("llmrelay.limits")
T = TypeVar("T")


class Guard(Protocol):
    async def admit(self, who: Principal) -> None:
        """Raise (e.g. `RateLimited`) to refuse the request."""

    async def spend(self, who: Principal, tokens: int) -> None:
        """Charge what an admitted request used, once it has ended."""


class OpenStreams:
    """How many streams each user has open in this process, and a cap on it: a client that opens streams
    without end (or never reads them) holds provider connections and memory that every other user needs.
    `open` raises `RateLimited` (retry in a second) past the cap; every `open` that returned is `close`d."""

    def __init__(self, cap: int = 0) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}

    def open(self, who: Principal) -> None:
        n = self._open.get(who.user_id, 0)
        if self.cap and n >= self.cap:
            raise RateLimited(f"{self.cap} concurrent streams", 1)
        self._open[who.user_id] = n + 1

    def close(self, who: Principal) -> None:
        n = self._open.get(who.user_id, 0) - 1
        if n > 0:
            self._open[who.user_id] = n
        else:
            self._open.pop(who.user_id, None)

    def count(self, user_id: str) -> int:
        return self._open.get(user_id, 0)


class RateLimits:
    def __init__(self, rpm: int = 0, tpm: int = 0, redis_url: str | None = None, retry_seconds: float = 10.0) -> None:
        self.default_rpm = rpm
        self.default_tpm = tpm
        self.storage: Storage = RedisStorage("async+" + redis_url) if redis_url else MemoryStorage()
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.shared = redis_url is not None
        self.retry_seconds = retry_seconds
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage()) if self.shared else self.limiter
        self._down_since: float | None = None
        self._items: dict[int, RateLimitItem] = {}

    @property
    def degraded(self) -> bool:
        """Redis is configured but not answering: each process counts on its own."""
        return self._down_since is not None

    async def _use(self, call: Callable[[SlidingWindowCounterRateLimiter], Awaitable[T]]) -> T:
        """`call` on the shared limiter, or on this process's own while Redis does not answer."""
        if not self.shared:
            return await call(self.limiter)
        down = self._down_since
        if down is not None and time.monotonic() - down < self.retry_seconds:
            return await call(self._local)
        try:
            result = await call(self.limiter)
        except Exception as exc:  # Redis is down: count here rather than fail the request
            if down is None:
                log.warning("rate limits: Redis does not answer (%s); each process counts on its own until it "
                            "does", type(exc).__name__)
            self._down_since = time.monotonic()
            return await call(self._local)
        if down is not None:
            log.warning("rate limits: Redis answers again; limits are shared again")
            self._down_since = None
        return result

    def _item(self, per_minute: int) -> RateLimitItem:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    async def _retry_after(self, item: RateLimitItem, *ids: str) -> int:
        stats: Any = await self._use(lambda limiter: limiter.get_window_stats(item, *ids))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def admit(self, who: Principal) -> None:
        """Count one request; `RateLimited` (which limit, seconds to wait) when over."""
        rpm = who.rpm_limit if who.rpm_limit is not None else self.default_rpm
        if rpm:
            item = self._item(rpm)
            if not await self._use(lambda limiter: limiter.hit(item, "rpm", who.user_id)):
                raise RateLimited("requests per minute", await self._retry_after(item, "rpm", who.user_id))
        tpm = who.tpm_limit if who.tpm_limit is not None else self.default_tpm
        if tpm:
            item = self._item(tpm)
            if not await self._use(lambda limiter: limiter.test(item, "tpm", who.user_id)):
                raise RateLimited("tokens per minute", await self._retry_after(item, "tpm", who.user_id))

    async def spend(self, who: Principal, tokens: int) -> None:
        tpm = who.tpm_limit if who.tpm_limit is not None else self.default_tpm
        if tpm and tokens > 0:
            item = self._item(tpm)
            await self._use(lambda limiter: limiter.hit(item, "tpm", who.user_id, cost=min(tokens, tpm)))

    async def check(self) -> bool:
        """Whether the counters' storage answers (readiness)."""
        return await self.storage.check()
