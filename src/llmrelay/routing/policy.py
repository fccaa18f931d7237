"""How long to wait before trying a link again, and how long anything may take.

The backoff is the one the official Stainless SDKs use (shared/reference/providers.md §0):
0.5 s doubling to a cap of 8 s, with up to 25 % negative jitter; a provider's own hint
(`Retry-After` and friends) wins when it is positive and not above `retry_after_cap`.  A hint
above the cap means "not soon": the link is given up and the chain moves on rather than
holding the caller for minutes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Policy:
    max_retries: int = 2
    """Retries of one link after its first attempt, when the link itself does not say."""
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_after_cap: float = 60.0
    first_token_timeout: float = 60.0
    """Stream: until the first text arrives.  Non-streaming: until the whole reply is in."""
    deadline: float = 180.0
    """The whole request, every link, retry and wait included."""

    def retry_delay(self, retry: int, hint: float | None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retry number `retry` (1-based), or None to give the link up."""
        if hint is not None and hint > 0:
            return hint if hint <= self.retry_after_cap else None
        base = min(self.backoff_max, self.backoff_initial * 2 ** (retry - 1))
        return base * (1 - 0.25 * (rng or random).random())
