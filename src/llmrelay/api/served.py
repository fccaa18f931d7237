"""What every door tells of the answer it serves (the `x-llmrelay-*` headers), and how a door's stream waits
for its first output before it commits to a 200."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..types import Outcome, ReasoningDelta, TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart, money

if TYPE_CHECKING:
    from ..relay import Run

log = logging.getLogger("llmrelay.api")
T = TypeVar("T")
STORE_TIMEOUT = 5.0
"""Seconds a door's own store (conversations, stored responses) gets, when the database is slow or away."""

OUTPUT = (TextDelta, ToolCallStart, ToolCallDelta, ToolCallEnd, ReasoningDelta, Outcome)
"""What ends the wait for a stream's first output: output, or the end of the request."""


def _bool(value: bool) -> str:
    return "true" if value else "false"


def answer_headers(provider: str, outcome: Any, output_mode: str | None = None) -> dict[str, str]:
    """Who served a whole answer (an `Outcome` or an `EmbeddingOutcome`), whether a later link did, what it
    cost (when priced), whether a budget downgraded it, how a JSON answer was obtained."""
    headers = {"x-llmrelay-provider": provider, "x-llmrelay-fallback": _bool(outcome.fallback_used)}
    if outcome.cost_usd is not None:
        headers["x-llmrelay-cost-usd"] = money(outcome.cost_usd)  # type: ignore[assignment]
    if outcome.budget_downgraded:
        headers["x-llmrelay-budget-downgraded"] = "true"
    if output_mode is not None:
        headers["x-llmrelay-structured-output"] = output_mode
    return headers


def stream_headers(run: Run) -> dict[str, str]:
    """A stream's headers, sent with its first output: who serves it, whether a later link or a budget chose."""
    assert run.link is not None
    return {"cache-control": "no-cache", "x-accel-buffering": "no", "x-llmrelay-provider": run.link.provider,
            "x-llmrelay-fallback": _bool(run.fallback_used),
            "x-llmrelay-budget-downgraded": _bool(run.budget_downgraded)}


async def first_output(run: Run) -> tuple[AsyncIterator[Any], Any]:
    """Iterate `run` up to its first output (or its `Outcome`): until then a failure is an ordinary error,
    raised here.  Returns the events still to come and that first one."""
    events = aiter(run)
    try:
        first: Any = await anext(events)
        while not isinstance(first, OUTPUT):
            first = await anext(events)
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    if isinstance(first, Outcome):
        await events.aclose()  # type: ignore[attr-defined]
        if first.error is not None:
            raise first.error
    return events, first


async def from_store(read: Awaitable[T], unavailable: Callable[[str], Exception]) -> T:
    """A stored thing the request needs (a history it continues): `unavailable(<the error's name>)` is raised
    when the database is slow or away."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            return await read
    except (Exception, TimeoutError) as exc:
        raise unavailable(type(exc).__name__) from None


async def to_store(write: Awaitable[T], what: str) -> tuple[bool, T | None]:
    """Keep what an answer made (its exchange, the response object), which the answer can go without: while the
    database is slow or away it goes out all the same, said not stored, and this logs it: (False, None)."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            return True, await write
    except (Exception, TimeoutError) as exc:
        log.warning("%s not stored: %s", what, type(exc).__name__)
        return False, None
