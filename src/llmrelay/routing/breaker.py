"""A circuit breaker per provider+model, so a dead link stops costing every request a timeout.

closed ──(N consecutive failing requests)─────────▶ open ──(cooldown elapsed)──▶ half-open
  ▲                                                   ▲                              │
  └──────────────(the probe succeeds)─────────────────┼──────────(one probe)─────────┘
                                                      └──────(the probe fails)

Only failures that say something about the provider count (see `ErrorKind.provider_fault`):
a request that is too long or filtered says nothing about the link's health.  A request's own retries of a
link count once: three 529s in one request are one request that found the link overloaded, not three, and
must not close the link to every other caller for the cooldown.  In half-open
exactly one request goes through as the probe; the others are skipped until it reports.

State is per process, which is what a breaker needs to react within `threshold` requests wherever it runs.
Several processes (workers, replicas) share what they learn through `listener` and the `remote_*` methods
(`routing.shared_breaker` carries them over Redis): a counted failure, an opening and a recovery are told
to the listener, and what another process told is applied here, so consecutive failures are counted across
processes and a circuit one opens is open on all.  In half-open the first process to let a probe through
tells the others, which wait for its outcome (two may start probes within the message's few milliseconds);
a probe given back without an outcome (the caller went away) is told too, so another process may probe at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

State = Literal["closed", "open", "half_open"]
Key = tuple[str, str]


class BreakerListener(Protocol):
    """Told what this process learnt about a link, to share it (called outside the breaker's lock; must not block)."""

    def failed(self, key: Key) -> None: ...
    def opened(self, key: Key, seconds: float) -> None: ...
    def probing(self, key: Key) -> None: ...
    def released(self, key: Key) -> None: ...
    def recovered(self, key: Key) -> None: ...


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    probe_elsewhere_until: float = 0.0
    """Another process is probing this half-open link until then (it tells the outcome; after a cooldown
    without one, it is presumed gone)."""
    last_request: int | None = None
    """The request whose failure was counted last (its retries are not counted again)."""


class CircuitBreaker:
    def __init__(self, threshold: int = 3, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._circuits: dict[Key, _Circuit] = {}
        self._lock = threading.Lock()
        self.listener: BreakerListener | None = None

    def state(self, provider: str, model: str) -> State:
        with self._lock:
            return self._state(self._circuits.get((provider, model)))

    def _state(self, c: _Circuit | None) -> State:
        if c is None or c.opened_at is None:
            return "closed"
        if self._clock() - c.opened_at < self.cooldown:
            return "open"
        return "half_open"

    def acquire(self, provider: str, model: str) -> str | None:
        """Ask to call this link.  None means go ahead; otherwise the reason to skip it.
        A caller that got the go-ahead must end with `success`, `failure` or `release`."""
        with self._lock:
            c = self._circuits.get((provider, model))
            state = self._state(c)
            if state == "closed":
                return None
            assert c is not None and c.opened_at is not None
            if state == "open":
                left = self.cooldown - (self._clock() - c.opened_at)
                return (f"circuit open after {c.failures} consecutive failures; "
                        f"next probe in {max(left, 0.1):.1f} s")
            if c.probing:
                return "circuit half-open: a probe request is already in flight"
            if c.probe_elsewhere_until > self._clock():
                return "circuit half-open: a probe request is in flight on another replica"
            c.probing = True
        if self.listener is not None:
            self.listener.probing((provider, model))
        return None

    def success(self, provider: str, model: str) -> None:
        key = (provider, model)
        with self._lock:
            had = self._circuits.pop(key, None)
        if had is not None and self.listener is not None:
            self.listener.recovered(key)

    def failure(self, provider: str, model: str, request: int | None = None) -> None:
        """A call failed for the provider's sake.  `request` identifies the request it belongs to: a retry
        within the request that failed last is not counted again (None: always counted)."""
        key = (provider, model)
        with self._lock:
            c = self._circuits.setdefault(key, _Circuit())
            counted = request is None or request != c.last_request
            if counted:
                c.failures += 1
                c.last_request = request
            was_open = self._state(c) == "open"
            opens = c.probing or (c.failures >= self.threshold and not was_open)
            if c.probing or c.failures >= self.threshold:
                c.opened_at = self._clock()
            c.probing = False
        if self.listener is not None:
            if opens:
                self.listener.opened(key, self.cooldown)
            elif counted and not was_open:
                self.listener.failed(key)

    # -- what other processes learnt (never told back to the listener) --

    def remote_failure(self, key: Key) -> None:
        """Another process counted a failure of this link: it counts here too."""
        with self._lock:
            c = self._circuits.setdefault(key, _Circuit())
            c.failures += 1
            if c.failures >= self.threshold and c.opened_at is None:
                c.opened_at = self._clock()

    def remote_open(self, key: Key, seconds: float) -> None:
        """Another process opened this link's circuit for `seconds` more."""
        with self._lock:
            c = self._circuits.setdefault(key, _Circuit())
            c.failures = max(c.failures, self.threshold)
            c.opened_at = self._clock() - max(self.cooldown - seconds, 0.0)
            c.probing = False
            c.probe_elsewhere_until = 0.0

    def remote_probe(self, key: Key) -> None:
        """Another process let its probe through this half-open link: this one waits for its outcome."""
        with self._lock:
            c = self._circuits.get(key)
            if c is not None and c.opened_at is not None:
                c.probe_elsewhere_until = self._clock() + self.cooldown

    def remote_released(self, key: Key) -> None:
        """Another process gave its probe back without an outcome: one may be let through here now."""
        with self._lock:
            c = self._circuits.get(key)
            if c is not None:
                c.probe_elsewhere_until = 0.0

    def remote_recovered(self, key: Key) -> None:
        """Another process got an answer from this link: the count starts again and the circuit closes."""
        with self._lock:
            self._circuits.pop(key, None)

    def release(self, provider: str, model: str) -> None:
        """The call ended without saying anything about the link (cancelled, or the request's
        own fault): a probe slot it held is given back."""
        key = (provider, model)
        with self._lock:
            c = self._circuits.get(key)
            held = c is not None and c.probing
            if c is not None:
                c.probing = False
        if held and self.listener is not None:
            self.listener.released(key)

    def snapshot(self) -> dict[Key, State]:
        """Every link that is not plainly closed, with its state."""
        with self._lock:
            return {k: self._state(c) for k, c in self._circuits.items() if c.opened_at is not None}
