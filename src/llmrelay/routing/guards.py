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

Whose limit: a user's own (`llmrelay users add --rpm/--tpm`; 0 is unlimited), else the server's default
(LLMRELAY_RATE_RPM / LLMRELAY_RATE_TPM) — except for an admin, who without limits of their own has none:
the operator's key is the one load tests and batch jobs run with, and a default meant to keep one user
from crowding out the others should not turn those into 429s.  Budgets and the open-stream cap still
hold for admins.  A refusal (`OverLimit`) names the limit in force, where it comes from and how to change
it; `describe_limits` says the defaults in one line, for `llmrelay serve`'s start-up lines.

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


class TooManyStreams(RateLimited):
    """A user already has the most streams open that the server lets one user have."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"{cap} concurrent streams", 1)
        self.args = (f"{self.args[0]}: the server's cap per user (LLMRELAY_MAX_STREAMS=N, 0: no cap)",)


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
            raise TooManyStreams(self.cap)
        self._open[who.user_id] = n + 1

    def close(self, who: Principal) -> None:
        n = self._open.get(who.user_id, 0) - 1
        if n > 0:
            self._open[who.user_id] = n
        else:
            self._open.pop(who.user_id, None)

    def count(self, user_id: str) -> int:
        return self._open.get(user_id, 0)


class OverLimit(RateLimited):
    """`RateLimited`, saying which limit is in force, whose it is, and how to change it."""

    def __init__(self, limit: str, retry_after: int, per_minute: int, own: bool, option: str, variable: str) -> None:
        super().__init__(limit, retry_after)
        self.per_minute = per_minute
        whose = (f"this user's own limit (llmrelay users limits NAME {option} N)" if own else
                 f"the server's default for every user ({variable}=N, 0: unlimited; a user's own limit: "
                 f"llmrelay users limits NAME {option} N)")
        self.args = (f"{self.args[0]}: {per_minute:,} {limit}, {whose}",)


def describe_limits(rpm: int, tpm: int, *, shared: bool, workers: int = 1) -> str:
    """The default limits a server holds users to, in one line, with how to change them."""
    def per(value: int, unit: str) -> str:
        return f"{value:,} {unit}/min" if value else f"unlimited {unit}"

    where = ("shared through Redis" if shared else "counted in each of the worker processes (LLMRELAY_REDIS_URL "
             "shares them)" if workers > 1 else "counted in this process")
    return (f"rate limits: {per(rpm, 'requests')} and {per(tpm, 'tokens')} per user (LLMRELAY_RATE_RPM, "
            f"LLMRELAY_RATE_TPM; 0: unlimited); admins: unlimited unless given their own; a user's own: "
            f"llmrelay users limits NAME --rpm N --tpm N; {where}")


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

    def rpm_of(self, who: Principal) -> int:
        """The requests per minute `who` may make (0: unlimited)."""
        if who.rpm_limit is not None:
            return who.rpm_limit
        return 0 if who.is_admin else self.default_rpm

    def tpm_of(self, who: Principal) -> int:
        """The tokens per minute `who` may use (0: unlimited)."""
        if who.tpm_limit is not None:
            return who.tpm_limit
        return 0 if who.is_admin else self.default_tpm

    def describe(self, workers: int = 1) -> str:
        """The limits in force, in one line, with how to change them."""
        def per(value: int, unit: str) -> str:
            return f"{value:,} {unit}/min" if value else f"unlimited {unit}"

        where = ("shared through Redis" if self.shared else "counted in each worker process (LLMRELAY_REDIS_URL "
                 "shares them)" if workers > 1 else "counted in this process")
        return (f"rate limits: {per(self.default_rpm, 'requests')} and {per(self.default_tpm, 'tokens')} per user "
                f"by default (LLMRELAY_RATE_RPM, LLMRELAY_RATE_TPM; 0: unlimited); admins unlimited; a user's own: "
                f"llmrelay users limits NAME --rpm N --tpm N; {where}")

    async def admit(self, who: Principal) -> None:
        """Count one request; `OverLimit` (which limit, seconds to wait, how to change it) when over."""
        rpm = self.rpm_of(who)
        if rpm:
            item = self._item(rpm)
            if not await self._use(lambda limiter: limiter.hit(item, "rpm", who.user_id)):
                raise OverLimit("requests per minute", await self._retry_after(item, "rpm", who.user_id), rpm,
                                who.rpm_limit is not None, "--rpm", "LLMRELAY_RATE_RPM")
        tpm = self.tpm_of(who)
        if tpm:
            item = self._item(tpm)
            if not await self._use(lambda limiter: limiter.test(item, "tpm", who.user_id)):
                raise OverLimit("tokens per minute", await self._retry_after(item, "tpm", who.user_id), tpm,
                                who.tpm_limit is not None, "--tpm", "LLMRELAY_RATE_TPM")

    async def spend(self, who: Principal, tokens: int) -> None:
        tpm = self.tpm_of(who)
        if tpm and tokens > 0:
            item = self._item(tpm)
            await self._use(lambda limiter: limiter.hit(item, "tpm", who.user_id, cost=min(tokens, tpm)))

    async def check(self) -> bool:
        """Whether the counters' storage answers (readiness)."""
        return await self.storage.check()
