"""Per-user rate limits: requests per minute and tokens per minute, with the `limits` library.

Counters live in each process's memory, or in Redis (`LLMRELAY_REDIS_URL`) to be shared by
every worker and instance.  A request is counted when it arrives; its tokens once it has been
answered (they are not known before), so a user over the token budget is refused from the next
request on.  Both use sliding-window counters: constant memory per user, whatever the traffic.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from ..config import Settings
from ..db.users import Principal


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.default_rpm = settings.rate_rpm
        self.default_tpm = settings.rate_tpm
        url = settings.redis_url
        self.storage: Storage = RedisStorage("async+" + url) if url else MemoryStorage()
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self._items: dict[int, RateLimitItem] = {}

    def _item(self, per_minute: int) -> RateLimitItem:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    async def _retry_after(self, item: RateLimitItem, *ids: str) -> int:
        stats = await self.limiter.get_window_stats(item, *ids)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def admit(self, who: Principal) -> tuple[str, int] | None:
        """Count one request.  None: go ahead; else (which limit, seconds to wait)."""
        rpm = who.rpm_limit if who.rpm_limit is not None else self.default_rpm
        if rpm and not await self.limiter.hit(self._item(rpm), "rpm", who.user_id):
            return "requests per minute", await self._retry_after(self._item(rpm), "rpm", who.user_id)
        tpm = who.tpm_limit if who.tpm_limit is not None else self.default_tpm
        if tpm and not await self.limiter.test(self._item(tpm), "tpm", who.user_id):
            return "tokens per minute", await self._retry_after(self._item(tpm), "tpm", who.user_id)
        return None

    async def spend_tokens(self, who: Principal, tokens: int) -> None:
        tpm = who.tpm_limit if who.tpm_limit is not None else self.default_tpm
        if tpm and tokens > 0:
            await self.limiter.hit(self._item(tpm), "tpm", who.user_id, cost=min(tokens, tpm))

    async def check(self) -> bool:
        return await self.storage.check()
