"""What every door tells of the answer it serves (the `x-llmrelay-*` headers), and how a door's stream waits
for its first output before it commits to a 200."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..types import Outcome, ReasoningDelta, TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart, money

if TYPE_CHECKING:
    from ..relay import Run

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
