"""The fallback executor: walk a chain of links until one answers.

Per link: skip it (with the reason) when its provider is disabled or its circuit is open;
otherwise call it, retrying retryable failures with backoff (`Policy.retry_delay`), and move
on to the next link on any failure that `ProviderError.falls_through`.  A failure that would
happen identically everywhere (`bad_request`) ends the request at once.  One deadline covers
the whole request; the time to first token is bounded per attempt.

An answer with nothing in it (no text, tool call or reasoning, and not cut short by `max_tokens`) or one
the provider filtered counts as a failure of its link when another link could still answer: the chain goes
on (the last link's answer is returned as it is).

Streaming falls back transparently for as long as no output (text, a tool call, reasoning) has
reached the caller: events that come before it (usage, an empty finish) are held back.  Once output
is out, a failure ends the stream with that error and the output already sent is kept.

A request that turns parallel tool calls off gets at most one call per answer from every provider:
those that cannot be told so have the calls after the first dropped here (the request asked for one).

A link that cannot take the request (`fit`: its provider lacks a parameter the request uses, its
model has no tool or image support, the input clearly exceeds its context window) is skipped with
that reason, never called.

Another kind of call (embeddings) walks the same way (`walk`): its own `fit` decides the skips, its `Call`
is made of each link as a non-streaming chat call is, and it ends in a `Walked` rather than an `Outcome`.

Every attempt and every skip becomes one `Attempt`, handed to the `observer` the moment it
ends (the ledger's hook: it sees cancelled and cut attempts too, which a caller that stopped
listening never would) and yielded as an `AttemptEvent`.  The last event of a stream is an
`Outcome`; `complete()` returns it.  Either way a request no link answered has `Outcome.error`
set (an `AllLinksFailed`, or the error that broke a stream after its text went out).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from ..providers.base import Provider
from ..types import (
    AllLinksFailed,
    Attempt,
    AttemptEvent,
    AttemptStatus,
    ChatRequest,
    ErrorKind,
    Finished,
    Link,
    Outcome,
    OutputEvent,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from .breaker import CircuitBreaker
from .failures import all_failed
from .live import Live
from .policy import Policy

log = logging.getLogger("llmrelay.routing")
Observer = Callable[[Attempt], None]
OnCommit = Callable[[Link], None]
"""Told the link whose output is about to reach the caller first: no other link will serve the stream."""
Fit = Callable[[Link, Any], "tuple[str, str] | None"]
"""What a link lacks to take a request (a `ChatRequest`, or a `walk`'s) and why, as (need, reason)
(`routing.fit.Unfit`); None: it can."""
_OUTPUT = (TextDelta, ToolCallStart, ToolCallDelta, ToolCallEnd, ReasoningDelta)

Call = Callable[[Provider, Any], Awaitable[tuple[Any, Usage]]]
"""A provider call other than a chat (`FallbackExecutor.walk`): (the link's provider, the request with the
link's model) -> (what it returned, its usage).  Raises `ProviderError`."""

ExecEvent = OutputEvent | AttemptEvent | Outcome
_TOKENS = itertools.count(1)


@dataclass(slots=True)
class Walked:
    """How a `walk` ended, as an `Outcome` says it for a chat: the `result` of the link that answered (None
    when none did: `error` says why), every attempt, and whether a link but the first served."""

    attempts: list[Attempt]
    result: Any = None
    link: Link | None = None
    fallback_used: bool = False
    error: AllLinksFailed | None = None


class _Run:
    """The bookkeeping of one request: its attempts and its deadline."""

    def __init__(self, deadline: float, observer: Observer | None, on_commit: OnCommit | None = None) -> None:
        self.deadline = deadline
        self.attempts: list[Attempt] = []
        self.unfit: list[tuple[str, str]] = []
        """(need, reason) of each link skipped because it cannot take the request."""
        self.absent: set[str] = set()
        """The skip reasons of links no request can use here (no key, an unknown provider): no trouble of the
        moment, so a request every other link refused is still refused (`failures.all_failed`)."""
        self._observer = observer
        self.on_commit = on_commit
        self.token = next(_TOKENS)
        """This request, to the breaker (its retries of a link count once)."""

    def record(self, link: Link, index: int, status: AttemptStatus, *, t0: float | None = None,
               started: float | None = None, live: Live | None = None, kind: ErrorKind | None = None,
               message: str | None = None, images: int = 0) -> Attempt:
        now = time.monotonic()
        attempt = Attempt(
            position=len(self.attempts) + 1, provider=link.provider, model=link.model, status=status,
            link_index=index,
            latency_ms=round((now - t0) * 1000) if t0 is not None else 0,
            error_kind=kind, error_message=message,
            usage=live.usage if live else None, finish_reason=live.finish if live else None,
            provider_cost_usd=live.cost if live else None,
            started_at=started if started is not None else time.time(),
            first_on_provider=all(a.provider != link.provider for a in self.attempts),
            first_on_model=all(a.provider != link.provider or a.model != link.model for a in self.attempts),
            tool_calls=live.tool_calls if live else 0, images=images,
        )
        self.attempts.append(attempt)
        if self._observer is not None:
            try:
                self._observer(attempt)
            except Exception:  # the observer must never break a request
                log.exception("attempt observer failed")
        return attempt


class FallbackExecutor:
    def __init__(self, providers: Mapping[str, Provider], *, disabled: Mapping[str, str] | None = None,
                 breaker: CircuitBreaker | None = None, policy: Policy | None = None,
                 sleep: Callable[[float], object] = asyncio.sleep, rng: random.Random | None = None,
                 fit: Fit | None = None) -> None:
        self.providers = providers
        self.fit = fit
        self.disabled = dict(disabled or {})
        self.breaker = breaker or CircuitBreaker()
        self.policy = policy or Policy()
        self._sleep = sleep
        self._rng = rng

    async def complete(self, links: Sequence[Link], request: ChatRequest,
                       observer: Observer | None = None, *, skip: Mapping[int, str] | None = None) -> Outcome:
        """Run the chain without streaming (`Outcome.error` says when nothing answered).  `skip`: links not
        to try (by index), with the reason each skip is recorded with (a budget's)."""
        outcome = None
        request = request if not request.stream else dataclasses.replace(request, stream=False)
        async with aclosing(self._execute(links, request, observer, skip=skip)) as events:
            async for event in events:
                if isinstance(event, Outcome):
                    outcome = event
        assert outcome is not None
        return outcome

    def stream(self, links: Sequence[Link], request: ChatRequest, observer: Observer | None = None, *,
               on_commit: OnCommit | None = None, skip: Mapping[int, str] | None = None) -> AsyncIterator[ExecEvent]:
        """Run the chain streaming: `TextDelta`s and `AttemptEvent`s, then one `Outcome`.
        `on_commit` learns which link serves, just before its first text is yielded; `skip` as for `complete`."""
        return self._execute(links, dataclasses.replace(request, stream=True), observer, on_commit, skip=skip)

    async def walk(self, links: Sequence[Link], request: Any, call: Call, *, fit: Fit | None = None,
                   observer: Observer | None = None, skip: Mapping[int, str] | None = None) -> Walked:
        """Run the chain with a call other than a chat (embeddings): the same walk, skips (by `fit`, in place
        of the executor's own), retries and backoff, breaker and deadline, one `Attempt` per try, with
        `call(provider, request)` made of each link in turn and bounded as a non-streaming chat call is."""
        walked = None
        async with aclosing(self._execute(links, request, observer, call=call, fit=fit, skip=skip)) as events:
            async for event in events:
                if type(event) is Walked:
                    walked = event
        assert walked is not None
        return walked

    # -- the walk ---------------------------------------------------------------------------------

    def _gate(self, link: Link, request: Any, run: _Run, fit: Fit | None) -> str | None:
        if link.provider in self.disabled:
            run.absent.add(self.disabled[link.provider])
            return self.disabled[link.provider]
        if link.provider not in self.providers:
            run.absent.add(reason := f"unknown provider {link.provider!r}")
            return reason
        if fit is not None:
            unfit = fit(link, request)
            if unfit is not None:
                run.unfit.append(unfit)
                return unfit[1]
        return self.breaker.acquire(link.provider, link.model)

    async def _execute(self, links: Sequence[Link], request: Any, observer: Observer | None,
                       on_commit: OnCommit | None = None, call: Call | None = None,
                       fit: Fit | None = None, skip: Mapping[int, str] | None = None,
                       ) -> AsyncIterator[ExecEvent | Walked]:
        """The walk.  `request` is a `ChatRequest`, or with `call` whatever `call` takes."""
        loop = asyncio.get_running_loop()
        run = _Run(loop.time() + self.policy.deadline, observer, on_commit)
        fatal: ProviderError | None = None
        images = request.images if call is None else 0
        fit = self.fit if call is None else fit
        for index, link in enumerate(links):
            if fatal is not None:
                yield AttemptEvent(run.record(link, index, "skipped", message=(
                    f"not tried: {fatal.provider}/{fatal.model} rejected the request itself ({fatal.kind})")))
                continue
            if loop.time() >= run.deadline:
                yield AttemptEvent(run.record(link, index, "skipped", message=(
                    f"not tried: the request deadline of {self.policy.deadline:g} s was reached")))
                continue
            reason = skip.get(index) if skip else None
            reason = reason or self._gate(link, request, run, fit)
            if reason is not None:
                yield AttemptEvent(run.record(link, index, "skipped", message=reason))
                continue
            last = index == len(links) - 1
            retries = self.policy.max_retries if link.max_retries is None else link.max_retries
            retry = 0
            while True:
                live = Live()
                t0, started = time.monotonic(), time.time()
                try:
                    asked = request if request.model == link.model else dataclasses.replace(request, model=link.model)
                    if call is not None:
                        await self._call_other(call, link, asked, live, run)
                    elif asked.stream:
                        attempt = self._stream_attempt(link, asked, live, run)
                        async with aclosing(attempt):  # a caller that stops listening closes the call at once
                            async for event in attempt:
                                yield event
                    else:  # a plain coroutine: no generator machinery on the busiest path
                        await self._call(link, asked, live, run)
                    if not live.committed and not last and call is None:
                        if live.finish == "content_filter":
                            raise ProviderError(ErrorKind.CONTENT_FILTERED, "the provider filtered or refused the "
                                                "answer", provider=link.provider, model=link.model)
                        if live.empty():  # a 200 with nothing in it: the next link may do better
                            raise ProviderError(ErrorKind.SERVER_ERROR, "the provider answered with no content",
                                                provider=link.provider, model=link.model)
                except Exception as exc:
                    err = exc if isinstance(exc, ProviderError) else _unexpected(link, exc)
                    self._breaker_after(link, err, run)
                    yield AttemptEvent(run.record(link, index, "failed", t0=t0, started=started, live=live,
                                                  kind=err.kind, message=err.message, images=images))
                    if live.committed:  # text is out: no going back, no going elsewhere
                        yield Outcome(run.attempts, live.response(link, "error"), link, index > 0, err)
                        return
                    if not err.falls_through:
                        fatal = err
                        break
                    wait = await self._retry_wait(link, err, retry, retries, run)
                    if wait is None:
                        break
                    retry += 1
                    continue
                except BaseException:  # cancelled, or the caller stopped listening
                    self.breaker.release(link.provider, link.model)
                    run.record(link, index, "failed", t0=t0, started=started, live=live, images=images,
                               message="cancelled by the caller" + (
                                   f" after {sum(map(len, live.parts))} characters" if live.parts else ""))
                    raise
                self.breaker.success(link.provider, link.model)
                yield AttemptEvent(run.record(link, index, "success", t0=t0, started=started, live=live,
                                              images=images))
                yield Outcome(run.attempts, live.response(link), link, index > 0) if call is None else \
                    Walked(run.attempts, live.result, link, index > 0)
                return
        error = all_failed(run.attempts, fatal, run.unfit, run.absent)
        yield Outcome(run.attempts, error=error) if call is None else Walked(run.attempts, error=error)

    def _breaker_after(self, link: Link, err: ProviderError, run: _Run) -> None:
        if err.kind.provider_fault:
            self.breaker.failure(link.provider, link.model, run.token)
        else:
            self.breaker.release(link.provider, link.model)

    async def _retry_wait(self, link: Link, err: ProviderError, retry: int, retries: int,
                          run: _Run) -> float | None:
        """Sleep before the next try of the same link, or None to move on."""
        if not err.retryable or retry >= retries:
            return None
        wait = self.policy.retry_delay(retry + 1, err.retry_after, self._rng)
        loop = asyncio.get_running_loop()
        if wait is None or loop.time() + wait >= run.deadline:
            return None
        await self._sleep(wait)  # type: ignore[misc]
        if self.breaker.acquire(link.provider, link.model) is not None:
            return None  # the circuit opened meanwhile: stop hammering this link
        return wait

    async def _call(self, link: Link, request: ChatRequest, live: Live, run: _Run) -> None:
        """One non-streaming call of one link; raises `ProviderError`."""
        first_deadline = min(asyncio.get_running_loop().time() + self.policy.first_token_timeout, run.deadline)
        try:
            async with asyncio.timeout_at(first_deadline):
                resp = await self.providers[link.provider].complete(request)
        except TimeoutError:
            raise self._timed_out(link, first_deadline, run, "no reply") from None
        live.parts, live.usage, live.finish = [resp.text], resp.usage, resp.finish_reason
        live.model, live.raw_id, live.cost = resp.model, resp.raw_id, resp.provider_cost_usd
        if resp.tool_calls or resp.reasoning or resp.output_mode:
            if len(resp.tool_calls) > 1 and request.parallel_tool_calls is False:
                resp = dataclasses.replace(resp, tool_calls=resp.tool_calls[:1])
            live.done = resp

    async def _call_other(self, call: Call, link: Link, request: Any, live: Live, run: _Run) -> None:
        """One call of another kind (`walk`), bounded as `_call` is; raises `ProviderError`."""
        first_deadline = min(asyncio.get_running_loop().time() + self.policy.first_token_timeout, run.deadline)
        try:
            async with asyncio.timeout_at(first_deadline):
                live.result, live.usage = await call(self.providers[link.provider], request)
        except TimeoutError:
            raise self._timed_out(link, first_deadline, run, "no reply") from None

    async def _stream_attempt(self, link: Link, request: ChatRequest, live: Live,
                              run: _Run) -> AsyncIterator[OutputEvent]:
        """One streaming call of one link.  Yields output once committed; raises `ProviderError`."""
        loop = asyncio.get_running_loop()
        first_deadline = min(loop.time() + self.policy.first_token_timeout, run.deadline)
        one_call = request.parallel_tool_calls is False
        events = self.providers[link.provider].stream(request)
        try:
            while True:
                limit = run.deadline if live.committed else first_deadline
                try:
                    async with asyncio.timeout_at(limit):
                        event = await anext(events)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise self._timed_out(link, limit, run, "no first token") from None
                kind = type(event)
                if kind is TextDelta:
                    if not event.text:
                        continue
                    live.parts.append(event.text)
                elif kind in _OUTPUT:
                    if kind is ReasoningDelta:
                        if not (event.text or event.signature or event.redacted):
                            continue
                    elif one_call and event.index > 0:  # type: ignore[union-attr]
                        continue
                    live.take(event)
                elif kind is UsageReport:
                    live.take_usage(event)
                    continue
                elif kind is Finished:
                    live.finish, live.output_mode = event.finish_reason, event.output_mode
                    continue
                else:
                    continue
                if not live.committed:
                    live.committed = True
                    if run.on_commit is not None:
                        run.on_commit(link)
                yield event
        finally:
            await events.aclose()
        if live.finish is None:
            raise ProviderError(ErrorKind.SERVER_ERROR, "stream ended without a finish",
                                provider=link.provider, model=link.model)

    def _timed_out(self, link: Link, limit: float, run: _Run, what: str) -> ProviderError:
        if limit >= run.deadline:
            msg = f"the request deadline of {self.policy.deadline:g} s was reached"
        else:
            msg = f"{what} within {self.policy.first_token_timeout:g} s"
        return ProviderError(ErrorKind.TIMEOUT, msg, provider=link.provider, model=link.model)


def _unexpected(link: Link, exc: Exception) -> ProviderError:
    """An adapter bug must cost one link, not the request: log it, treat it as a server error."""
    log.error("unexpected %s from the %s adapter", type(exc).__name__, link.provider, exc_info=exc)
    return ProviderError(ErrorKind.SERVER_ERROR, f"unexpected {type(exc).__name__} in the "
                         f"{link.provider} adapter", provider=link.provider, model=link.model)
