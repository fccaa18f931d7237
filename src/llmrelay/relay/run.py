"""`Run`: one request on its way through `Relay.run` (see `relay.service`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from ..ledger.charges import Charge, known_cost, total_cost
from ..ledger.rows import LOCAL_USER
from ..routing.budgets import Ticket
from ..types import (
    Attempt,
    ChatRequest,
    Message,
    Outcome,
    Principal,
    RequestContext,
    RequestOptions,
    Target,
    new_request_id,
)

if TYPE_CHECKING:
    from .pipeline import Pipeline, RelayEvent


class Run:
    """One request on its way through `Relay.run`.  Await it (one non-streaming provider call per
    attempt) or iterate it (streaming: `AttemptEvent`s and `TextDelta`s, then one `Outcome`), once.

    A request that cannot be served as asked (unknown target, bad turns, over a rate limit or a budget) raises
    from the await, or from the first step of the iteration, before any provider is called; after
    that it always ends in an `Outcome`, whose `error` is set when no link answered.  While it
    streams, `link` and `fallback_used` name the serving link from its first text on (the /v1
    stream's headers go out then).  With durable answers (LLMRELAY_LEDGER_DURABLE) the `Outcome` comes
    only once the ledger rows of its attempts are committed or fsync'ed into the spool."""

    __slots__ = ("_relay", "_ticket", "_used", "fallback_used", "link", "options", "principal", "request_id", "target",
                 "turns")

    def __init__(self, relay: Pipeline, principal: Principal | None, target: str, turns: Sequence[Message],
                 options: RequestOptions) -> None:
        self._relay = relay
        self.principal, self.target, self.turns, self.options = principal, target, turns, options
        self.request_id = options.request_id or new_request_id()
        self.link: Any = None
        self.fallback_used = False
        self._used = False
        self._ticket: Ticket | None = None

    @property
    def budget_downgraded(self) -> bool:
        """A budget keeps some link of the chain from serving (known once the request is admitted)."""
        return self._ticket is not None and self._ticket.downgraded

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._complete().__await__()

    def __aiter__(self) -> AsyncIterator[RelayEvent]:
        return self._stream()

    def _claim(self) -> None:
        if self._used:
            raise RuntimeError("a Run is awaited or iterated once")
        self._used = True

    async def _prepare(self) -> tuple[Target, ChatRequest, RequestContext]:
        relay, who, opts = self._relay, self.principal, self.options
        if not relay.started:
            await relay.start()
        user_id = who.user_id if who is not None else None
        target = await relay.targets.resolve(self.target, user_id, fallbacks=opts.fallbacks,
                                             prefer_provider=opts.prefer_provider, prefer_model=opts.prefer_model,
                                             field=opts.target_field)
        request = relay.request(target, self.turns, opts)
        if who is not None:
            await relay.guard.admit(who)
        budgets = relay.budgets
        if budgets is not None:
            self._ticket = ticket = await budgets.admit(
                user_id if user_id is not None else LOCAL_USER, target.agent_id, target.links,
                input_chars=request.input_chars, images=request.images, tools=len(request.tools),
                max_tokens=request.max_tokens)
            if ticket is not None:
                return target, request, RequestContext(self.request_id, target.agent_id, user_id,
                                                       budget_downgraded=ticket.downgraded, leases=ticket.leases)
        return target, request, RequestContext(self.request_id, target.agent_id, user_id)

    def _settle(self, charges: list[Charge]) -> None:
        """The request's budget reservation becomes what its attempts cost (their priced part)."""
        ticket = self._ticket
        if ticket is not None:
            self._relay.budgets.settle(ticket, known_cost(charges))  # type: ignore[union-attr]

    def _finish(self, outcome: Outcome, request: ChatRequest, ctx: RequestContext, charges: list[Charge],
                t0: float) -> Outcome:
        self._settle(charges)
        outcome.budget_downgraded = ctx.budget_downgraded
        outcome.request_id, outcome.agent_id = ctx.request_id, ctx.agent_id
        outcome.cost_usd = total_cost(charges) if self._relay.ledger is not None else None
        outcome.generation_time_ms = round((time.monotonic() - t0) * 1000)
        outcome.turns = request.messages
        self.link, self.fallback_used = outcome.link, outcome.fallback_used
        return outcome

    async def _complete(self) -> Outcome:
        self._claim()
        relay = self._relay
        target, request, ctx = await self._prepare()
        attempts: list[Attempt] = []
        charges: list[Charge] = []
        t0 = time.monotonic()
        try:
            outcome = await relay.executor.complete(target.links, request, relay.observer(ctx, attempts, charges),
                                                    skip=self._ticket.skip if self._ticket is not None else None)
        except BaseException:  # cancelled: what the attempts used is still charged
            self._settle(charges)
            await relay.spend_shielded(self.principal, attempts)
            raise
        await relay.spend(self.principal, attempts)
        ledger = relay.ledger
        if ledger is not None and ledger.recorder.durable and attempts:  # the answer waits for its rows
            await ledger.recorder.settled()
        return self._finish(outcome, request, ctx, charges, t0)

    async def _stream(self) -> AsyncIterator[RelayEvent]:
        self._claim()
        who = self.principal
        if who is not None:
            self._relay.streams.open(who)  # past the user's cap: RateLimited, before anything is counted
        try:
            async with aclosing(self._streamed()) as events:  # a caller that leaves closes the call at once
                async for event in events:
                    yield event
        finally:
            if who is not None:
                self._relay.streams.close(who)

    async def _streamed(self) -> AsyncIterator[RelayEvent]:
        relay = self._relay
        target, request, ctx = await self._prepare()
        attempts: list[Attempt] = []
        charges: list[Charge] = []
        serving: list[Any] = []
        t0 = time.monotonic()
        events = relay.executor.stream(target.links, request, relay.observer(ctx, attempts, charges),
                                       on_commit=serving.append,
                                       skip=self._ticket.skip if self._ticket is not None else None)
        spent = False
        try:
            async for event in events:
                if type(event) is Outcome:
                    spent = True
                    await relay.spend(self.principal, attempts)
                    ledger = relay.ledger
                    if ledger is not None and ledger.recorder.durable and attempts:  # so does the stream's end
                        await ledger.recorder.settled()
                    yield self._finish(event, request, ctx, charges, t0)
                    return
                if self.link is None and serving:
                    self.link = serving[0]
                    self.fallback_used = next(i for i, x in enumerate(target.links) if x is self.link) > 0
                yield event
        finally:  # done, or the caller went away: either way the upstream call ends now
            try:
                await events.aclose()
            finally:
                if not spent:
                    self._settle(charges)
                    await relay.spend_shielded(self.principal, attempts)
