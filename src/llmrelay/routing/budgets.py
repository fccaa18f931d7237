"""Budgets in the pipeline: which links of a chain a request's budgets let serve, and what it reserves.

`Relay.run` asks `admit` once a request is resolved and assembled (before any provider is called) and
`settle`s the ticket exactly once when the request ends.  For each budget that applies (the caller's, the
agent's, the caller's on the agent) every link's **worst case** is priced: the input at about three
characters a token (plus 1,600 a picture and 200 a tool: a high estimate on purpose), `max_tokens` of
output, at the link's current price.  Then, against what the period has left:

- a link whose worst case would cross the hard limit is skipped with a `budget …` reason, so a cheaper
  link of the chain serves (the ticket and the ledger rows say `budget_downgraded`); past the hard limit
  that leaves free links only (price 0, e.g. Ollama), which a budget never stops;
- a link without a known price is skipped unless the budget allows unpriced models (its cost is unknown:
  it is never counted as 0), and past the hard limit it is skipped in any case;
- with no link left, `BudgetExceeded`: the budget, what it has spent, when it resets.

When the database does not answer, a process goes on reserving on the lease it holds; without one that can
take the request, `BudgetUnavailable` (the budget cannot be checked: 503, never served unchecked).

The request then reserves the largest worst case among the links left, and settles to its exact cost when
it ends.  Reservations are made on a **lease** (db/budgets.py): money of the period this process took
from the database in one serialised transaction, a tenth of what was left or the worst case if more.  So
the busy path does no database round trip, and all processes together never reserve more than the hard
limit: concurrent requests cannot overshoot it by more than what the worst-case estimate missed.  A lease
is renewed every `lease_seconds` (30) while in use, and given back (shrunk to what its requests still hold)
after `idle_seconds` (5) idle, when it runs short, when the period ends, and at shutdown; a process that
dies holds its lease until it expires (the request deadline and a minute).  The soft threshold does not
change routing: it is where the budget is reported as `soft` (status, metrics, the webhook) before the hard
limit starts skipping links.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..db.budgets import ZERO, BudgetSpec, BudgetStore
from ..db.types import quantize, utcnow
from ..ledger.pricing import PriceBook
from ..types import BudgetExceeded, BudgetUnavailable, Link, money
from .budget_state import BudgetStatus, Lease, Ticket
from .periods import period_bounds

log = logging.getLogger("llmrelay.budgets")
SHARE = Decimal("0.1")
CHARS_PER_TOKEN = 3
TOKENS_PER_IMAGE = 1600
TOKENS_PER_TOOL = 200
_THOUSAND = Decimal(1000)
_MISSING = object()

Alert = Callable[[str, BudgetSpec, str, datetime, datetime, Decimal], Awaitable[None]]
"""Told when a period first crosses a threshold (in any process): (the event's id, the budget, `soft` or
`hard`, the period's start and end, what it had spent and reserved)."""


class Budgets:
    def __init__(self, store: BudgetStore, prices: Callable[[], PriceBook], *, hold_seconds: float,
                 clock: Callable[[], datetime] = utcnow, share: Decimal = SHARE, refresh: float = 5.0,
                 lease_seconds: float = 30.0, idle_seconds: float = 5.0, alert: Alert | None = None,
                 db_timeout: float = 5.0) -> None:
        self.store = store
        self.prices = prices
        self.hold = timedelta(seconds=hold_seconds)
        self.clock = clock
        self.share = share
        self.refresh = refresh
        self.lease_seconds = lease_seconds
        """A lease in use is renewed this often (it then sees what every other process has spent)."""
        self.idle_seconds = idle_seconds
        """A lease unused this long is given back."""
        self.db_timeout = db_timeout
        self.alert = alert
        self._by_scope: dict[str, BudgetSpec] = {}
        self._loaded_at: float | None = None
        self._reloading: asyncio.Task | None = None
        self._current: dict[str, Lease] = {}
        self._retired: list[Lease] = []
        self._locks: dict[str, asyncio.Lock] = {}
        self._sweeper: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._noted: set[str] = set()
        self._book: PriceBook | None = None
        self._rates: dict[Link, tuple[Decimal, Decimal] | None] = {}

    # -- which budgets ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every budget (a budget that did not change stays the same object: its lease stays usable)."""
        specs = await self.store.all()
        old = self._by_scope
        self._by_scope = {s.scope: old[s.scope] if old.get(s.scope) == s else s for s in specs}
        self._loaded_at = time.monotonic()

    def changed(self, spec: BudgetSpec | None, scope: str) -> None:
        """This process wrote a budget: use it at once (others take it up within `refresh` seconds)."""
        if spec is None:
            self._by_scope.pop(scope, None)
        else:
            self._by_scope[scope] = spec

    def applicable(self, user_id: str | None, agent_id: str) -> list[BudgetSpec]:
        by = self._by_scope
        if not by:
            return []
        found = []
        if user_id is not None:
            for scope in (f"user:{user_id}", f"user:{user_id}/agent:{agent_id}"):
                spec = by.get(scope)
                if spec is not None:
                    found.append(spec)
        spec = by.get(f"agent:{agent_id}")
        if spec is not None:
            found.append(spec)
        return found

    async def _fresh(self) -> None:
        if self._loaded_at is None:  # the first requests wait for one load together
            if self._reloading is None or self._reloading.done():
                self._reloading = self._spawn(self.load())
            await asyncio.shield(self._reloading)
        elif time.monotonic() - self._loaded_at > self.refresh and (self._reloading is None or self._reloading.done()):
            self._reloading = self._spawn(self.load())

    # -- admission ----------------------------------------------------------------------------------

    def worst_case(self, link: Link, input_chars: int, images: int, tools: int, max_tokens: int,
                   book: PriceBook | None = None) -> Decimal | None:
        """The most `link` could cost for this request at its current price; None: it has no known price."""
        book = book or self.prices()
        if book is not self._book:  # prices of links, per price book (it is replaced when prices are reloaded)
            self._book, self._rates = book, {}
        rates = self._rates.get(link, _MISSING)
        if rates is _MISSING:
            price = book.lookup(link.provider, link.model)
            rates = self._rates[link] = None if price is None else tuple(  # per tier: the dearest input, the output
                (p.above, max(p.input, p.cache_write or ZERO, p.cache_write_1h or ZERO, p.cached_input or ZERO),
                 p.output) for p in (price, *price.tiers))
        if rates is None:
            return None
        tokens_in = -(-input_chars // CHARS_PER_TOKEN) + images * TOKENS_PER_IMAGE + tools * TOKENS_PER_TOOL
        rate = rates[0]  # type: ignore[index]
        for tier in rates[1:]:  # type: ignore[index]
            if tokens_in > tier[0]:  # the tier this estimate of the input selects (tiers are dearer)
                rate = tier
        return quantize((tokens_in * rate[1] + max_tokens * rate[2]) / _THOUSAND)

    async def admit(self, user_id: str | None, agent_id: str, links: Sequence[Link], *, input_chars: int,
                    images: int = 0, tools: int = 0, max_tokens: int = 0) -> Ticket | None:
        """The links the budgets let serve and the reservation made; None when no budget applies or the
        chain is free.  Raises `BudgetExceeded` when no link is left."""
        await self._fresh()
        specs = self.applicable(user_id, agent_id)
        if not specs:
            return None
        book = self.prices()
        worst = [self.worst_case(link, input_chars, images, tools, max_tokens, book) for link in links]
        if all(w is not None and w == 0 for w in worst):
            return None  # free models are exempt
        need = max((w for w in worst if w), default=ZERO)
        force = False
        for _ in range(2):
            leases = [(not force and self._ready(spec, need)) or await self._lease(spec, need, force)
                      for spec in specs]
            skip, again, limited = self._skips(leases, links, worst)
            if again:  # a lease ran short while others may have money left: take a new one and look again
                force = True
                continue
            break
        for lease in leases:
            if lease.spec.scope in limited:
                self._spawn(self._cross(lease, "hard"))
        if len(skip) == len(links):
            lease = next(x for x in leases if any(r.startswith(f"budget {x.spec.scope}:") for r in skip.values()))
            raise BudgetExceeded(lease.spec.scope, quantize(lease.seen + lease.committed), lease.spec.limit_usd,
                                 lease.end, skip[0].split(": ", 1)[1])
        hold = max((w for i, w in enumerate(worst) if w and i not in skip), default=ZERO)
        now = time.monotonic()
        ticket = Ticket(skip, bool(skip), tuple(x.id for x in leases if x.id is not None))
        for lease in leases:
            lease.committed += hold
            lease.inflight += 1
            lease.used_at = now
            ticket.holds.append((lease, hold))
        return ticket

    def _skips(self, leases: list[Lease], links: Sequence[Link],
               worst: list[Decimal | None]) -> tuple[dict[int, str], bool, set[str]]:
        """(index -> reason of each link to skip, whether a lease ran short where more might be had, the
        budgets whose hard limit holds some link back)."""
        skip: dict[int, str] = {}
        again = False
        limited: set[str] = set()
        for lease in leases:
            spec, left = lease.spec, lease.left
            for i, w in enumerate(worst):
                if i in skip:
                    continue
                if w is None:
                    if spec.unpriced != "allow":
                        skip[i] = (f"budget {spec.scope}: {links[i]} has no known price and the budget refuses "
                                   f"unpriced models")
                    elif left <= 0 and lease.short:
                        limited.add(spec.scope)
                        skip[i] = (f"budget {spec.scope}: past its hard limit of {money(spec.limit_usd)} USD only free "
                                   f"models serve ({links[i]} has no known price)")
                elif w > left:
                    if not lease.short:
                        again = True
                    limited.add(spec.scope)
                    skip[i] = (f"budget {spec.scope}: {links[i]} could cost up to {money(w)} USD, more than the "
                               f"{money(max(left, ZERO))} USD left of its hard limit of {money(spec.limit_usd)} USD")
        return skip, again, limited

    def settle(self, ticket: Ticket | None, cost: Decimal | None) -> None:
        """The request ended having cost `cost` (None: partly unpriced, counted as what is known: 0)."""
        if ticket is None or ticket.settled:
            return
        ticket.settled = True
        spent = cost or ZERO
        for lease, hold in ticket.holds:
            lease.committed += spent - hold
            lease.inflight -= 1
            if lease.retired:
                lease.dirty = True

    # -- leases -------------------------------------------------------------------------------------

    def _ready(self, spec: BudgetSpec, need: Decimal) -> Lease | None:
        """This process's lease of `spec`, when it can take a request of worst case `need` as it is (the
        busy path: no period arithmetic, no await)."""
        lease = self._current.get(spec.id)
        if (lease is not None and lease.spec is spec and (lease.left >= need or lease.short)
                and time.monotonic() - lease.taken < self.lease_seconds):
            now = self.clock()
            if lease.start <= now < lease.end:
                return lease
        return None

    async def _lease(self, spec: BudgetSpec, need: Decimal, force: bool) -> Lease:
        now = self.clock()
        start, end = period_bounds(spec.period, now, spec.reset_day)
        lock = self._locks.get(spec.id)
        if lock is None:
            lock = self._locks[spec.id] = asyncio.Lock()
        asked = time.monotonic()
        async with lock:
            lease = self._current.get(spec.id)
            if (lease is not None and lease.taken >= asked and lease.spec is spec and lease.start == start
                    and (lease.left >= need or lease.short)):
                return lease  # taken meanwhile by another request of this process
            old, retire = lease, None
            if old is not None:  # no request may reserve on it while it is being given back
                self._current.pop(spec.id, None)
                if old.id is not None:
                    retire = (old.id, max(old.committed, ZERO), now + self.hold)
            try:
                async with asyncio.timeout(self.db_timeout):
                    grant = await self.store.take_lease(spec, start, end, need, self.share, now + self.hold,
                                                        now=now, retire=retire)
            except Exception as exc:  # the database does not answer: what this process holds still counts
                if old is not None:
                    self._current[spec.id] = old
                    if old.spec is spec and old.start == start and old.left >= need:
                        log.warning("budget %s: no new lease (%s); serving from the one held", spec.scope,
                                    type(exc).__name__)
                        return old
                raise BudgetUnavailable(spec.scope, type(exc).__name__) from exc
            if old is not None:  # requests that ended meanwhile changed what it holds: written again later
                self._retire(old, now, written=retire[1] if retire is not None else None)
            lease = Lease(grant.lease_id, spec, start, end, grant.amount, grant.amount < need,
                           grant.spent + grant.reserved, time.monotonic())
            self._current[spec.id] = lease
        if lease.seen >= spec.soft_usd:
            self._spawn(self._cross(lease, "soft"))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="llmrelay-budget-leases")
        return lease

    def _retire(self, lease: Lease, now: datetime,
                written: Decimal | None = None) -> tuple[str, Decimal, datetime] | None:
        """Mark `lease` done with; what `take_lease`/`store.retire` shrink it to.  `written`: what it was
        already shrunk to, if that was done while requests could still end."""
        lease.retired = True
        if lease.id is None:
            return None
        if lease.inflight or (written is not None and written != max(lease.committed, ZERO)):
            lease.dirty = True  # what its requests settle to is written to the lease by the sweeper
            self._retired.append(lease)
        return lease.id, max(lease.committed, ZERO), now + self.hold

    async def _sweep(self) -> None:
        """Give back leases idle for `idle_seconds`; bring retired ones down to what they still hold."""
        while self._current or self._retired:
            await asyncio.sleep(self.idle_seconds)
            try:
                await self._sweep_once()
            except Exception:
                log.exception("budget leases: could not give a lease back")

    async def _sweep_once(self) -> None:
        idle_since = time.monotonic() - self.idle_seconds
        now = self.clock()
        for key, lease in list(self._current.items()):
            if lease.inflight == 0 and lease.used_at < idle_since and lease.taken < idle_since:
                self._current.pop(key, None)
                back = self._retire(lease, now)
                if back is not None:
                    await self.store.retire(*back)
        keep = []
        for lease in self._retired:
            if lease.dirty:
                lease.dirty = False
                await self.store.retire(lease.id, max(lease.committed, ZERO), now + self.hold)  # type: ignore[arg-type]
            if lease.inflight or lease.dirty:
                keep.append(lease)
        self._retired = keep

    async def aclose(self) -> None:
        """Give every lease back (shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        now = self.clock()
        for lease in [*self._current.values(), *self._retired]:
            if lease.id is not None:
                try:  # with nothing in flight, what it holds is settled: it may go once the ledger has it
                    await self.store.retire(lease.id, max(lease.committed, ZERO), now + self.hold)
                except Exception as exc:  # the lease expires on its own
                    log.warning("budget lease %s not given back: %s", lease.id, exc)
        self._current.clear()
        self._retired.clear()

    # -- what they stand at ------------------------------------------------------------------------------

    async def status(self, specs: Sequence[BudgetSpec] | None = None) -> list[BudgetStatus]:
        """Each budget's current period, read from the ledger and the leases."""
        if specs is None:
            await self.load()
            specs = list(self._by_scope.values())
        now = self.clock()
        out = []
        for spec in specs:
            start, end = period_bounds(spec.period, now, spec.reset_day)
            spent, reserved = await self.store.usage(spec, start, end, now)
            out.append(BudgetStatus(spec, start, end, spent, reserved))
        return out

    async def _cross(self, lease: Lease, level: str) -> None:
        if self.alert is None:
            return
        spec = lease.spec
        event_id = f"{spec.id}:{lease.start.strftime('%Y-%m-%dT%H:%M:%SZ')}:{level}"
        if event_id in self._noted:
            return
        self._noted.add(event_id)
        seen = quantize(lease.seen + lease.committed)
        if await self.store.crossed(spec.id, event_id, level, seen):
            await self.alert(event_id, spec, level, lease.start, lease.end, seen)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("budgets: %s", task.exception())
